"""Our own RFC 9309 matcher, written to be a judge: every verdict names the rule and line it rests on.

Semantics (docs/reference/robots.md has the full list, the Google ``google_only`` choices and where we differ from
protego):

- The file is read up to 500 KiB (512,000 octets, RFC 9309 2.5); a line cut by the limit is dropped. A leading
  UTF-8 byte order mark (whole or partial) is skipped; lines end at CR, LF or CRLF; ``#`` starts a comment.
- A line is ``key: value``. Keys are case-insensitive: ``user-agent``, ``allow``, ``disallow``, ``crawl-delay``,
  ``sitemap``; any other line is ignored and does not end a group. A line without a colon, or a key misspelt the
  way Google accepts (``useragent``, ``disalow`` ...), is *lenient*: the strict reading ignores it, and when the
  Google reading that accepts it would give another verdict, the verdict is ``ambiguous``.
- A group is one or more ``user-agent`` lines and the rules after them; a ``user-agent`` line after a rule starts
  the next group. Blank lines end nothing. Rules before the first ``user-agent`` line belong to no group. Groups
  naming one token are merged; a crawler with no group of its own takes the merged ``*`` groups, else is allowed.
- Tokens compare case-insensitively and exactly. A ``user-agent`` value that is not a product token
  (``Foo Bar``, ``Googlebot/2.1``) is read by its leading token, and a verdict that rests on that reading is
  ``ambiguous``.
- Rules: longest pattern (in octets, after normalisation) wins; allow wins a tie. ``*`` matches any run of
  characters, ``$`` at the end anchors. Paths and patterns are normalised alike: non-ASCII, spaces and controls
  percent-encoded (UTF-8), percent-encoded unreserved characters decoded, other escapes upper-cased.
- ``/robots.txt`` is always allowed. Status: 2xx → the file's rules; 3xx (a redirect the caller did not follow)
  → allowed, ambiguous; 429 → allowed, ambiguous (RFC: 4xx; Google: 5xx); other 4xx → allow all; 5xx or
  unreachable (status 0) → disallow all.
- ``Crawl-delay`` (seconds, integer or decimal) is kept per group; merged groups keep the smallest (the reading
  fairest to the crawler being judged).

Speed: each group is compiled once: plain prefixes into a trie (one dict step per path character), ``$``-anchored
plain paths into a dict, wildcard rules into one alternation in priority order (the first branch that matches is
the best wildcard rule), so a check is a few C calls and no loop over rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from abusedesk.robots.tokens import is_product_token, product_tokens

MAX_BYTES = 500 * 1024
#: a group of at most this many rules is matched with one regex alternation (see CompiledGroup)
SMALL_GROUP = 64
ROBOTS_PATH = "/robots.txt"

State = Literal["allowed", "disallowed", "ambiguous"]

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: scheme and authority (or a leading ``//`` and authority, or a bare host), then the path up to the fragment
_URL_PATH = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|//)?[^/?#]*([^#]*)", re.DOTALL)
_KEYS = {"user-agent": "user-agent", "allow": "allow", "disallow": "disallow", "crawl-delay": "crawl-delay",
         "sitemap": "sitemap"}  # fmt: skip
#: the misspellings Google's parser accepts (robots.cc KeyIsUserAgent/KeyIsDisallow ...); lenient only
_TYPOS = {"useragent": "user-agent", "user agent": "user-agent", "dissallow": "disallow", "dissalow": "disallow",
          "disalow": "disallow", "diasllow": "disallow", "disallaw": "disallow", "site-map": "sitemap"}  # fmt: skip
#: a path ``check`` reads as it is: /-rooted (not ``//``), printable ASCII, no escape (``%``) and no fragment
_PLAIN_PATH = r"^/(?:[\x21-\x22\x24\x26-\x2e\x30-\x7e][\x21-\x22\x24\x26-\x7e]*)?$"
_NO_COLON = re.compile(r"([A-Za-z-]+(?: agent)?)[ \t]+(\S.*)")


def _encode_byte(b: int) -> str:
    return f"%{b:02X}"


def normalise_path(value: str) -> str:
    """``value`` with non-ASCII, spaces and controls percent-encoded as UTF-8, escapes of unreserved characters
    decoded and other escapes upper-cased (RFC 9309 2.2.2), so equal paths compare equal."""
    if value.isascii() and value.isprintable() and " " not in value and "%" not in value:
        return value
    raw = value.encode("utf-8", "surrogateescape")
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and _is_hex(raw[i + 1]) and _is_hex(raw[i + 2]):
            code = int(raw[i + 1 : i + 3], 16)
            out.append(chr(code) if code in _UNRESERVED else _encode_byte(code))
            i += 3
            continue
        out.append(chr(b) if 0x21 <= b <= 0x7E else _encode_byte(b))
        i += 1
    return "".join(out)


def _is_hex(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x46 or 0x61 <= b <= 0x66


def path_of(url: str) -> str:
    """The path, parameters and query of ``url`` that rules are matched against; the fragment dropped, ``/`` if
    empty (Google's ``GetPathParamsQuery``: ``example.com/a?b`` and ``/a?b`` both give ``/a?b``)."""
    if url.startswith("/") and not url.startswith("//"):
        return url.split("#", 1)[0] if "#" in url else url
    m = _URL_PATH.match(url)
    path = m.group(1) if m else ""
    if not path:
        return "/"
    return path if path.startswith("/") else "/" + path


class Rule(NamedTuple):
    """One allow or disallow line: its pattern as written and normalised, where it stands, and its priority
    (octets of the normalised pattern, then allow over disallow) — computed once, compared on every check."""

    allow: bool
    pattern: str
    line: int
    normalised: str
    priority: tuple[int, bool]
    text: str

    @classmethod
    def of(cls, allow: bool, pattern: str, line: int) -> Rule:
        normalised = _normalise_pattern(pattern)
        text = f"{'Allow' if allow else 'Disallow'}: {pattern}"
        return cls(allow, pattern, line, normalised, (len(normalised), allow), text)


class Verdict(NamedTuple):
    """The answer for one URL: ``allowed`` is the strict RFC reading; ``state`` says whether that is certain.

    ``rule`` and ``line`` name the rule the verdict rests on (None when no rule matched or the status decided);
    ``group`` is the token whose group applied (``*``, or None when no group applied); ``reason`` says why.
    """

    allowed: bool
    state: State
    rule: str | None
    line: int | None
    group: str | None
    crawl_delay: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


class CompiledGroup:
    """One token's merged rules, compiled for cheap checks (see the module docstring)."""

    __slots__ = ("crawl_delay", "exact", "lines", "one_re", "one_rules", "prefixes", "rules", "trie", "verdicts",
                 "wild", "wild_rules")  # fmt: skip

    def __init__(self, rules: list[Rule], crawl_delay: float | None, lines: tuple[int, ...]) -> None:
        self.rules = rules
        self.crawl_delay = crawl_delay
        self.lines = lines
        self.trie: dict[str, Any] = {}
        self.exact: dict[str, Rule] = {}
        wild: list[Rule] = []
        prefixes: list[str] = []
        for rule in rules:
            pat = rule.normalised
            if "*" in pat or ("$" in pat[:-1]):
                wild.append(rule)
            elif pat.endswith("$"):
                prev = self.exact.get(pat[:-1])
                if prev is None or rule.priority > prev.priority:
                    self.exact[pat[:-1]] = rule
            else:
                prefixes.append(pat)
                node = self.trie
                for ch in pat:
                    node = node.setdefault(ch, {})
                prev = node.get("")
                if prev is None or rule.priority > prev.priority:
                    node[""] = rule
        # Wildcard rules, grouped by the longest literal piece each needs to find in the path: a group whose
        # piece is absent is skipped with one substring test; a present group's alternation, in priority order,
        # yields its best rule in one regex call.
        by_key: dict[str, list[Rule]] = {}
        for rule in wild:
            pieces = rule.normalised.rstrip("$").split("*")
            by_key.setdefault(max(pieces, key=len), []).append(rule)
        self.wild: list[tuple[str, re.Pattern[str], list[Rule]]] = []
        for key, rules_of_key in by_key.items():
            rules_of_key.sort(key=lambda r: r.priority, reverse=True)
            regex = re.compile("|".join(f"({_pattern_regex(r.normalised)})" for r in rules_of_key), re.DOTALL)
            self.wild.append((key, regex, rules_of_key))
        self.wild.sort(key=lambda item: item[2][0].priority, reverse=True)
        self.wild_rules = sorted(wild, key=lambda r: r.priority, reverse=True)
        #: every plain prefix: one C-level startswith tells whether walking the trie can find anything
        self.prefixes = tuple(prefixes)
        # A small group as one alternation of all its rules in priority order (longest first, allow before
        # disallow): Python's alternation takes the first branch that matches, which is the rule that decides,
        # found in one C call. A large group keeps the trie, the dict and the keyed wildcard groups above (an
        # alternation of hundreds of branches is tried branch by branch).
        self.one_re: re.Pattern[str] | None = None
        self.one_rules: list[Rule] = []
        if 0 < len(rules) <= SMALL_GROUP:
            best: dict[str, Rule] = {}
            for rule in rules:  # one branch per distinct pattern: the best rule of it
                prev = best.get(rule.normalised)
                if prev is None or rule.priority > prev.priority:
                    best[rule.normalised] = rule
            self.one_rules = sorted(best.values(), key=lambda r: r.priority, reverse=True)
            self.one_re = re.compile("|".join(f"({_pattern_regex(r.normalised)})" for r in self.one_rules), re.DOTALL)
        #: the verdict of each rule (and of no rule) for this group, made once: verdicts are immutable
        self.verdicts: dict[int, Verdict] = {}

    def disallow_regex(self) -> str:
        """One RE2 pattern that matches every path (normalised) some disallow rule of this group matches."""
        parts = []
        for rule in self.rules:
            if rule.allow:
                continue
            anchored = rule.normalised.endswith("$")
            body = rule.normalised[:-1] if anchored else rule.normalised
            parts.append(".*".join(_re2_escape(piece) for piece in body.split("*")) + ("$" if anchored else ""))
        return "^(?s:" + "|".join(f"(?:{p})" for p in parts) + ")" if parts else "^\\b\\B"

    def match(self, path: str) -> Rule | None:
        """The rule that decides ``path`` (normalised), or None when no rule matches."""
        if self.one_re is not None:
            m = self.one_re.match(path)
            return None if m is None else self.one_rules[m.lastindex - 1]  # type: ignore[operator]
        best: Rule | None = None
        if path.startswith(self.prefixes):
            node = self.trie
            for ch in path:
                node = node.get(ch)  # type: ignore[assignment]
                if node is None:
                    break
                hit = node.get("")
                if hit is not None:
                    best = hit
        exact = self.exact.get(path)
        if exact is not None and (best is None or exact.priority > best.priority):
            best = exact
        for key, regex, rules in self.wild:
            if best is not None and rules[0].priority <= best.priority:
                break  # the groups are in order of their best rule: none left can win
            if key in path:
                m = regex.match(path)
                if m is not None:
                    rule = rules[m.lastindex - 1]  # type: ignore[operator]
                    if best is None or rule.priority > best.priority:
                        best = rule
        return best


def _re2_escape(text: str) -> str:
    """``text`` as a literal in an RE2 pattern (every character that is not a letter or digit escaped as RE2
    allows: punctuation by a backslash, others as ``\\x{..}``)."""
    return "".join(ch if ch.isalnum() and ch.isascii() else f"\\x{{{ord(ch):x}}}" for ch in text)


def _pattern_regex(pattern: str) -> str:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return regex + r"\Z" if anchored else regex


@dataclass(slots=True)
class _Group:
    agents: list[tuple[str, int, bool]] = field(default_factory=list)  # (token lower, line, exact)
    rules: list[Rule] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Issue:
    """A line the parser did not take as written: ``kind`` is ``unknown``, ``lenient``, ``orphan`` or ``value``."""

    line: int
    kind: str
    text: str


class RobotsTxt:
    """A parsed robots.txt with the HTTP status it was served with; ``check`` judges one URL for one agent.

    ``content`` is bytes (as fetched) or text; ``status`` is the HTTP status (None: 200; 0: unreachable).
    """

    def __init__(self, content: bytes | str | None, status: int | None = 200, *, lenient: bool = False) -> None:
        self.status = 200 if status is None else status
        self.truncated = False
        self.issues: list[Issue] = []
        self.sitemaps: list[str] = []
        self.lenient = lenient
        self._groups: dict[str, CompiledGroup] = {}
        self._inexact: set[str] = set()  # tokens read from a value that is not a product token
        self._cache: dict[str, tuple[CompiledGroup | None, str | None, bool]] = {}
        self._alt: RobotsTxt | None = None
        if content is not None and 200 <= self.status < 300:
            self._parse(content)

    @classmethod
    def parse(cls, content: bytes | str | None, status: int | None = 200) -> RobotsTxt:
        return cls(content, status)

    # -- parsing ------------------------------------------------------------------------------------------------

    def _parse(self, content: bytes | str) -> None:
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        if len(data) > MAX_BYTES:
            self.truncated = True
            data = data[:MAX_BYTES]
            cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
            data = data[: cut + 1] if cut >= 0 else b""
        for bom in (b"\xef\xbb\xbf", b"\xef\xbb", b"\xef"):
            if data.startswith(bom):
                data = data[len(bom) :]
                break
        text = data.decode("utf-8", "surrogateescape")
        groups: list[_Group] = []
        current: _Group | None = None
        in_agents = False
        has_lenient = False
        for number, raw_line in enumerate(_LINE_SPLIT.split(text), start=1):
            line = raw_line.split("#", 1)[0].strip()
            if not line:
                continue
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            value = value.strip()
            directive = _KEYS.get(key) if sep else None
            if directive is None:
                guess = self._lenient_directive(line, key if sep else None, value)
                if guess is None:
                    self.issues.append(Issue(number, "unknown", raw_line))
                    continue
                has_lenient = True
                self.issues.append(Issue(number, "lenient", raw_line))
                if not self.lenient:
                    continue
                directive, value = guess
            if directive == "user-agent":
                if current is None or not in_agents:
                    current = _Group()
                    groups.append(current)
                    in_agents = True
                if value == "*":
                    current.agents.append(("*", number, True))
                elif is_product_token(value):
                    current.agents.append((value.lower(), number, True))
                else:
                    lead = re.match(r"[A-Za-z_-]+", value)
                    if lead is None:
                        self.issues.append(Issue(number, "value", raw_line))
                    else:
                        current.agents.append((lead.group(0).lower(), number, False))
                continue
            if directive == "sitemap":
                self.sitemaps.append(value)
                continue
            if current is None:
                self.issues.append(Issue(number, "orphan", raw_line))
                continue
            in_agents = False
            if directive == "crawl-delay":
                try:
                    delay = float(value)
                except ValueError:
                    delay = -1.0
                if delay >= 0 and delay == delay and delay != float("inf"):
                    current.delays.append(delay)
                else:
                    self.issues.append(Issue(number, "value", raw_line))
                continue
            if not value:  # an empty allow/disallow matches nothing (RFC 9309 2.2.2)
                continue
            current.rules.append(Rule.of(directive == "allow", value, number))
        self._compile(groups)
        if has_lenient and not self.lenient:
            self._alt = RobotsTxt(content, self.status, lenient=True)

    @staticmethod
    def _lenient_directive(line: str, key: str | None, value: str) -> tuple[str, str] | None:
        if key is not None:
            known = _TYPOS.get(key)
            return (known, value) if known else None
        m = _NO_COLON.fullmatch(line)
        if m is None:
            return None
        name = m.group(1).lower()
        known = _KEYS.get(name) or _TYPOS.get(name)
        return (known, m.group(2).strip()) if known else None

    def _compile(self, groups: list[_Group]) -> None:
        merged: dict[str, _Group] = {}
        for group in groups:
            for token, line, exact in group.agents:
                target = merged.setdefault(token, _Group())
                target.agents.append((token, line, exact))
                target.rules.extend(group.rules)
                target.delays.extend(group.delays)
        for token, group in merged.items():
            if not any(exact for _, _, exact in group.agents):
                self._inexact.add(token)
            rules = sorted(set(group.rules), key=lambda r: r.line)
            delay = min(group.delays) if group.delays else None
            self._groups[token] = CompiledGroup(rules, delay, tuple(line for _, line, _ in group.agents))

    # -- matching -----------------------------------------------------------------------------------------------

    def groups(self) -> dict[str, CompiledGroup]:
        """The merged groups by lower-case token (``*`` included)."""
        return dict(self._groups)

    def _select(self, user_agent: str) -> tuple[CompiledGroup | None, str | None, bool]:
        hit = self._cache.get(user_agent)
        if hit is not None:
            return hit
        tokens = product_tokens(user_agent)
        chosen: tuple[CompiledGroup | None, str | None, bool] = (None, None, False)
        for token in tokens:
            group = self._groups.get(token)
            if group is not None:
                chosen = (group, token, token in self._inexact)
                break
        else:
            star = self._groups.get("*")
            if star is not None:
                chosen = (star, "*", False)
        if len(self._cache) < 4096:
            self._cache[user_agent] = chosen
        return chosen

    def crawl_delay(self, user_agent: str) -> float | None:
        """The ``Crawl-delay`` of the group that applies to ``user_agent``, in seconds, or None."""
        group, _, _ = self._select(user_agent)
        return group.crawl_delay if group is not None else None

    def check(self, user_agent: str, url: str) -> Verdict:
        """The verdict for ``user_agent`` (a product token or a whole User-Agent header) fetching ``url``."""
        path = path_of(url)
        status = self.status
        if path.startswith(ROBOTS_PATH) and (len(path) == 11 or path[11] == "?"):
            return Verdict(True, "allowed", None, None, None, None, "/robots.txt is always allowed")
        if not 200 <= status < 300:
            return _status_verdict(status)
        group, token, inexact = self._select(user_agent)
        if group is None:
            verdict = _NO_GROUP
        else:
            rule = group.match(normalise_path(path))
            line = 0 if rule is None else rule.line  # a rule's line names it (hashing the rule costs more)
            verdict = group.verdicts.get(line)  # type: ignore[assignment]
            if verdict is None:
                if rule is None:
                    verdict = Verdict(True, "allowed", None, None, token, group.crawl_delay, "no rule matches")
                else:
                    verdict = Verdict(rule.allow, "allowed" if rule.allow else "disallowed", rule.text, rule.line,
                                      token, group.crawl_delay, "longest matching rule")  # fmt: skip
                group.verdicts[line] = verdict
            if inexact:
                verdict = _ambiguous(verdict, f"group read from a user-agent value that is not a product token "
                                              f"(line {group.lines[0]})")  # fmt: skip
        if self._alt is not None and verdict.state != "ambiguous":
            other = self._alt.check(user_agent, url)
            if other.allowed != verdict.allowed:
                verdict = _ambiguous(verdict, f"a line Google's parser accepts would decide otherwise "
                                              f"({other.rule} on line {other.line})")  # fmt: skip
        return verdict

    def disallowed(self, user_agent: str, paths: Sequence[str]) -> list[tuple[int, Verdict]]:
        """(index, verdict) of each of ``paths`` (paths with any query, as ``check`` reads a URL) whose verdict for
        ``user_agent`` is certainly ``disallowed``: the same verdicts as ``check`` path by path, found with one
        vectorised pass. A path can only be disallowed by a rule of its group that matches it, so one RE2
        alternation of the group's disallow patterns (over the paths that normalise to themselves) picks the
        candidates, and only those are checked one by one."""
        if not paths:
            return []
        if not 200 <= self.status < 300:
            verdict = _status_verdict(self.status)
            if verdict.state != "disallowed":
                return []
            return [(i, v) for i, p in enumerate(paths) if (v := self.check(user_agent, p)).state == "disallowed"]
        group, _, _ = self._select(user_agent)
        if group is None or all(rule.allow for rule in group.rules):
            return []
        arr = pa.array(paths, pa.large_string())
        pattern = group.disallow_regex()
        hit = pc.match_substring_regex(arr, pattern)
        # a path ``check`` would read differently (not plain printable ASCII, an escape, not /-rooted) is checked
        plain = pc.match_substring_regex(arr, _PLAIN_PATH)
        candidates = pc.indices_nonzero(pc.or_kleene(pc.fill_null(hit, True), pc.invert(plain))).to_pylist()
        out = []
        for i in candidates:
            verdict = self.check(user_agent, paths[i])
            if verdict.state == "disallowed":
                out.append((i, verdict))
        return out


_NO_GROUP = Verdict(True, "allowed", None, None, None, None, "no group applies to this agent")


def _ambiguous(verdict: Verdict, why: str) -> Verdict:
    return Verdict(verdict.allowed, "ambiguous", verdict.rule, verdict.line, verdict.group, verdict.crawl_delay,
                   f"{verdict.reason}; {why}")  # fmt: skip


def _status_verdict(status: int) -> Verdict:
    """The verdict a status decides alone (RFC 9309 2.3.1): no rule, no group."""
    state: State
    if 300 <= status < 400:
        allowed, state = True, "ambiguous"
        reason = f"status {status}: a redirect that was not followed; unavailable after five (RFC 9309 2.3.1.2)"
    elif status == 429:
        allowed, state = True, "ambiguous"
        reason = "status 429: unavailable by RFC 9309 (4xx), unreachable by Google's reading"
    elif 400 <= status < 500:
        allowed, state, reason = True, "allowed", f"status {status}: robots.txt unavailable, allow all"
    else:
        allowed, state = False, "disallowed"
        reason = "robots.txt " + ("unreachable" if status == 0 else f"status {status}: server error") + ", disallow all"
    return Verdict(allowed, state, None, None, None, None, reason)


def _normalise_pattern(value: str) -> str:
    anchored = value.endswith("$")
    body = value[:-1] if anchored else value
    out = "*".join(normalise_path(part) for part in body.split("*"))
    return out + "$" if anchored else out
