"""The ARF parser's fast path (parsers.fastmime) against its standard-library path: the same outcome, or a decline.

``fast_view`` reads the common shape of a feedback report straight from the bytes; ``stdlib_view`` reads it from
``email``'s compat32 parse. For every input where the fast path answers, both must give the same events (every
field, the id), the same issues and the same ParseError message. Inputs: every mail of the shared corpus, the
golden files, the fixtures of test_arf.py, and generated and mutated feedback reports (hypothesis). Where the
fast path declines, the parser uses the standard library: nothing can get worse.
"""

from __future__ import annotations

import base64
import os
import quopri
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.arf import ArfParser, ArfView, fast_view, report_fast_view, stdlib_view
from abusedesk.parsers.base import Report
from tests.parsers.mailsupport import make_report, mutate
from tests.parsers.test_arf import RFC_FIELDS, arf_mail

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions" / "arf"
ARF_FAMILIES = ("abuseio-notifier-samples/feedback-loop", "abuseio-notifier-samples/spamexperts")
EXAMPLES = int(os.environ.get("ABUSEDESK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PARSER = ArfParser()


def outcome(view: ArfView | None, parser: ArfParser = PARSER) -> Any:
    """What the parser makes of one view: events as dicts (id included) and issues, or the ParseError message."""
    assert view is not None
    try:
        out = list(parser.events(view))
    except ParseError as exc:
        return ("error", exc.message)
    return [item.to_dict() if isinstance(item, Event) else ("issue", item.reason, item.line) for item in out]


def stdlib_outcome(data: bytes, parser: ArfParser = PARSER) -> Any:
    try:
        view = stdlib_view(make_report(data))
    except ParseError as exc:
        return ("error", exc.message)
    return outcome(view, parser)


def assert_same(data: bytes) -> bool:
    """True when the fast path answered (and then agreed with the standard library); False when it declined."""
    view = fast_view(data)
    if view is not None:
        assert outcome(view) == stdlib_outcome(data), data[:300]
        assert outcome(view, ArfParser(ArfParser.Params(derive_source_ip=False))) == stdlib_outcome(
            data, ArfParser(ArfParser.Params(derive_source_ip=False))
        )
    report = make_report(data)
    assert PARSER.recognises(report) == _stdlib_recognises(data)
    return view is not None


def _stdlib_recognises(data: bytes) -> bool:
    from abusedesk.parsers import arf, mime

    message = make_report(data).message
    if message is None:
        return False
    msg = arf.find_arf(message)
    if msg is None:
        return False
    fields = arf.feedback_fields(msg)
    return fields is None or (mime.header(fields, "Feedback-Type") or "").strip().lower() != "xarf"


# --- every real and fixture input ----------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_corpus_mail_gives_the_same_outcome_on_both_paths(corpus: Path) -> None:
    taken = 0
    for path in sorted((corpus / "reports").rglob("*")):
        if path.is_file() and path.suffix not in (".license", ".md", ".json", ".csv"):
            taken += assert_same(path.read_bytes())
    assert taken >= 34


@pytest.mark.corpus
@pytest.mark.parametrize("family", ARF_FAMILIES)
def test_the_fast_path_reads_every_corpus_feedback_report(corpus: Path, family: str) -> None:
    """The feedback loops of the corpus are the common shape: the fast path must not quietly decline them."""
    files = sorted((corpus / "reports" / family).glob("*.eml"))
    assert files
    for path in files:
        assert assert_same(path.read_bytes()), f"the fast path declined {path.name}"


def test_golden_inputs_give_the_same_outcome_on_both_paths() -> None:
    cases = sorted(GOLDEN.glob("*/*.in"))
    assert cases
    answered = sum(assert_same(p.read_bytes()) for p in cases)
    assert answered >= 5  # the ARF golden cases that are well-formed


FIXTURES = {
    "rfc5965": arf_mail(RFC_FIELDS),
    "crlf": arf_mail(RFC_FIELDS).replace(b"\n", b"\r\n"),
    "mbox_from_line": b"From fbl@mailbox.example.net Mon Feb  2 12:00:00 2026\n" + arf_mail(RFC_FIELDS),
    "rfc822_headers": arf_mail(RFC_FIELDS, third_type="text/rfc822-headers"),
    "no_source_ip": arf_mail("Feedback-Type: abuse\nUser-Agent: JMRP\n"),
    "bad_source_and_date": arf_mail("Feedback-Type: abuse\nArrival-Date: soon\nSource-IP: nowhere\n"),
    "no_feedback_type": arf_mail("User-Agent: x\nSource-IP: 192.0.2.1\n"),
    "xarf": arf_mail("Feedback-Type: xarf\nSource-IP: 192.0.2.1\n"),
    "folded_and_encoded": arf_mail(
        RFC_FIELDS.replace("User-Agent: SomeGenerator/1.0", "User-Agent: =?utf-8?q?Gen=C3=A9rateur?=\n  2.0")
    ).replace(b"Subject: FBL", b"Subject: =?iso-8859-1?q?caf=E9?=\n\tfolded"),
    "eight_bit_headers": arf_mail(RFC_FIELDS).replace(b"Subject: FBL", b"Subject: caf\xe9 \xff"),
    "upper_case_names": arf_mail(RFC_FIELDS.upper().replace("ABUSE\n", "abuse\n")),
    "no_report_type": arf_mail(RFC_FIELDS, report_type=""),
}


@pytest.mark.parametrize("name", list(FIXTURES))
def test_fixtures_give_the_same_outcome_on_both_paths(name: str) -> None:
    data = FIXTURES[name]
    answered = assert_same(data)
    assert answered or name in ("no_report_type",), f"the fast path declined {name}"


def test_quoted_printable_rfc822_headers_part_is_decoded_on_both_paths() -> None:
    original = (
        "Received: from mta.example.com (mta.example.com [192.0.2.44]) by mx.example.net; "
        "Mon, 02 Feb 2026 10:00:00 +0000\nSubject: =C3=A9t=C3=A9\n"
    )
    data = arf_mail("Feedback-Type: abuse\n", "", third_type="text/rfc822-headers")
    data = data.replace(
        b"Content-Type: text/rfc822-headers\n\n",
        b"Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: quoted-printable\n\n"
        + quopri.encodestring(original.encode())
        + b"\n",
    )
    assert assert_same(data)
    (event,) = [i for i in PARSER.parse(make_report(data)) if isinstance(i, Event)]
    assert event.source_ip == "192.0.2.44" and event.ip_derived


# --- generated and mutated reports -----------------------------------------------------------------------------

FIELD_LINES = [
    "Feedback-Type: abuse",
    "Feedback-Type: fraud",
    "feedback-type:not-spam",
    "Feedback-Type: xarf",
    "User-Agent: Gen/1.0",
    "Version: 1",
    "Version: 0.1",
    "Source-IP: 192.0.2.7",
    "Source-IP: [2001:db8::1]",
    "Source-IP: 010.1.1.1",
    "Source-IP: junk",
    "Arrival-Date: Mon, 02 Feb 2026 10:00:00 +0100",
    "Arrival-Date: Mon, 02 Feb 2026 10:00:00 -0000 (UTC)",
    "Arrival-Date: 2 Feb 2026 25:00:00 +0000",
    "Received-Date: Tue, 19 Jan 2016 14:32:40 -0500 (EST)",
    "Received-Date: soon",
    "Reported-Domain: example.com",
    "Reported-URI: http://example.com/x",
    "Original-Rcpt-To: <a@example.net>",
    "Redacted-Address: redacted@",
    "Incidents: 3",
    "Authentication-Results: mx.example.net; spf=fail",
    "Content-Type: text/plain",
    "From x",
    ": nameless",
    " continued",
    "\tcontinued",
    "",
    "not a field",
    "Subject: =?utf-8?b?w6l0w6k=?=",
]
ORIGINAL_LINES = [
    "Received: from a.example.com (a.example.com [203.0.113.9]) by mx.example.net; Mon, 02 Feb 2026 10:00:00 +0000",
    "Received: from b (b [10.0.0.1])\n\tby c; Mon, 02 Feb 2026 10:00:00 +0000",
    "Received: from [IPv6:2001:db8::5] by mx.example.net",
    "RECEIVED: from d (unknown [198.51.100.77]) by e",
    "Message-ID: <m@example.com>",
    "Subject: Buy now",
    "Subject: =?iso-8859-1?q?caf=E9?=",
    "Date: Mon, 02 Feb 2026 09:59:58 +0000",
    "Date: yesterday",
    "From: news@example.com",
    " continuation",
    "",
    "body line",
    "--b1",
]
TOP_LINES = [
    "From: fbl@mailbox.example.net",
    'From: "FBL" <fbl@mailbox.example.net>',
    "From: FBL <FBL@Mailbox.Example.NET>",
    "From: fbl@mailbox.example.net (the loop)",
    "Date: Mon, 02 Feb 2026 12:00:00 +0000",
    "Date: garbage",
    "Message-ID: <report-1@mailbox.example.net>",
    "Subject: FBL",
    "X-Mailer: x",
    "MIME-Version: 1.0",
    "Content-Transfer-Encoding: base64",
]
CONTENT_TYPES = [
    'multipart/report; report-type=feedback-report; boundary="b1"',
    "multipart/report; report-type=feedback-report; boundary=b1",
    'Multipart/Report; Report-Type="Feedback-Report"; Boundary="b1"',
    'multipart/mixed; boundary="b1"',
    'multipart/report; boundary="b1"; report-type=feedback-report; boundary="b2"',
    'multipart/report; report-type=feedback-report;\n boundary="b1"',
    'multipart/report; report-type=feedback-report; boundary="b1";',
    "multipart/report; report-type=feedback-report; boundary=<b1>",
    'multipart/report; report-type=feedback-report; boundary*="b1"',
    'multipart/report; report-type=feedback-report; boundary="b:1"',
    'multipart/report; report-type=feedback-report; boundary="b 1"',
    "multipart/signed; boundary=b1",
    "multipart/digest; boundary=b1",
    "text/plain",
]
PART_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "message/feedback-report",
    "Message/Feedback-Report",
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "text/rfc822-header",
    "message/rfc822-headers",
    "message/delivery-status",
    "multipart/alternative; boundary=b2",
    "application/octet-stream",
    None,
]
ENCODINGS = [None, "7bit", "base64", "quoted-printable", "x-uuencode"]


def _odd(draw: st.DrawFn, common: list[str], odd: list[str]) -> str:
    """Mostly one of the common choices, now and then an odd one."""
    return draw(st.sampled_from(common if draw(st.integers(0, 5)) else odd))


@st.composite
def feedback_reports(draw: st.DrawFn) -> bytes:
    """ARF-like mails: mostly the common shape (text, feedback fields, reported message), with many departures."""
    eol = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    boundary = _odd(draw, ["b1"], ["b:1", "b 1", "b1x", "b"])
    top = draw(st.lists(st.sampled_from(TOP_LINES), min_size=2, max_size=6))
    ctype = _odd(draw, CONTENT_TYPES[:3], CONTENT_TYPES[3:])
    head = [*top[: len(top) // 2], f"Content-Type: {ctype}", *top[len(top) // 2 :]]
    lines = [*head, "", draw(st.sampled_from(["", "This is a MIME report."]))]
    common = ["text/plain", "message/feedback-report", _odd(draw, ["message/rfc822"], ["text/rfc822-headers"])]
    types = common if draw(st.integers(0, 3)) else draw(st.lists(st.sampled_from(PART_TYPES), max_size=4))
    parts: list[list[str]] = []
    for ptype in types:
        enc = _odd(draw, [None, "7bit"], ENCODINGS)
        phead = ([f"Content-Type: {ptype}"] if ptype else []) + ([f"Content-Transfer-Encoding: {enc}"] if enc else [])
        if ptype and "feedback" in ptype.lower():
            body = [draw(st.sampled_from(FIELD_LINES[:4]))]
            body += draw(st.lists(st.sampled_from(FIELD_LINES[4:22] if draw(st.integers(0, 3)) else FIELD_LINES)))
        elif ptype and ("rfc822" in ptype or "global" in ptype):
            body = draw(st.lists(st.sampled_from(ORIGINAL_LINES[:10] if draw(st.integers(0, 3)) else ORIGINAL_LINES)))
        else:
            body = draw(st.lists(st.sampled_from(["hello", "--b1", "-- ", "Content-Type: x", ""]), max_size=3))
        text = "\n".join(body)
        if enc == "base64" and draw(st.booleans()):
            text = base64.encodebytes(text.encode()).decode()
        elif enc == "quoted-printable" and draw(st.booleans()):
            text = quopri.encodestring(text.encode()).decode()
        separator = [""] if draw(st.integers(0, 7)) else []
        parts.append(phead + separator + [text])
    for part in parts:
        lines += [f"--{_odd(draw, [boundary], ['b2'])}", *part]
    lines += [_odd(draw, [f"--{boundary}--"], [f"--{boundary}-- ", "", f"--{boundary}"]), ""]
    return eol.join("\n".join(lines).split("\n")).encode("utf-8", "surrogateescape")


@st.composite
def mutated(draw: st.DrawFn, pool: list[bytes]) -> bytes:
    tokens = [b"\n", b"\r\n", b"\r", b"--", b": ", b" ", b"\t", b"From ", b":", b"=?", b"\xe9", b"Content-Type: "]
    return mutate(draw, draw(st.sampled_from(pool)), tokens)


def seed_pool() -> list[bytes]:
    from tests.conftest import CORPUS

    pool = [*FIXTURES.values(), *(p.read_bytes() for p in sorted((GOLDEN / "arf").glob("*.in")))]
    for family in ARF_FAMILIES:
        pool += [p.read_bytes() for p in sorted((CORPUS / "reports" / family).glob("*.eml"))[:6]]
    return pool


@FUZZ
@given(data=feedback_reports())
def test_generated_reports_give_the_same_outcome_or_the_fast_path_declines(data: bytes) -> None:
    assert_same(data)


@FUZZ
@given(data=mutated(seed_pool()))
def test_mutated_reports_give_the_same_outcome_or_the_fast_path_declines(data: bytes) -> None:
    assert_same(data)


def regression_cases() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.bin"))


@pytest.mark.parametrize("path", regression_cases(), ids=lambda p: p.name)
def test_fast_path_regressions(path: Path) -> None:
    """Inputs the tests above once failed on (fuzz_regressions/arf, replayed by test_fuzz_mail.py for crashes too).

    encoded-word-charset-not-ascii.bin: an encoded word whose charset name has a non-ASCII byte made
    ``email.header`` raise CharsetError in ``mime.decode_header_value``; both paths crashed the parser alike.
    """
    assert_same(path.read_bytes())


# --- the view kept between sniffing and parsing ----------------------------------------------------------------


def _events(parser: ArfParser, report: Report) -> Any:
    try:
        return [e.to_dict() if isinstance(e, Event) else e for e in parser.parse(report)]
    except ParseError as exc:
        return ("error", exc.message)


def test_a_report_sniffed_then_parsed_gives_what_a_fresh_parser_gives() -> None:
    # the intake calls recognises, then parse, on the same Report: the second reads the view the first kept on it
    cases = [p.read_bytes() for p in sorted(GOLDEN.glob("arf/*.in"))] + list(FIXTURES.values())
    for data in cases:
        parser = ArfParser()
        report = make_report(data)
        parser.recognises(report)
        assert report.view(report_fast_view) is report.view(report_fast_view)  # read once, then kept
        assert _events(parser, report) == _events(ArfParser(), make_report(data))


def test_one_parser_keeps_no_state_of_the_reports_it_reads() -> None:
    # one parser instance serves every input: what it reads of a report lives on that Report, so interleaved
    # reports each get their own events
    first, second = make_report(FIXTURES["rfc5965"]), make_report(FIXTURES["no_source_ip"])
    parser = ArfParser()
    before = dict(vars(parser))
    assert parser.recognises(first) and parser.recognises(second)
    assert _events(parser, first) == _events(ArfParser(), make_report(FIXTURES["rfc5965"]))
    assert _events(parser, second) == _events(ArfParser(), make_report(FIXTURES["no_source_ip"]))
    assert vars(parser) == before
