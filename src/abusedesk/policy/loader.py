"""Load and validate a policy file; every error names the file, the line and the field.

Loading happens in three passes, and a file that fails any of them loads nothing:

1. YAML (safe loading only). Anchors, aliases, duplicate keys and custom tags are refused: a policy is read by
   people who decide about customers, so what you see must be what is loaded. Floats are not resolved, so clause
   ``1.10`` stays the text "1.10" and never becomes the number 1.1.
2. Structure (pydantic models below): types, required fields, unknown fields, durations, severities, step types.
3. Meaning: duplicate clause ids, unknown kinds, a kind under several clauses without a ``primary``, playbook
   references, per-step requirements (a deadline on ``request-to-cease``, two approvals on destructive actions).

All errors of a pass are collected into :attr:`ConfigError.errors`; the raised error's message is the first one
plus a count. The file format is described in docs/reference/policy-file.md.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from abusedesk.domain.actions import TWO_PERSON
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.identity import Role
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.records import Severity
from abusedesk.policy.model import (
    DEFAULT_KEY,
    MIN_APPROVALS,
    Clause,
    ClauseRole,
    PlaybookSpec,
    Policy,
    RepeatRule,
    Step,
    StepType,
    parse_duration,
)

#: The policy shipped with abusedesk (package data), used when no policy file is configured.
SHIPPED_POLICY = "aup-2025-06-10.yaml"
#: Larger files are refused before parsing: a policy is a few dozen kilobytes.
MAX_POLICY_BYTES = 2 * 1024 * 1024
#: The one file format version this loader reads (the top-level ``format`` field).
FORMAT_VERSION = 1

Path_ = tuple[str | int, ...]


# ---------------------------------------------------------------------------------------------------- public API


def load_policy(path: Path | str | None = None) -> Policy:
    """Load and validate the policy at ``path``; None loads the shipped policy.

    Raises ConfigError (with every problem found in :attr:`ConfigError.errors`) if the file cannot be read or is
    not a valid policy; nothing is loaded then.
    """
    if path is None:
        data = resources.files("abusedesk.policy").joinpath("data", SHIPPED_POLICY).read_bytes()
        return load_policy_bytes(data, f"abusedesk/policy/data/{SHIPPED_POLICY}")
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise ConfigError(
                f"policy file is {size} bytes, more than the {MAX_POLICY_BYTES} allowed; is it the right file?",
                file=str(file),
            )
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "policy file does not exist; check --policy-file or ABUSEDESK_POLICY_FILE", file=str(file)
        ) from None
    except IsADirectoryError:
        raise ConfigError("policy file is a directory, not a file", file=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"policy file cannot be read: {exc.strerror or exc}", file=str(file)) from None
    return load_policy_bytes(data, str(file))


def load_policy_bytes(data: bytes, source: str) -> Policy:
    """Validate and build a Policy from the file's bytes; ``source`` names it in errors (a path)."""
    if len(data) > MAX_POLICY_BYTES:
        raise ConfigError(f"policy is {len(data)} bytes, more than the {MAX_POLICY_BYTES} allowed", file=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"policy file is not UTF-8 (byte {exc.start}); save it as UTF-8", file=source, line=line
        ) from None
    return load_policy_text(text, source)


def load_policy_text(text: str, source: str = "<policy text>") -> Policy:
    """Validate and build a Policy from the file's text, e.g. a version stored in the database.

    The SHA-256 (and so the version) is computed over the UTF-8 bytes of ``text``, which are the file's bytes.
    """
    try:
        return _Build(text, source).run()
    except RecursionError:
        raise ConfigError("policy is nested too deeply to be a policy file", file=source) from None


def policy_errors(exc: ConfigError) -> list[ConfigError]:
    """The individual problems of a ConfigError from this loader (itself if it carries none)."""
    return exc.errors or [exc]


# ---------------------------------------------------------------------------------------------------- YAML


_YamlBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _PolicyYamlLoader(_YamlBase):  # type: ignore[misc,valid-type]
    """Safe loading, without float resolution: ``1.10`` is the clause "1.10", never the number 1.1."""


_PolicyYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in _YamlBase.yaml_implicit_resolvers.items()
}

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:float",  # only when written explicitly as !!float
}


@dataclass
class _Problem:
    path: Path_
    reason: str


def _render_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Build:
    """One load: parse, check structure, check meaning, build. Collects problems with their YAML lines."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.problems: list[_Problem] = []

    # --- driver

    def run(self) -> Policy:
        data = self._parse()
        if not isinstance(data, dict):
            self._fail_now(
                "the policy must be a YAML mapping with fields format, id, title, effective, clauses ...", line=1
            )
        try:
            model = _PolicyIn.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._add_pydantic(err)
            self._raise()
        self._check(model)
        if self.problems:
            self._raise()
        return self._make(model)

    # --- errors

    def _line_for(self, path: Path_) -> int | None:
        probe = tuple(path)
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def _error(self, problem: _Problem) -> ConfigError:
        field = _render_path(problem.path) or None
        return ConfigError(problem.reason, file=self.source, line=self._line_for(problem.path), field=field)

    def _raise(self) -> NoReturn:
        pairs = sorted(((self._error(p), p.reason) for p in self.problems), key=lambda pair: pair[0].line or 0)
        errors = [e for e, _ in pairs]
        first, reason = pairs[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(reason + more, file=first.file, line=first.line, field=first.field, errors=errors)

    def _fail_now(self, reason: str, *, line: int | None = None, path: Path_ = ()) -> NoReturn:
        if line is not None:
            self.lines.setdefault(path, line)
        self.problems.append(_Problem(path, reason))
        self._raise()

    def add(self, path: Path_, reason: str) -> None:
        self.problems.append(_Problem(tuple(path), reason))

    def _add_pydantic(self, err: Mapping[str, Any]) -> None:
        loc: Path_ = tuple(p for p in err["loc"] if p != "[key]")
        kind = err["type"]
        if kind == "missing":
            name = loc[-1] if loc else "?"
            reason = f"required field {name!r} is missing"
        elif kind == "extra_forbidden":
            name = loc[-1] if loc else "?"
            allowed = _allowed_fields(loc[:-1])
            hint = ""
            if allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed here: {', '.join(allowed)}"
            reason = f"unknown field {name!r}{hint}"
        else:
            msg = str(err["msg"])
            msg = msg.removeprefix("Value error, ")
            if kind != "value_error" and "input" in err and not isinstance(err["input"], dict | list):
                msg += f" (got {err['input']!r})"
            reason = msg
        self.add(loc, reason)

    # --- pass 1: YAML

    def _parse(self) -> Any:
        loader = _PolicyYamlLoader(self.text)
        try:
            node = loader.get_single_node()
            if node is None:
                self._fail_now("the policy file is empty", line=1)
            seen: set[int] = set()
            return self._walk(loader, node, (), seen)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            reason = f"not valid YAML: {exc.problem or exc.context}"
            self._fail_now(reason, line=line)
        except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
            position = getattr(exc, "position", None)
            line = self.text[:position].count("\n") + 1 if isinstance(position, int) else None
            self._fail_now(f"not valid YAML: {str(exc).splitlines()[0]}", line=line)
        finally:
            loader.dispose()

    def _walk(self, loader: _PolicyYamlLoader, node: yaml.Node, path: Path_, seen: set[int]) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if id(node) in seen:
            self._fail_now(
                "YAML anchors and aliases are not allowed in a policy file; write the value out (playbooks are "
                "shared by name)",
                path=path,
            )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                self._fail_now(f"YAML tag {node.tag!r} is not allowed in a policy file", path=path)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._fail_now("a mapping key must be plain text", line=key_node.start_mark.line + 1, path=path)
                key = self._scalar(loader, key_node, path)
                if isinstance(key, date) or key is None:
                    key = key_node.value  # a key that looks like a date or null is still its text
                if key == "<<":
                    self._fail_now("YAML merge keys (<<) are not allowed in a policy file", path=path)
                try:
                    duplicate = key in out
                except TypeError:  # pragma: no cover - scalars are hashable
                    duplicate = False
                if duplicate:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    self._fail_now(
                        f"key {key!r} appears twice in the same mapping; the second would silently win",
                        path=(*path, key),
                    )
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self._walk(loader, value_node, (*path, key), seen)
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self._fail_now(f"YAML tag {node.tag!r} is not allowed in a policy file", path=path)
            return [self._walk(loader, item, (*path, i), seen) for i, item in enumerate(node.value)]
        return self._scalar(loader, node, path)

    def _scalar(self, loader: _PolicyYamlLoader, node: yaml.Node, path: Path_) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._fail_now(
                f"YAML tag {node.tag!r} is not allowed in a policy file", line=node.start_mark.line + 1, path=path
            )
        try:
            return loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self._fail_now(f"bad value {node.value!r}: {exc}", line=node.start_mark.line + 1, path=path)

    # --- pass 3: meaning

    def _check(self, m: _PolicyIn) -> None:
        self._check_playbooks(m)
        clause_index: dict[str, int] = {}
        for i, c in enumerate(m.clauses):
            if c.id in clause_index:
                self.add(
                    ("clauses", i, "id"),
                    f"clause id {c.id!r} is used twice (first at clauses[{clause_index[c.id]}]); clause ids must "
                    "be unique",
                )
            else:
                clause_index[c.id] = i
        roles: dict[ClauseRole, str] = {}
        by_kind: dict[str, list[tuple[str, int, int]]] = {}
        for i, c in enumerate(m.clauses):
            if c.role is not None:
                if c.role in roles:
                    self.add(
                        ("clauses", i, "role"),
                        f"role {c.role.value!r} is already held by clause {roles[c.role]}; a role names one clause",
                    )
                else:
                    roles[c.role] = c.id
            seen_here: set[str] = set()
            for j, kind in enumerate(c.kinds):
                if kind not in KINDS:
                    self.add(("clauses", i, "kinds", j), f"{_unknown_kind(kind)} (clause {c.id})")
                    continue
                if kind in seen_here:
                    self.add(("clauses", i, "kinds", j), f"kind {kind!r} is listed twice in clause {c.id}")
                    continue
                seen_here.add(kind)
                by_kind.setdefault(kind, []).append((c.id, i, j))
            for kind in c.kind_severity:
                if kind not in seen_here:
                    what = _unknown_kind(kind) if kind not in KINDS else f"kind {kind!r} is not in this clause's kinds"
                    self.add(("clauses", i, "kind_severity", kind), f"{what} (clause {c.id})")
            needs_playbook = bool(c.kinds) or (m.fallback_clause is not None and m.fallback_clause == c.id)
            if c.playbook is not None:
                if c.playbook not in m.playbooks:
                    self.add(("clauses", i, "playbook"), _unknown_name("playbook", c.playbook, m.playbooks))
            elif needs_playbook:
                self.add(
                    ("clauses", i, "playbook"),
                    f"clause {c.id} has event kinds (or is the fallback clause) but names no playbook; "
                    f"add 'playbook: <name>' with one of: {', '.join(m.playbooks)}",
                )
        # a kind under several clauses must say which clause leads
        for kind, places in by_kind.items():
            if len(places) > 1 and kind not in m.primary:
                cid, i, j = places[1]
                others = ", ".join(p[0] for p in places)
                self.add(
                    ("clauses", i, "kinds", j),
                    f"kind {kind!r} falls under clauses {others}; say which one leads with "
                    f"'primary: {{{kind}: \"{places[0][0]}\"}}' at the top level",
                )
        for kind, cid in m.primary.items():
            if kind not in KINDS:
                self.add(("primary", kind), _unknown_kind(kind))
            elif cid not in clause_index:
                self.add(("primary", kind), _unknown_name("clause", cid, clause_index))
            elif kind not in m.clauses[clause_index[cid]].kinds:
                self.add(("primary", kind), f"clause {cid} does not list kind {kind!r} in its kinds")
        if m.fallback_clause is not None:
            if m.fallback_clause not in clause_index:
                self.add(("fallback_clause",), _unknown_name("clause", m.fallback_clause, clause_index))
        else:
            unmapped = [k for k in KINDS if k not in by_kind]
            if unmapped:
                self.add(
                    ("clauses",),
                    f"event kinds {', '.join(unmapped)} fall under no clause; map them, or set 'fallback_clause' "
                    "to a clause with a triage playbook",
                )
        # steps that cite a clause by role need that clause
        for name, pb in m.playbooks.items():
            for key, steps in pb.steps.items():
                for k, s in enumerate(steps):
                    where: Path_ = ("playbooks", name, "steps", key, k)
                    if s.cite is not None:
                        if s.cite not in clause_index:
                            self.add((*where, "cite"), _unknown_name("clause", s.cite, clause_index))
                        continue
                    role = _ROLE_FOR_STEP.get(s.step)
                    if role is not None and role not in roles:
                        self.add(
                            where,
                            f"a {s.step.value} step cites the clause with role {role.value!r}, but no clause has "
                            f"that role; add 'role: {role.value}' to that clause or give the step 'cite: <clause>'",
                        )

    def _check_playbooks(self, m: _PolicyIn) -> None:
        for name, pb in m.playbooks.items():
            base: Path_ = ("playbooks", name)
            if not _NAME.fullmatch(name):
                self.add(base, f"playbook name {name!r} must be lower-case letters, digits and '-'")
            if DEFAULT_KEY not in pb.steps:
                self.add(
                    (*base, "steps"),
                    f"playbook {name!r} has no 'default' steps; give 'default' (used for every severity not listed)",
                )
            for key, steps in pb.steps.items():
                if not steps:
                    self.add((*base, "steps", key), f"playbook {name!r} severity {key!r} has no steps")
                for k, s in enumerate(steps):
                    self._check_step((*base, "steps", key, k), s, steps[:k], name)

    def _check_step(self, where: Path_, s: _StepIn, before: Iterable[_StepIn], playbook: str) -> None:
        allowed = _STEP_FIELDS[s.step]
        for fname in _OPTIONAL_STEP_FIELDS:
            if getattr(s, fname) is not None and fname not in allowed:
                self.add(
                    (*where, fname),
                    f"field {fname!r} does not apply to a {s.step.value} step (it takes: "
                    f"{', '.join(sorted(allowed)) or 'no other fields'})",
                )
        earlier = [b.step for b in before]
        if s.step is StepType.REQUEST_TO_CEASE:
            if s.deadline is None:
                self.add(
                    (*where, "deadline"),
                    f"a request-to-cease step needs a 'deadline' (e.g. deadline: 24h) in playbook {playbook!r}",
                )
            elif s.deadline <= timedelta(0):
                self.add((*where, "deadline"), "a request-to-cease deadline must be longer than 0")
        if s.step is StepType.RENOTIFY:
            if s.after is None:
                self.add((*where, "after"), "a renotify step needs 'after' (e.g. after: 48h): when to remind")
            elif s.after <= timedelta(0):
                self.add((*where, "after"), "a renotify 'after' must be longer than 0")
            if not any(e in (StepType.NOTIFY, StepType.REQUEST_TO_CEASE) for e in earlier):
                self.add(where, "a renotify step must follow a notify or request-to-cease step in the same list")
        if s.step is StepType.ESCALATE_ON_REPEAT and StepType.REQUEST_TO_CEASE not in earlier:
            self.add(
                where,
                "an escalate-on-repeat step must follow a request-to-cease step: it acts when findings continue "
                "after that step's deadline",
            )
        if s.step in (StepType.PROPOSE, StepType.ESCALATE_ON_REPEAT):
            if s.action is None:
                choices = ", ".join(sorted(TWO_PERSON))
                self.add((*where, "action"), f"a {s.step.value} step needs 'action' (one of {choices})")
            elif s.action not in TWO_PERSON:
                self.add(
                    (*where, "action"),
                    f"{s.action!r} is not an action a {s.step.value} step can propose; one of "
                    f"{', '.join(sorted(TWO_PERSON))}",
                )
            if s.approvals is None:
                self.add(
                    (*where, "approvals"),
                    f"a {s.step.value} step proposes a destructive action and needs 'approvals: {MIN_APPROVALS}' "
                    "(a proposer and a different approver)",
                )
            elif s.approvals < MIN_APPROVALS:
                self.add(
                    (*where, "approvals"),
                    f"destructive action {s.action or '?'!r} needs at least {MIN_APPROVALS} "
                    f"persons (a proposer and a different approver), not {s.approvals}",
                )

    # --- build

    def _make(self, m: _PolicyIn) -> Policy:
        roles = {c.role: c.id for c in m.clauses if c.role is not None}
        default_repeat = _repeat(m.engine.severity_on_repeat)
        playbooks: dict[str, PlaybookSpec] = {}
        for name, pb in m.playbooks.items():
            steps: dict[str, tuple[Step, ...]] = {
                key: tuple(_step(s, roles) for s in items) for key, items in pb.steps.items()
            }
            playbooks[name] = PlaybookSpec(
                name=name,
                description=pb.description,
                steps=MappingProxyType(steps),
                severity_on_repeat=_repeat(pb.severity_on_repeat) if pb.severity_on_repeat else default_repeat,
            )
        clauses: dict[str, Clause] = {}
        by_kind: dict[str, list[str]] = {}
        for c in m.clauses:
            clauses[c.id] = Clause(
                id=c.id,
                title=c.title,
                summary=c.summary,
                text=c.text,
                kinds=tuple(c.kinds),
                severity=c.severity,
                role=c.role,
                playbook=playbooks[c.playbook] if c.playbook else None,
                kind_severity=MappingProxyType(dict(c.kind_severity)),
            )
            for kind in c.kinds:
                by_kind.setdefault(kind, []).append(c.id)
        index: dict[str, tuple[str, ...]] = {}
        for kind, ids in by_kind.items():
            lead = m.primary.get(kind, ids[0])
            index[kind] = (lead, *(i for i in ids if i != lead))
        sha = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return Policy(
            id=m.id,
            version=f"{m.id}@{sha[:12]}",
            sha256=sha,
            effective=m.effective,
            title=m.title,
            source=m.source,
            path=self.source,
            source_text=self.text,
            clauses=MappingProxyType(clauses),
            playbooks=MappingProxyType(playbooks),
            primary=MappingProxyType(dict(m.primary)),
            fallback_clause=m.fallback_clause,
            reopen_window=m.engine.reopen_window,
            digest_interval=m.engine.digest_interval,
            notice_delays=MappingProxyType({s: m.engine.max_notice_delay[s] for s in Severity}),
            severity_on_repeat=default_repeat,
            _by_kind=MappingProxyType(index),
        )


def _step(s: _StepIn, roles: Mapping[ClauseRole, str]) -> Step:
    role = _ROLE_FOR_STEP.get(s.step)
    cite = s.cite if s.cite is not None else (roles.get(role) if role is not None else None)
    return Step(
        type=s.step,
        deadline=s.deadline,
        after=s.after,
        repeat=s.repeat if s.repeat is not None else 1,
        action=s.action,
        role=Role(s.role) if s.role else None,
        approvals=s.approvals or 0,
        template=s.template,
        cite=cite,
        note=s.note,
    )


def _repeat(r: _RepeatIn) -> RepeatRule:
    return RepeatRule(every=r.every, within=r.within, on_reopen=r.on_reopen, max=r.max)


def _unknown_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; the kinds are listed in docs/reference/policy-file.md"
    return f"{kind!r} is not a known event kind{hint}"


def _unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names) or 'none'}"
    return f"{what} {name!r} does not exist; {hint}"


# ---------------------------------------------------------------------------------------------------- pass 2 models


def _clause_id(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and not _CLAUSE_ID.fullmatch(value):
        raise ValueError(f"clause id {value!r} must be letters, digits, '.' or '-' (e.g. \"1.8\"), at most 20")
    return value


def _duration(value: Any) -> Any:
    return parse_duration(value)


_CLAUSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,19}")
_NAME = re.compile(r"[a-z0-9][a-z0-9\-]{0,59}")
ClauseId = Annotated[str, BeforeValidator(_clause_id)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
SeverityKey = Literal["default", "low", "medium", "high", "critical"]
Text = Annotated[str, Field(min_length=1, max_length=20000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StepIn(_In):
    step: StepType
    deadline: Duration | None = None
    after: Duration | None = None
    repeat: Annotated[int, Field(ge=1, le=20)] | None = None
    action: str | None = None
    role: Literal["analyst", "approver", "admin"] | None = None
    approvals: Annotated[int, Field(ge=0, le=10)] | None = None
    template: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,59}$")] | None = None
    cite: ClauseId | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


_OPTIONAL_STEP_FIELDS = ("deadline", "after", "repeat", "action", "role", "approvals", "template", "cite", "note")
_STEP_FIELDS: dict[StepType, frozenset[str]] = {
    StepType.NOTIFY: frozenset({"template", "cite"}),
    StepType.REQUEST_TO_CEASE: frozenset({"deadline", "template", "cite"}),
    StepType.RENOTIFY: frozenset({"after", "repeat", "template"}),
    StepType.ESCALATE_ON_REPEAT: frozenset({"action", "role", "approvals", "cite", "note"}),
    StepType.PROPOSE: frozenset({"action", "role", "approvals", "cite", "note"}),
    StepType.TRIAGE: frozenset({"note"}),
}
_ROLE_FOR_STEP: dict[StepType, ClauseRole] = {
    StepType.REQUEST_TO_CEASE: ClauseRole.DUTY_TO_CEASE,
    StepType.ESCALATE_ON_REPEAT: ClauseRole.ENFORCEMENT_RIGHTS,
    StepType.PROPOSE: ClauseRole.ENFORCEMENT_RIGHTS,
}


class _RepeatIn(_In):
    every: Annotated[int, Field(ge=1, le=100000)] | None = None
    within: Duration
    on_reopen: Annotated[int, Field(ge=0, le=3)] = 0
    max: Severity = Severity.CRITICAL


class _PlaybookIn(_In):
    description: Annotated[str, Field(max_length=2000)] = ""
    severity_on_repeat: _RepeatIn | None = None
    steps: dict[SeverityKey, list[_StepIn]]


class _NoticeDelaysIn(_In):
    low: Duration
    medium: Duration
    high: Duration
    critical: Duration

    def __getitem__(self, severity: Severity) -> timedelta:
        value: timedelta = getattr(self, severity.value)
        return value


class _EngineIn(_In):
    reopen_window: Duration
    digest_interval: Duration
    max_notice_delay: _NoticeDelaysIn
    severity_on_repeat: _RepeatIn


class _ClauseIn(_In):
    id: ClauseId
    title: ShortText
    summary: Annotated[str, Field(min_length=1, max_length=1000)]
    text: Text
    kinds: list[str] = Field(default_factory=list)
    severity: Severity
    kind_severity: dict[str, Severity] = Field(default_factory=dict)
    role: ClauseRole | None = None
    playbook: str | None = None


class _PolicyIn(_In):
    format: Literal[1]
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,59}$")]
    title: ShortText
    effective: date
    source: ShortText
    fallback_clause: ClauseId | None = None
    engine: _EngineIn
    primary: dict[str, ClauseId] = Field(default_factory=dict)
    playbooks: dict[str, _PlaybookIn]
    clauses: Annotated[list[_ClauseIn], Field(min_length=1)]


_MODELS_BY_PATH: list[tuple[tuple[str, ...], type[_In]]] = [
    ((), _PolicyIn),
    (("engine",), _EngineIn),
    (("engine", "max_notice_delay"), _NoticeDelaysIn),
    (("engine", "severity_on_repeat"), _RepeatIn),
    (("clauses", "*"), _ClauseIn),
    (("playbooks", "*"), _PlaybookIn),
    (("playbooks", "*", "severity_on_repeat"), _RepeatIn),
    (("playbooks", "*", "steps", "*", "*"), _StepIn),
]


def _allowed_fields(parent: Path_) -> list[str]:
    """The field names allowed in the mapping at ``parent`` (for "did you mean" hints)."""
    for pattern, model in _MODELS_BY_PATH:
        if len(pattern) == len(parent) and all(p == "*" or p == q for p, q in zip(pattern, parent, strict=True)):
            return list(model.model_fields)
    return []
