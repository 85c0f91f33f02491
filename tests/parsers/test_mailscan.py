"""The native reader of feedback reports (parsers/_mailscan.c) against the Python reading it speeds up.

``arf.fast_view(data)`` asks the C reader first; ``arf.fast_view(data, native=False)`` is the Python reading of
``parsers.fastmime``, which test_fastmime.py and test_arf_fastpath.py hold to the standard library. Where the C
reader answers, every block it gives must read exactly as the Python reading's: the same fields in the same
order, the same values (str, or compat32's Header for non-ASCII bytes), by any name and any case. Where it
declines, the Python reading decides. Inputs: the corpus, the golden files, the ARF fixtures, generated and
mutated reports and arbitrary bytes (which must never crash it).
"""

from __future__ import annotations

from email.header import Header
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abusedesk.parsers import arf, fastmime
from abusedesk.parsers.arf import fast_view, python_view
from tests.parsers.test_arf_fastpath import (
    ARF_FAMILIES,
    FIXTURES,
    FUZZ,
    GOLDEN,
    assert_same,
    feedback_reports,
    mutated,
    seed_pool,
)
from tests.support.components import is_ci, missing

try:
    from abusedesk.parsers import _mailscan
except ImportError:  # pragma: no cover - only where no C compiler built it
    _mailscan = None  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def native_reader() -> None:
    if _mailscan is None:
        missing("abusedesk.parsers._mailscan is not built (make builds it; it needs gcc and the Python headers)")


def _values(values: list[Any] | None) -> list[tuple[type, str]] | None:
    """Values with their types: a Header must stay a Header (compat32 gives one for non-ASCII bytes)."""
    return None if values is None else [(type(v), str(v)) for v in values]


def _same_block(native: Any, python: Any) -> None:
    assert isinstance(native, _mailscan.Fields)
    expected = python.mapping()
    assert {k: _values(v) for k, v in native.mapping().items()} == {k: _values(v) for k, v in expected.items()}
    assert [(k, type(v), str(v)) for k, v in native.items()] == [(k, type(v), str(v)) for k, v in python.items()]
    for name in [*expected, "absent-field", "x"]:
        for asked in (name, name.upper(), name.title()):
            assert _values(native.get_all(asked)) == _values(python.get_all(asked))
            assert _values(native.get_all(asked, failobj=[])) == _values(python.get_all(asked, []))
            first = native.get(asked)
            assert (type(first), str(first)) == (type(python.get(asked)), str(python.get(asked)))
            if name not in expected:
                assert native.get(asked, "-") == python.get(asked, "-") == "-"
            assert (asked in native) == (asked in python)


def same_view(data: bytes) -> bool:
    """True when the C reader answered (and read what the Python reading reads); False when it declined."""
    python = python_view(data)
    found = _mailscan.feedback_report(data, fastmime.fetch)
    if found is None:
        return False
    assert python is not None, "the C reader answered where the Python reading declines"
    top, fields, original = found
    _same_block(top, python.outer)
    assert python.msg is python.outer
    assert {k: _values(v) for k, v in fields.items()} == {k: _values(v) for k, v in python.fields.items()}
    if python.original is None:
        assert original is None
    else:
        assert original is not None
        _same_block(original, python.original)
    native_view = fast_view(data)
    assert native_view is None or native_view.fields == fields  # None: not a mail (mime.looks_like_mail)
    return True


# --- real and fixture inputs ----------------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_corpus_mail_reads_the_same_natively(corpus: Path) -> None:
    answered = 0
    for path in sorted((corpus / "reports").rglob("*")):
        if path.is_file() and path.suffix not in (".license", ".md"):
            answered += same_view(path.read_bytes())
    assert answered >= 34


@pytest.mark.corpus
@pytest.mark.parametrize("family", ARF_FAMILIES)
def test_the_native_reader_reads_every_corpus_feedback_report(corpus: Path, family: str) -> None:
    """The speed of the ARF intake rests on these: the C reader must not quietly hand them to Python."""
    files = sorted((corpus / "reports" / family).glob("*.eml"))
    assert files
    for path in files:
        assert same_view(path.read_bytes()), f"the C reader declined {path.name}"


def test_golden_inputs_read_the_same_natively() -> None:
    cases = sorted(GOLDEN.glob("*/*.in"))
    assert sum(same_view(p.read_bytes()) for p in cases) >= 5


@pytest.mark.parametrize("name", list(FIXTURES))
def test_fixtures_read_the_same_natively(name: str) -> None:
    answered = same_view(FIXTURES[name])
    # an attached text/rfc822-headers part is decoded by the Python reading (transfer encodings)
    assert answered or name in ("no_report_type", "rfc822_headers"), f"the C reader declined {name}"


