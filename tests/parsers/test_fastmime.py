"""parsers.fastmime and the quick paths in parsers.mime, held to the standard library they stand in for.

fastmime reads header blocks and flat multiparts as ``email.feedparser`` (compat32) does, or declines (None).
Generated inputs (hypothesis) go through both; wherever fastmime answers, fields, content types, parts and
payloads must be what the standard library has. The quick paths of ``mime.parse_mail_date``,
``mime.sender_address``, ``mime.looks_like_mail``, ``mime.received_lines`` and ``mime.decode_header_value`` are
checked against the general code they short-cut.
"""

from __future__ import annotations

import email.utils
import os
import re
from datetime import UTC, datetime
from email.message import Message

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.parsers import fastmime, mime

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("ABUSEDESK_FUZZ_EXAMPLES", "300"))
MANY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
NAMES = ["Received", "Subject", "content-type", "Message-ID", "From", "X-Odd", "Date", "Missing"]

HEADER_LINES = [
    "Received: from a (a [192.0.2.1]) by b",
    "received:by c",
    "Subject: hello",
    "Subject:",
    "Subject:   spaced  ",
    "SUBJECT: =?utf-8?q?caf=C3=A9?=",
    "Content-Type: text/plain",
    "Message-ID: <m@example.com>",
    "From: a@example.net",
    "X-Odd:value:with:colons",
    "Date: Mon, 02 Feb 2026 10:00:00 +0000",
    " folded continuation",
    "\tfolded with tab",
    "   ",
    "X-8bit: caf\xe9",
    "From an mbox line",
    ": nameless",
    "Bad Name: value",
    "no colon here",
    "",
]


@st.composite
def header_texts(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(HEADER_LINES), max_size=12))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol, eol + eol + "body\n"]))
    return text.encode("latin-1")


def stdlib(data: bytes) -> Message:
    return mime.parse_message(data)


def same_fields(block: fastmime.HeaderBlock, msg: Message) -> None:
    assert block.items() == msg.items()
    for name in NAMES:
        assert block.get(name) == msg.get(name), name
        assert block.get_all(name) == msg.get_all(name), name
        assert (name in block) == (name in msg)


@MANY
@given(data=header_texts())
def test_header_blocks_read_as_the_standard_library_reads_them(data: bytes) -> None:
    block = fastmime.read_headers(data)
    if block is not None:
        same_fields(block, stdlib(data))


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: a\n b\nFrom: x@example.net\n\nbody",
        b"Subject: a\r\n\tb\r\nSubject: second\r\n\r\n",
        b"From mbox line\nSubject: a\n\n",
        b"Subject: caf\xe9\n\n",
        b"Subject: a",
    ],
)
def test_header_block_examples(data: bytes) -> None:
    block = fastmime.read_headers(data)
    assert block is not None
    same_fields(block, stdlib(data))


@pytest.mark.parametrize(
    "data",
    [b" continued first\n", b"Subject: a\nFrom mbox\n\n", b"Subject: a\n: nameless\n\n", b"Subject: a\rFrom: b\r\r"],
)
def test_header_blocks_it_does_not_reproduce_are_declined(data: bytes) -> None:
    assert fastmime.read_headers(data) is None


PART_HEADS = [
    "Content-Type: text/plain",
    "Content-Type: message/rfc822",
    "Content-Type: message/feedback-report",
    "Content-Type: TEXT/RFC822-HEADERS; charset=us-ascii",
    "Content-Type: text",
    "Content-Transfer-Encoding: base64",
    "Content-Disposition: inline",
    "X-Part: 1",
]
BODIES = ["hello\nworld", "Feedback-Type: abuse\nSource-IP: 192.0.2.1", "", "--b1x", "-- \n--b1 not", "aGVsbG8=\n"]
TOP_TYPES = [
    'multipart/report; report-type=feedback-report; boundary="b1"',
    "multipart/mixed; boundary=b1",
    'multipart/report; boundary="b1"; boundary="b2"',
    "multipart/report; boundary=b1; report-type",
    'multipart/report; boundary="b1;x"',
    "multipart/report; boundary*=b1",
    'multipart/report; boundary="b\\"1"',
    "text/plain; boundary=b1",
]


