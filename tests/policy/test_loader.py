"""The shipped policy file, and the loader's refusal of bad files with file, line and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import pytest

from abusedesk.domain.actions import TWO_PERSON
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.records import Severity
from abusedesk.policy import ClauseRole, Policy, StepType, load_policy, load_policy_text
from abusedesk.policy.loader import MAX_POLICY_BYTES, load_policy_bytes
from tests.support.components import missing

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "aup-2025-06-10.txt"
SHIPPED_TEXT = resources.files("abusedesk.policy").joinpath("data", "aup-2025-06-10.yaml").read_text("utf-8")
SECTIONS = ["1", *(f"1.{n}" for n in range(1, 16)), "2", "3", "4"]


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def seed_sections() -> dict[str, str]:
    """Section id -> verbatim text (without its number) from ../shared/seed/aup-2025-06-10.txt."""
    if not SEED.is_file():
        missing(f"the policy seed text is not at {SEED}")
    out: dict[str, str] = {}
    top = ""
    for line in SEED.read_text("utf-8").splitlines():
        if m := re.fullmatch(r"  (\d+)\. (.*)", line):
            top = m.group(1)
            out[top] = m.group(2)
        elif m := re.fullmatch(r"    (\d+)\. (.*)", line):
            out[f"{top}.{m.group(1)}"] = m.group(2)
    return out


# ---------------------------------------------------------------------------------------------------- shipped


def test_shipped_policy_loads_with_its_identity(shipped: Policy) -> None:
    assert shipped.id == "aiven-aup"
    assert shipped.effective == date(2025, 6, 10)
    assert shipped.source == "aup-2025-06-10.txt"
    assert re.fullmatch(r"aiven-aup@[0-9a-f]{12}", shipped.version)
    assert shipped.version.endswith(shipped.sha256[:12])
    assert shipped.source_text == SHIPPED_TEXT


def test_every_section_of_the_seed_is_a_clause_in_order(shipped: Policy) -> None:
    assert list(shipped.clauses) == SECTIONS


def test_clause_text_is_verbatim_from_the_seed(shipped: Policy, seed_sections: dict[str, str]) -> None:
    assert sorted(seed_sections) == sorted(SECTIONS)
    for cid, text in seed_sections.items():
        assert shipped.clause(cid).text == text, cid


def test_summaries_are_our_own_words(shipped: Policy, seed_sections: dict[str, str]) -> None:
    for cid, clause in shipped.clauses.items():
        assert clause.summary and clause.summary != clause.text
        assert clause.summary.endswith(".")
        # no run of eight words copied from the clause
        words = clause.text.lower().split()
        grams = {" ".join(words[i : i + 8]) for i in range(len(words) - 7)}
        assert not any(g in clause.summary.lower() for g in grams), cid


def test_every_kind_maps_to_a_clause_explicitly(shipped: Policy) -> None:
    named = {k for c in shipped.clauses.values() for k in c.kinds}
    assert set(KINDS) == named
    for kind in KINDS:
        ids = shipped.clauses_for_kind(kind)
        assert ids, kind
        assert kind in shipped.clause(ids[0]).kinds
        assert shipped.playbook_for(ids[0], shipped.severity_for_kind(kind)).steps


@pytest.mark.parametrize(
    ("kind", "clause"),
    [
        ("scan", "1.8"),
        ("dos", "1.8"),
        ("open-proxy", "1.8"),
        ("open-relay", "1.8"),
        ("open-resolver", "1.8"),
        ("open-service", "1.8"),
        ("load-test", "1.3"),
        ("brute-force", "1.7"),
        ("intrusion", "1.7"),
        ("compromised-host", "1.7"),
        ("spoofed-source", "1.7"),
        ("exposed-data", "1.7"),
        ("vulnerable-service", "1.7"),
        ("misconfiguration", "1.7"),
        ("service-interference", "1.9"),
        ("circumvention", "1.10"),
        ("spam", "1.11"),
        ("header-forgery", "1.11"),
        ("bulk-messaging", "1.11"),
        ("phishing", "1.5"),
        ("fraud", "1.5"),
        ("harassment", "1.5"),
        ("mirroring", "1.5"),
        ("malware", "1.6"),
        ("copyright", "1.2"),
        ("copyright-p2p", "1.2"),
        ("trademark", "1.2"),
        ("crawling", "1.14"),
        ("disposable-email", "2"),
        ("illegal-content", "1.1"),
        ("privacy", "1.1"),
        ("legal-request", "1.1"),
        ("csam", "1.1"),
        ("csem", "1.1"),
        ("hateful-content", "1.4"),
        ("blocklisted", "1.12"),
        ("threat-intel", "1.12"),
        ("high-risk-use", "1.13"),
        ("other-product-tos", "1.15"),
        ("other", "1"),
    ],
)
def test_architecture_default_mapping(shipped: Policy, kind: str, clause: str) -> None:
    assert shipped.clauses_for_kind(kind)[0] == clause


def test_hygiene_kinds_are_low_and_only_notified(shipped: Policy) -> None:
    for kind in ("vulnerable-service", "misconfiguration"):
        assert shipped.severity_for_kind(kind) is Severity.LOW
        steps = shipped.playbook_for("1.7", Severity.LOW).steps
        assert [s.type for s in steps] == [StepType.NOTIFY, StepType.RENOTIFY]


def test_rights_and_duties_are_role_clauses_without_kinds(shipped: Policy) -> None:
    rights, duty = shipped.clause("3"), shipped.clause("4")
    assert rights.role is ClauseRole.ENFORCEMENT_RIGHTS and rights.kinds == () and rights.playbook is None
    assert duty.role is ClauseRole.DUTY_TO_CEASE and duty.kinds == () and duty.playbook is None
    assert shipped.clause_for_role("duty-to-cease") is duty
    for action in TWO_PERSON:
        assert shipped.cite_for_action(action) == "3"


def test_shipped_playbooks_cite_and_gate_as_required(shipped: Policy) -> None:
    seen_types = set()
    for spec in shipped.playbooks.values():
        assert "default" in spec.steps
        for steps in spec.steps.values():
            for step in steps:
                seen_types.add(step.type)
                if step.type is StepType.REQUEST_TO_CEASE:
                    assert step.deadline is not None and step.deadline > timedelta(0)
                    assert step.cite == "4"
                if step.type in (StepType.PROPOSE, StepType.ESCALATE_ON_REPEAT):
                    assert step.action is not None and step.approvals >= 2
                    assert step.cite == "3"
    assert seen_types == set(StepType)


def test_engine_settings(shipped: Policy) -> None:
    assert shipped.reopen_window == timedelta(days=30)
    assert shipped.digest_interval == timedelta(hours=1)
    assert shipped.max_notice_delay(Severity.CRITICAL) == timedelta(0)
    delays = [shipped.max_notice_delay(s) for s in Severity]
    assert delays == sorted(delays, reverse=True)


def test_load_from_a_path_and_from_bytes_agree(tmp_path: Path, shipped: Policy) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(SHIPPED_TEXT, encoding="utf-8")
    mine = load_policy(path)
    assert mine == shipped and mine.version == shipped.version
    assert mine.path == str(path)
    assert load_policy(str(path)).version == shipped.version
    assert load_policy_bytes(SHIPPED_TEXT.encode(), "x").version == shipped.version


def test_any_change_to_the_file_changes_the_version(shipped: Policy) -> None:
    changed = load_policy_text(SHIPPED_TEXT + "\n# a comment\n")
    assert changed.version != shipped.version
    assert changed.id == shipped.id


def test_unquoted_clause_ids_keep_their_text() -> None:
    text = SHIPPED_TEXT.replace('id: "1.10"', "id: 1.10").replace('id: "2"', "id: 2")
    policy = load_policy_text(text)
    assert "1.10" in policy.clauses and "1.1" in policy.clauses and "2" in policy.clauses
    assert policy.clauses_for_kind("circumvention") == ("1.10",)


def test_fallback_clause_catches_kinds_no_clause_names() -> None:
    text = SHIPPED_TEXT.replace("    kinds: [high-risk-use]\n", "")
    text = text.replace("    kinds: [other]\n", "")
    policy = load_policy_text(text)
    assert policy.clauses_for_kind("high-risk-use") == ("1",)
    assert policy.clauses_for_kind("other") == ("1",)
    assert policy.severity_for_kind("high-risk-use") is Severity.LOW


# ---------------------------------------------------------------------------------------------------- bad files


@dataclass(frozen=True)
class Bad:
    """Replace ``old`` (first occurrence) by ``new``; expect an error on ``field`` at the line holding ``at``."""

    old: str
    new: str
    field: str | None
    at: str  # text on the expected line of the *mutated* file ("" : the line where ``old`` started)
    says: str
    at_nth: int = 1
    after: str = ""  # look for ``at`` only after this text


BAD = {
    "unknown step type": Bad(
        "- step: notify\n", "- step: notfy\n", "playbooks.cease.steps.low[0].step", "step: notfy", "'notify'"
    ),
    "missing deadline": Bad(
        "- step: request-to-cease\n          deadline: 72h\n",
        "- step: request-to-cease\n",
        "playbooks.cease.steps.default[0].deadline",
        "",
        "needs a 'deadline'",
    ),
    "request-to-cease with zero deadline": Bad(
        "deadline: 72h", "deadline: 0", "playbooks.cease.steps.default[0].deadline", "deadline: 0", "longer than 0"
    ),
    "approvals below two": Bad(
        "approvals: 2",
        "approvals: 1",
        "playbooks.cease.steps.default[2].approvals",
        "approvals: 1",
        "at least 2 persons",
    ),
    "approvals missing on a proposal": Bad(
        "- step: propose\n          action: report-officials\n          approvals: 2\n",
        "- step: propose\n          action: report-officials\n",
        "playbooks.unlawful.steps.critical[1].approvals",
        "",
        "approvals: 2",
    ),
    "action missing on a proposal": Bad(
        "- step: propose\n          action: report-officials\n",
        "- step: propose\n",
        "playbooks.unlawful.steps.critical[1].action",
        "",
        "needs 'action'",
    ),
    "unknown action": Bad(
        "action: report-officials",
        "action: delete-customer",
        "playbooks.unlawful.steps.critical[1].action",
        "action: delete-customer",
        "suspend-service",
    ),
    "field that does not apply to the step": Bad(
        "deadline: 72h\n",
        "deadline: 72h\n          after: 1h\n",
        "playbooks.cease.steps.default[0].after",
        "after: 1h",
        "does not apply",
    ),
    "renotify without after": Bad(
        "        - step: renotify\n          after: 48h\n",
        "        - step: renotify\n",
        "playbooks.cease.steps.default[1].after",
        "",
        "needs 'after'",
    ),
    "escalate without a request to cease": Bad(
        "        - step: request-to-cease\n          deadline: 48h\n          template: takedown\n",
        "        - step: notify\n          template: takedown\n",
        "playbooks.takedown.steps.default[2]",
        "- step: escalate-on-repeat",
        "must follow a request-to-cease",
        after="  takedown:",
    ),
    "unknown severity key in steps": Bad(
        "      critical:\n        - step: request-to-cease\n          deadline: 4h\n",
        "      critcal:\n        - step: request-to-cease\n          deadline: 4h\n",
        "playbooks.cease.steps.critcal",
        "critcal:",
        "'default'",
    ),
    "playbook without default": Bad(
        "      default:\n        - step: request-to-cease\n          deadline: 48h\n",
        "      medium:\n        - step: request-to-cease\n          deadline: 48h\n",
        "playbooks.takedown.steps",
        "    steps:",
        "no 'default'",
        after="  takedown:",
    ),
    "unknown kind": Bad("kinds: [load-test]", "kinds: [load-tst]", "clauses[3].kinds[0]", "load-tst", "'load-test'"),
    "kind twice in a clause": Bad(
        "kinds: [load-test]", "kinds: [load-test, load-test]", "clauses[3].kinds[1]", "load-test, load", "twice"
    ),
    "duplicate clause id": Bad('id: "1.10"', 'id: "1.9"', "clauses[10].id", 'id: "1.9"', "used twice", at_nth=2),
    "kind under two clauses without primary": Bad(
        '  crawling: "1.14"\n', "", "clauses[14].kinds[0]", "kinds: [crawling]", "primary"
    ),
    "primary names a clause without the kind": Bad(
        '  crawling: "1.14"', '  crawling: "1.13"', "primary.crawling", 'crawling: "1.13"', "does not list"
    ),
    "primary names an unknown kind": Bad(
        '  crawling: "1.14"\n', '  crawling: "1.14"\n  crawlin: "1.14"\n', "primary.crawlin", "crawlin:", "known"
    ),
    "bad duration": Bad(
        "reopen_window: 30d", "reopen_window: 30 days", "engine.reopen_window", "reopen_window", "unit"
    ),
    "duration without unit": Bad(
        "digest_interval: 1h", "digest_interval: 60", "engine.digest_interval", "digest_interval", "no unit"
    ),
    "missing notice delay": Bad(
        "    critical: 0\n", "", "engine.max_notice_delay.critical", "max_notice_delay:", "required"
    ),
    "unknown severity": Bad(
        "    severity: low\n    role: enforcement-rights",
        "    severity: lowish\n    role: enforcement-rights",
        "clauses[17].severity",
        "severity: lowish",
        "'critical'",
    ),
    "unknown kind_severity severity": Bad(
        "      dos: high", "      dos: huge", "clauses[8].kind_severity.dos", "dos: huge", "'high'"
    ),
    "kind_severity for a kind not in the clause": Bad(
        "      dos: high", "      spam: high", "clauses[8].kind_severity.spam", "spam: high", "not in this clause"
    ),
    "unknown field": Bad(
        "    title: Distributing malware", "    titel: Distributing malware", "clauses[6].titel", "titel:", "'title'"
    ),
    "unknown playbook": Bad(
        "playbook: takedown", "playbook: take-down", "clauses[2].playbook", "playbook: take-down", "'takedown'"
    ),
    "clause with kinds but no playbook": Bad(
        "    kinds: [malware]\n    severity: high\n    playbook: harmful-content\n",
        "    kinds: [malware]\n    severity: high\n",
        "clauses[6].playbook",
        'id: "1.6"',
        "names no playbook",
    ),
    "role held twice": Bad(
        "role: duty-to-cease",
        "role: enforcement-rights",
        "clauses[18].role",
        "role: enforcement-rights",
        "already",
        at_nth=2,
    ),
    "unknown role": Bad("role: duty-to-cease", "role: duty", "clauses[18].role", "role: duty", "'duty-to-cease'"),
    "role missing for a request to cease": Bad(
        "    role: duty-to-cease\n",
        "",
        "playbooks.cease.steps.default[0]",
        "- step: request-to-cease",
        "no clause has that role",
    ),
    "cite of an unknown clause": Bad(
        "- step: notify\n", '- step: notify\n          cite: "9.9"\n', "playbooks.cease.steps.low[0].cite", "9.9", "9.9"
    ),
    "unknown fallback clause": Bad(
        'fallback_clause: "1"', 'fallback_clause: "0"', "fallback_clause", "fallback_clause", "does not exist"
    ),
    "wrong format version": Bad("format: 1", "format: 2", "format", "format: 2", "1"),
    "bad policy id": Bad("id: aiven-aup", "id: Aiven AUP", "id", "id: Aiven AUP", "pattern"),
    "bad effective date": Bad("effective: 2025-06-10", "effective: 2025-13-10", "effective", "effective", "month"),
    "clause id with spaces": Bad('id: "1.15"', 'id: "1 15"', "clauses[15].id", 'id: "1 15"', "clause id"),
    "empty title": Bad("title: High-risk use", 'title: ""', "clauses[13].title", 'title: ""', "at least 1"),
    "repeat every zero": Bad("    every: 10\n", "    every: 0\n", "engine.severity_on_repeat.every", "every: 0", "1"),
    "duplicate key": Bad(
        "  reopen_window: 30d\n",
        "  reopen_window: 30d\n  reopen_window: 31d\n",
        "engine.reopen_window",
        "reopen_window: 31d",
        "twice",
    ),
    "anchor and alias": Bad("source: aup-2025-06-10.txt", "source: *t", "source", "source: *t", "aliases", at_nth=1),
    "custom tag": Bad(
        "source: aup-2025-06-10.txt", "source: !!python/object:os.system x", "source", "source: !!", "tag"
    ),
    "yaml syntax": Bad("engine:\n", "engine: [\n", None, "", "not valid YAML"),
    "tab indentation": Bad("  reopen_window: 30d\n", "\treopen_window: 30d\n", None, "", "not valid YAML"),
}


def _mutate(bad: Bad) -> str:
    assert bad.old in SHIPPED_TEXT, bad.old
    text = SHIPPED_TEXT.replace(bad.old, bad.new, 1)
    if bad.new == "source: *t":
        text = text.replace("title: Aiven Acceptable Use Policy", "title: &t Aiven Acceptable Use Policy", 1)
    return text


def _expected_line(bad: Bad, text: str) -> int:
    if bad.at == "":
        return SHIPPED_TEXT[: SHIPPED_TEXT.index(bad.old)].count("\n") + 1
    start = text[: text.index(bad.after)].count("\n") if bad.after else 0
    lines = [i for i, line in enumerate(text.splitlines(), 1) if i > start and bad.at in line]
    return lines[bad.at_nth - 1]


@pytest.mark.parametrize("name", list(BAD))
def test_bad_file_names_file_line_and_field(name: str, tmp_path: Path) -> None:
    bad = BAD[name]
    text = _mutate(bad)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    exc = info.value
    assert exc.file == str(path)
    assert exc.errors, "every problem is listed in .errors"
    assert all(e.file == str(path) and e.line is not None and e.line >= 1 for e in exc.errors)
    assert exc.message.startswith(f"{path}:{exc.line}: ")
    if bad.field is None:  # a YAML syntax error: no field, a line near the damage
        damaged = SHIPPED_TEXT[: SHIPPED_TEXT.index(bad.old)].count("\n") + 1
        assert exc.line is not None and damaged <= exc.line <= damaged + 5
        assert bad.says in exc.message
        return
    matching = [e for e in exc.errors if e.field == bad.field]
    assert matching, f"no error for field {bad.field!r} in {[e.message for e in exc.errors]}"
    err = matching[0]
    assert bad.says in err.message
    assert f"field '{bad.field}'" in err.message
    assert err.message.startswith(f"{path}:{err.line}: ")
    assert err.line == _expected_line(bad, text), err.message


def test_unmapped_kinds_without_a_fallback_clause_are_an_error() -> None:
    text = SHIPPED_TEXT.replace('fallback_clause: "1"\n', "").replace("    kinds: [other]\n", "")
    with pytest.raises(ConfigError, match="fall under no clause") as info:
        load_policy_text(text, "p.yaml")
    assert info.value.field == "clauses"
    assert info.value.line == text.splitlines().index("clauses:") + 1
    assert "other" in info.value.message


def test_all_problems_are_collected_and_the_first_leads() -> None:
    text = SHIPPED_TEXT.replace("approvals: 2", "approvals: 1").replace("kinds: [load-test]", "kinds: [load-tst]")
    with pytest.raises(ConfigError) as info:
        load_policy_text(text, "many.yaml")
    exc = info.value
    assert len(exc.errors) == SHIPPED_TEXT.count("approvals: 2") + 1
    lines = [e.line or 0 for e in exc.errors]
    assert lines == sorted(lines)
    assert exc.line == lines[0] and exc.field == exc.errors[0].field
    assert f"and {len(exc.errors) - 1} more problems" in exc.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_policy(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="directory"):
        load_policy(tmp_path)


def test_non_utf8_and_oversized_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    latin1 = "title: Hochrisiko-Nutzung \N{LATIN SMALL LETTER A WITH DIAERESIS}".encode("latin-1")
    path.write_bytes(SHIPPED_TEXT.encode("utf-8").replace(b"title: High-risk use", latin1))
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_policy(path)
    assert info.value.line == SHIPPED_TEXT.splitlines().index("    title: High-risk use") + 1
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(ConfigError, match="more than"):
        load_policy(big)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a list\n", "mapping"),
        ("just text\n", "mapping"),
        ("[" * 3000, "YAML"),
        ("a: b\x00\n", "YAML"),
    ],
)
def test_not_a_policy_at_all(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        load_policy_text(text, "t.yaml")
    assert info.value.file == "t.yaml"
    assert info.value.line == 1


def test_nothing_is_loaded_when_the_file_is_bad(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from abusedesk.runtime import Runtime
    from abusedesk.store.tables.policy import PolicyVersionRow

    path = tmp_path / "bad.yaml"
    path.write_text(SHIPPED_TEXT.replace("approvals: 2", "approvals: 1", 1), encoding="utf-8")
    rt = Runtime(runtime.settings.model_copy(update={"policy_file": path}), clock=runtime.clock, engine=runtime.engine)
    with pytest.raises(ConfigError):
        _ = rt.policy
    assert "policy" not in rt.__dict__
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PolicyVersionRow)) == 0