def test_non_ascii_values_are_compat32_headers() -> None:
    found = _mailscan.feedback_report(FIXTURES["eight_bit_headers"], fastmime.fetch)
    assert found is not None
    subject = found[0].get("subject")  # the report's own Subject carries the 8-bit bytes
    assert isinstance(subject, Header)
    assert str(subject) == str(python_view(FIXTURES["eight_bit_headers"]).outer.get("subject"))  # type: ignore[union-attr]


def test_a_folded_value_keeps_its_line_ends_as_compat32_does() -> None:
    data = FIXTURES["folded_and_encoded"].replace(b"\n", b"\r\n")
    found = _mailscan.feedback_report(data, fastmime.fetch)
    assert found is not None
    assert found[1]["user-agent"] == ["=?utf-8?q?Gen=C3=A9rateur?=\r\n  2.0"]


# --- the edges of what the reference reproduces: each one changes the RFC 5965 fixture in one place ------------

_BASE = FIXTURES["rfc5965"]
EDGES: dict[str, bytes] = {
    "lone_cr": _BASE.replace(b"Subject: FBL", b"Subject: F\rBL"),
    "trailing_cr": _BASE + b"\r",
    "nameless_field_in_top": _BASE.replace(b"Subject: FBL\n", b"Subject: FBL\n: nameless\n"),
    "nameless_field_in_feedback": _BASE.replace(b"Version: 1\n", b"Version: 1\n:x\n"),
    "nameless_field_in_original": _BASE.replace(b"Subject: Buy now\n", b"Subject: Buy now\n:x\n"),
    "from_line_in_original": _BASE.replace(b"Subject: Buy now\n", b"Subject: Buy now\nFrom nobody\n"),
    "continuation_first_in_feedback": _BASE.replace(b"\nFeedback-Type: abuse", b"\n Feedback-Type: abuse"),
    "continuation_first_in_part": _BASE.replace(b"--b1\nContent-Type: text/plain", b"--b1\n\tContent-Type: text/plain"),
    "not_a_field_in_part_headers": _BASE.replace(
        b"Content-Type: text/plain\n", b"Content-Type: text/plain\nnot a field\n"
    ),
    "rfc2231_boundary": _BASE.replace(b'boundary="b1"', b"boundary*=''b1"),
    "escaped_quote": _BASE.replace(b'boundary="b1"', b'boundary="b1"; x="a\\"b"'),
    "unbalanced_quote": _BASE.replace(b'boundary="b1"', b'boundary="b1"; x="a'),
    "equals_in_type": _BASE.replace(b"multipart/report;", b"multipart/report=x;"),
    "boundary_in_angles": _BASE.replace(b'boundary="b1"', b"boundary=<b1>"),
    "boundary_unquoted_blanks": _BASE.replace(b'boundary="b1"', b"boundary = b1 "),
    "boundary_twice": _BASE.replace(b'boundary="b1"', b'boundary="b1"; boundary="zz"'),
    "boundary_empty": _BASE.replace(b'boundary="b1"', b'boundary=""'),
    "boundary_no_value": _BASE.replace(b'boundary="b1"', b"boundary"),
    "boundary_with_space": _BASE.replace(b'boundary="b1"', b'boundary="b 1"').replace(b"--b1", b"--b 1"),
    "boundary_with_colon": _BASE.replace(b'boundary="b1"', b'boundary="b:1"').replace(b"--b1", b"--b:1"),
    "boundary_colon_as_field": _BASE.replace(b'boundary="b1"', b'boundary="X-b:1"').replace(b"--b1", b"--X-b:1"),
    "boundary_non_ascii": _BASE.replace(b'boundary="b1"', b'boundary="b\xe91"').replace(b"--b1", b"--b\xe91"),
    "boundary_colon_part_without_body": _BASE.replace(b'boundary="b1"', b'boundary="X-b:1"')
    .replace(b"--b1", b"--X-b:1")
    .replace(b"Content-Type: text/plain\n\nThis is an abuse report.\n\n", b"Content-Type: text/plain\n"),
    "no_delimiter": _BASE.replace(b"--b1", b"--zz"),
    "close_delimiter_first": _BASE.replace(b"--b1\n", b"--b1--\n", 1),
    "two_delimiters_in_a_row": _BASE.replace(
        b"--b1\nContent-Type: text/plain", b"--b1\n--b1\nContent-Type: text/plain"
    ),
    "delimiter_with_blanks": _BASE.replace(b"--b1\n", b"--b1 \t\n"),
    "delimiter_with_text": _BASE.replace(b"--b1\nContent-Type: message/rfc822", b"--b1x\nContent-Type: message/rfc822"),
    "delimiter_at_end_no_newline": _BASE.rstrip(b"\n"),
    "no_close_delimiter": _BASE.replace(b"--b1--\n", b""),
    "non_ascii_top_type": _BASE.replace(b"multipart/report;", b"multipart/r\xe9port;"),
    "non_ascii_part_type": _BASE.replace(b"Content-Type: text/plain", b"Content-Type: text/pl\xe9in"),
    "upper_case_types": _BASE.replace(b"message/feedback-report", b"Message/Feedback-REPORT").replace(
        b"message/rfc822", b"MESSAGE/RFC822"
    ),
    "blank_padded_type": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type:  \x0b message/rfc822 \x1f;"),
    "type_without_slash": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type: message"),
    "type_with_two_slashes": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type: message/rfc822/x"),
    "multipart_top_two_slashes": _BASE.replace(b"multipart/report;", b"multipart/report/x;"),
    "signed_top": _BASE.replace(b"multipart/report;", b"multipart/signed;"),
    "digest_top": _BASE.replace(b"multipart/report;", b"MULTIPART/DIGEST;"),
    "not_multipart": _BASE.replace(b"multipart/report;", b"text/plain;"),
    "no_top_type": _BASE.replace(b"Content-Type: multipart/report", b"X-Type: multipart/report"),
    "nested_multipart": _BASE.replace(b"Content-Type: text/plain", b"Content-Type: multipart/mixed"),
    "delivery_status_part": _BASE.replace(b"Content-Type: text/plain", b"Content-Type: message/delivery-status"),
    "headers_part": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers"),
    "global_part": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type: message/global"),
    "typed_feedback_block": _BASE.replace(b"Feedback-Type: abuse\n", b"Feedback-Type: abuse\nContent-Type: x/y\n"),
    "no_feedback_part": _BASE.replace(b"message/feedback-report", b"text/plain"),
    "feedback_part_twice": _BASE.replace(b"Content-Type: text/plain", b"Content-Type: message/feedback-report"),
    "no_attached_message": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type: text/plain"),
    "feedback_after_message": _BASE.replace(b"message/feedback-report", b"message/TMP")
    .replace(b"message/rfc822", b"message/feedback-report")
    .replace(b"message/TMP", b"message/rfc822"),
    "two_messages_before_feedback": _BASE.replace(b"message/feedback-report", b"message/TMP")
    .replace(b"message/rfc822", b"message/feedback-report")
    .replace(b"message/TMP", b"message/rfc822")
    .replace(b"Content-Type: text/plain\n\nThis is", b"Content-Type: message/rfc822\n\nX-First: 1\n\nThis is"),
    "base64_feedback_part": _BASE.replace(
        b"message/feedback-report\n", b"message/feedback-report\nContent-Transfer-Encoding: base64\n"
    ),
    "binary_feedback_part": _BASE.replace(
        b"message/feedback-report\n", b"message/feedback-report\nContent-Transfer-Encoding:  7BIT \n"
    ),
    "eight_bit_encoding_name": _BASE.replace(
        b"message/feedback-report\n", b"message/feedback-report\nContent-Transfer-Encoding: 7bit\xe9\n"
    ),
    "empty_part_headers": _BASE.replace(b"--b1\nContent-Type: text/plain\n", b"--b1\n"),
    "part_without_blank_line": _BASE.replace(b"Content-Type: text/plain\n\n", b"Content-Type: text/plain\n"),
    "folded_content_type": _BASE.replace(b"Content-Type: message/rfc822", b"Content-Type:\n message/rfc822"),
    "blank_value": _BASE.replace(b"Subject: FBL", b"Subject: \t"),
    "folded_blank_value": _BASE.replace(b"Subject: FBL", b"Subject:   \n\tFBL"),
    "nul_and_controls": _BASE.replace(b"Subject: FBL", b"Subject: F\x00B\x1fL"),
    "eight_bit_name_line": _BASE.replace(b"Subject: FBL\n", b"Subject: FBL\nX-\xe9: v\n"),
    "long_name": _BASE.replace(b"Subject: FBL", b"X-" + b"n" * 200 + b": FBL"),
    "mbox_from_line_without_newline": b"From nobody",
    "only_headers": b"From: a@example.net\nTo: b@example.net\n",
    "empty": b"",
    # more fields than the reader keeps on its stack (64): its spans move to the heap, in every block
    "many_fields": _BASE.replace(
        b"Subject: FBL\n", b"Subject: FBL\n" + b"".join(b"X-Top-%d: v%d\n" % (i, i) for i in range(300))
    )
    .replace(b"Version: 1\n", b"Version: 1\n" + b"".join(b"X-Fb-%d: v\n" % i for i in range(100)))
    .replace(
        b"Subject: Buy now\n",
        b"Subject: Buy now\n" + b"".join(b"Received: from h%d [192.0.2.%d]\n" % (i, i % 250) for i in range(200)),
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_edges_read_the_same_natively_or_it_declines(name: str) -> None:
    data = EDGES[name]
    for variant in (data, data.replace(b"\n", b"\r\n"), b"From x@example.net Mon Feb  2 12:00:00 2026\n" + data):
        same_view(variant)
        assert_same(variant)  # and every path gives the standard library's events (or its ParseError)


def test_the_edges_the_native_reader_takes_on() -> None:
    """Not everything declines: the harmless edges are read natively (else the speed would quietly be lost)."""
    taken = {name for name, data in EDGES.items() if same_view(data)}
    assert {
        "boundary_in_angles",
        "boundary_unquoted_blanks",
        "boundary_twice",
        "boundary_with_colon",
        "boundary_colon_as_field",
        "boundary_colon_part_without_body",
        "delimiter_with_blanks",
        "upper_case_types",
        "blank_padded_type",
        "global_part",
        "no_attached_message",
        "feedback_after_message",
        "two_messages_before_feedback",
        "binary_feedback_part",
        "folded_content_type",
        "nul_and_controls",
        "long_name",
        "many_fields",
    } <= taken


# --- the Fields object --------------------------------------------------------------------------------------


def _top(data: bytes = FIXTURES["rfc5965"]) -> Any:
    found = _mailscan.feedback_report(data, fastmime.fetch)
    assert found is not None
    return found[0]


def test_fields_answer_like_a_compat32_message() -> None:
    top = _top()
    assert top.get("FROM") == top.get("from") is not None
    assert top.get("no-such-field") is None
    assert top.get("no-such-field", "dflt") == "dflt"
    assert top.get("no-such-field", failobj="dflt") == "dflt"
    assert top.get_all("no-such-field") is None
    assert top.get_all("no-such-field", failobj=[]) == []
    assert "Content-Type" in top and "no-such-field" not in top
    assert top.get("Fröm") is None and "Fröm" not in top  # no field name has a non-ASCII character
    assert top.mapping() is top.mapping()


def test_fields_refuse_bad_calls_with_a_clear_error() -> None:
    top = _top()
    with pytest.raises(TypeError, match="a field name is a str, not bytes"):
        top.get(b"from")
    with pytest.raises(TypeError, match="a field name is a str, not int"):
        _ = 3 in top
    with pytest.raises(TypeError, match=r"get_all\(name, failobj=None\)"):
        top.get_all()
    with pytest.raises(TypeError, match=r"get\(name, failobj=None\)"):
        top.get("from", default=1)
    with pytest.raises(TypeError, match="takes the mail's bytes"):
        _mailscan.feedback_report("not bytes", fastmime.fetch)


def test_fields_outlive_the_call_that_made_them() -> None:
    data = bytearray(FIXTURES["rfc5965"])
    top = _top(bytes(data))
    expected = top.items()
    del data
    assert top.items() == expected  # the block keeps its own copy of the text


# --- generated, mutated and arbitrary inputs -------------------------------------------------------------------


@FUZZ
@given(data=feedback_reports())
def test_generated_reports_read_the_same_natively_or_it_declines(data: bytes) -> None:
    same_view(data)


@FUZZ
@given(data=mutated(seed_pool()))
def test_mutated_reports_read_the_same_natively_or_it_declines(data: bytes) -> None:
    same_view(data)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_native_reader(data: bytes) -> None:
    found = _mailscan.feedback_report(data, fastmime.fetch)
    assert found is None or len(found) == 3
    same_view(data)


def test_the_native_reader_is_built_where_ci_runs() -> None:
    """CI builds it (make); a machine without a compiler reads the same blocks in Python, more slowly."""
    assert arf.NATIVE_READER is not None or not is_ci()


def test_an_error_in_reading_a_value_reaches_the_caller() -> None:
    """compat32's reading of an 8-bit value is called when the value is asked for; what it raises is not lost."""

    def refuse(name: str, value: str) -> str:
        raise RuntimeError(f"cannot read {name}")

    data = FIXTURES["eight_bit_headers"]
    found = _mailscan.feedback_report(data, refuse)
    assert found is not None
    top = found[0]
    assert top.get("from") == "fbl@mailbox.example.net"  # ASCII values do not call it
    with pytest.raises(RuntimeError, match="cannot read Subject"):
        top.get("subject")
    with pytest.raises(RuntimeError, match="cannot read Subject"):
        top.items()
    with pytest.raises(RuntimeError, match="cannot read Subject"):
        top.mapping()
    feedback_8bit = data.replace(b"Feedback-Type: abuse", b"Feedback-Type: abus\xe9")
    with pytest.raises(RuntimeError, match="cannot read Feedback-Type"):
        _mailscan.feedback_report(feedback_8bit, refuse)