@st.composite
def multiparts(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["From: a@example.net", f"Content-Type: {draw(st.sampled_from(TOP_TYPES))}", ""]
    lines += draw(st.lists(st.sampled_from(["preamble", "", "--b1x"]), max_size=2))
    for _ in range(draw(st.integers(0, 4))):
        lines.append(draw(st.sampled_from(["--b1", "--b1 ", "--b1\t", "--b1--", "--b2", "--b2--"])))
        lines += draw(st.lists(st.sampled_from(PART_HEADS), max_size=3))
        if draw(st.integers(0, 5)):
            lines.append("")
        lines += draw(st.lists(st.sampled_from(BODIES), max_size=2))
    if draw(st.booleans()):
        lines.append("--b1--")
    lines += draw(st.lists(st.sampled_from(["epilogue", "--b1", ""]), max_size=2))
    return eol.join(lines).encode()


@MANY
@given(data=multiparts())
def test_flat_multiparts_split_as_the_standard_library_splits_them(data: bytes) -> None:
    mail = fastmime.read_multipart(data)
    if mail is None:
        return
    msg = stdlib(data)
    assert mail.content_type == msg.get_content_type()
    assert mail.params.get("boundary") == msg.get_boundary()
    assert mail.params.get("report-type") == msg.get_param("report-type")
    same_fields(mail.headers, msg)
    expected = msg.get_payload()
    assert isinstance(expected, list)
    read = 0
    for part in mail.parts():
        if part is None:
            return  # declined from here on
        want = expected[read]
        read += 1
        assert part.content_type == want.get_content_type()
        same_fields(part.headers, want)
        if part.content_type.startswith("message/"):
            inner = part.message_headers()
            if inner is not None:
                same_fields(inner, want.get_payload(0))
        elif not part.content_type.startswith("multipart/"):
            assert part.payload() == want.get_payload()
    assert read == len(expected)  # every part was read


def test_boundary_with_a_colon_ends_a_header_block_at_the_delimiter() -> None:
    data = b'Content-Type: multipart/mixed; boundary="a:b"\n\n--a:b\nX-Part: 1\n--a:b\nX-Part: 2\n\nbody\n--a:b--\n'
    mail = fastmime.read_multipart(data)
    assert mail is not None
    parts = list(mail.parts())
    assert all(p is not None for p in parts)
    assert [p.headers.get("X-Part") for p in parts if p is not None] == ["1", "2"]
    assert [m.get("X-Part") for m in stdlib(data).get_payload()] == ["1", "2"]  # type: ignore[union-attr]


# --- the quick paths of parsers.mime --------------------------------------------------------------------------

digits = st.integers(0, 99).map(str) | st.integers(0, 99).map(lambda i: f"{i:02d}")


@MANY
@given(
    st.builds(
        "{}{} {} {} {}:{}:{} {}{}{}{}".format,
        st.sampled_from(["", "Tue, ", "Sun,", "tue, "]),
        digits,
        st.sampled_from(["Jan", "Feb", "Dec", "jan", "Foo"]),
        st.sampled_from(["2026", "1999", "0099", "99", "10000"]),
        digits,
        digits,
        digits,
        st.sampled_from(["+", "-"]),
        digits,
        digits,
        st.sampled_from(["", " (EST)", " (UT)", " (a(b)", " ()", "  "]),
    )
)
def test_quick_date_reading_equals_the_general_one(text: str) -> None:
    assert mime.parse_mail_date(text) == mime._parse_mail_date_general(text)


def test_quick_date_reading_examples() -> None:
    expected = datetime(2016, 1, 19, 19, 32, 40, tzinfo=UTC)
    assert mime.parse_mail_date("Tue, 19 Jan 2016 14:32:40 -0500 (EST)") == expected
    assert mime.parse_mail_date("2 Feb 2026 10:00:00 -0000") == datetime(2026, 2, 2, 10, tzinfo=UTC)
    assert mime.parse_mail_date("31 Feb 2026 10:00:00 +0000") is None
    # an offset of a day or more fits no time zone: unreadable, as email.utils finds it (hypothesis found it)
    assert mime.parse_mail_date("1 Jan 2026 10:10:10 +2410") is None
    assert mime.parse_mail_date("1 Jan 2026 10:10:10 -2359") == datetime(2026, 1, 2, 10, 9, 10, tzinfo=UTC)
    assert mime.parse_mail_date("31 Dec 9999 23:00:00 -0200") is None  # past datetime's range in UTC


atoms = st.text(alphabet="abXY09._+-!%", max_size=5)


@MANY
@given(
    st.builds(
        lambda form, a, b, n: form.format(a=a, b=b, n=n),
        st.sampled_from(["{a}@{b}", "{n} <{a}@{b}>", '"{n}" <{a}@{b}>', "{n}<{a}@{b}>", "{a}@{b} ({n})", "<{a}@{b}>"]),
        atoms,
        atoms,
        st.text(alphabet='ab ,."<>\\_-', max_size=6),
    )
)
def test_quick_sender_reading_equals_parseaddr(value: str) -> None:
    msg = Message()
    msg["From"] = value
    expected = email.utils.parseaddr(mime.header(msg, "From") or "")[1].lower() or None
    assert mime.sender_address(msg) == expected


def _looks_like_mail_before(data: bytes) -> bool:
    """mime.looks_like_mail as it was first written (counting every header line of the block)."""
    head = data[:8192].lstrip()
    if head.startswith(b"From "):
        head = head.split(b"\n", 1)[-1]
    first = head.split(b"\n", 1)[0]
    header_line = re.compile(rb"^[!-9;-~]+:[ \t]?", re.MULTILINE)
    if not header_line.match(first):
        return False
    block = head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    return len(header_line.findall(block)) >= 2


@MANY
@given(
    st.lists(
        st.sampled_from([b"A: b", b"\n", b"\r\n", b"From x", b"X:", b" c", b":", b"\r", b"a b: c", b" "]), max_size=12
    ).map(b"".join)
)
def test_mail_sniffing_equals_its_first_form(data: bytes) -> None:
    assert mime.looks_like_mail(data) == _looks_like_mail_before(data)


@MANY
@given(st.lists(st.lists(st.sampled_from(["a", " ", "\t", "\n", "\r\n", "\x1c", "\xa0", "\x00", "b c"])).map("".join)))
def test_received_lines_equal_a_white_space_squeeze(values: list[str]) -> None:
    msg = Message()
    for value in values:
        msg.set_raw("Received", value)
    assert mime.received_lines(msg) == [re.sub(r"\s+", " ", v).strip() for v in values]


@MANY
@given(st.text(alphabet="ab =?\n\r\t\x1c\xa0", max_size=12))
def test_header_decoding_shortcut_equals_the_regex(text: str) -> None:
    if "=?" not in text:
        assert mime.decode_header_value(text) == re.sub(r"\s*\r?\n\s+", " ", text).strip()
