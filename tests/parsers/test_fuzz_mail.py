"""Fuzzing the complaint-mail and XARF parsers: whatever the bytes, the only exception is ParseError.

Three sources of inputs: generated mails (random headers, MIME structures, charsets, nested message/rfc822,
signed wrappers, long header lines, zip/gzip attachments), generated JSON around valid XARF documents, and
mutations (truncate, flip, insert, delete, duplicate) of the golden inputs and, when present, the shared corpus.
Every event produced must survive ``Event.from_dict(event.to_dict())``. A crashing input is kept under
``fuzz_regressions/<parser>/`` (documentation addresses only) and replayed by ``test_mail_regressions``.
``ABUSEDESK_FUZZ_EXAMPLES`` raises the number of examples for a longer hunt.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.abusehub import AbusehubParser
from abusedesk.parsers.arf import ArfParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.freetext import FreetextParser
from abusedesk.parsers.honeypot import HoneypotParser
from abusedesk.parsers.spamcop import SpamcopParser
from abusedesk.parsers.urlreport import UrlReportParser
from abusedesk.parsers.xarf import XarfParser
from abusedesk.parsers.xarf_legacy import XarfLegacyParser
from tests.conftest import CORPUS
from tests.parsers.mailsupport import make_report, mutate
from tests.parsers.test_xarf import ABUSIX, V4

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
PARSERS: dict[str, Parser] = {
    "arf": ArfParser(),
    "xarf_legacy": XarfLegacyParser(),
    "xarf": XarfParser(),
    "spamcop": SpamcopParser(),
    "urlreport": UrlReportParser(),
    "freetext": FreetextParser(),
    "projecthoneypot": HoneypotParser(),
    "abusehub": AbusehubParser(),
}
CORPUS_SEEDS = [
    "reports/abuseio-notifier-samples/feedback-loop/AOL_example_1.eml",
    "reports/abuseio-notifier-samples/spamexperts/11.eml",
    "reports/abuseio-notifier-samples/webiron/Webiron_Example_1.eml",
    "reports/abuseio-notifier-samples/cleanmx/Cleanmx_Example_2.eml",
    "reports/abuseio-notifier-samples/google/Safe_Browsing_Report_2.eml",
    "reports/abuseio-notifier-samples/projecthoneypot/Projecthoneypot_Example_paid_1.eml",
    "reports/abuseio-notifier-samples/abusehub/Abusehub_Example_2.eml",
    "reports/abuseio-parser-netcraft-samples/Netcraft_Example_11.eml",
    "reports/ovh-cerberus-core-samples/lexsicom",
    "reports/ovh-cerberus-core-samples/xarf2.txt",
    "reports/abusix-xarf-v3-samples/positive/3/copyright_sample.json",
    "reports/xarf-spec-samples/v4/content-phishing.json",
]
EXAMPLES = int(os.environ.get("ABUSEDESK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def exercise(parser: Parser, data: bytes) -> None:
    report = make_report(data, "fuzz.eml")
    try:
        parser.recognises(report)
        for item in parser.parse(report):
            if isinstance(item, Event):
                assert Event.from_dict(json.loads(json.dumps(item.to_dict(), default=str))).id == item.id
    except ParseError:
        pass


def golden_seeds() -> list[bytes]:
    return [p.read_bytes() for name in PARSERS for p in sorted((GOLDEN / name).glob("*.in"))]


def corpus_seeds() -> list[bytes]:
    return [(CORPUS / s).read_bytes() for s in CORPUS_SEEDS if (CORPUS / s).is_file()]


# --- generators ---------------------------------------------------------------------------------------------

TOKENS = [
    "192.0.2.1",
    "2001:db8::1",
    "http://example.com:8080/a",
    "hxxp://example[.]net/x",
    "http://2001:db8::5:2222/p",
    "Source-IP: 198.51.100.3",
    "Feedback-Type: abuse",
    "Arrival-Date: Mon, 02 Feb 2026 10:00:00 +0000",
    "Received-Date: junk",
    "Report-Type: login-attack",
    "Source: 192.0.2.9",
    "Source-Type: uri",
    "!!python/object/apply:os.system ['x']",
    "[SpamCop (192.0.2.5) id:123]",
    "Email from 192.0.2.5 / Wed, 29 Apr 2026 17:20:28 -0400",
    "[ Offending message ]",
    '<url_info url="http://example.com/" ip="192.0.2.7" />',
    "<notification_message>",
    "IPs Engaged In Harvesting On Your Network:",
    "  - Mon, 21 Sep 2015 11:00AM PDT",
    "2026-01-27 23:27:05\t192.0.2.3\t198.51.100.0/24",
    "Site concerne : http://example.com/",
    "|2026-01-14 07:49:54 CEST |1 |v |192.0.2.1 |example.com |http://example.com/",
    "phishing spam brute force",
    "-----BEGIN PGP SIGNED MESSAGE-----",
    "-----BEGIN PGP SIGNATURE-----",
    "reliable_notifier,report_type,infection_type,event_date,event_time,src_ip,src_port,protocol",
    '"N","Shadowserver Botnet Drone",x,2026-03-29,02:30:00,192.0.2.4,99999,udp',
    "(event time 2026-03-29 02:30:00 +25:99)",
    "\u00e9\u00ff\u4e2d",
]
CTYPES = [
    "text/plain",
    "text/html",
    "message/feedback-report",
    "message/rfc822",
    "text/rfc822-headers",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/pgp-signature",
    "application/pkcs7-signature",
    "multipart/mixed",
]
DATES = ["Mon, 02 Feb 2026 10:00:00 +0000", "yesterday", "", "Tue, 19 Jan 2016 14:32:40 -0500 (EST)"]
CHARSETS = ["utf-8", "latin-1", "utf-16", "bogus", "x-unknown", ""]
ENCODINGS = ["7bit", "base64", "quoted-printable", "8bit", "x-junk"]

text_blob = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=30)), max_size=12).map("\n".join)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    inner = draw(text_blob).encode("utf-8", "replace")
    if draw(st.booleans()):
        return gzip.compress(inner)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(draw(st.integers(0, 3))):
            zf.writestr(f"report{i}.txt", inner)
    data = buf.getvalue()
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@st.composite
def parts(draw: st.DrawFn, depth: int = 0) -> str:
    ctype = draw(st.sampled_from(CTYPES))
    charset = draw(st.sampled_from(CHARSETS))
    enc = draw(st.sampled_from(ENCODINGS))
    name = draw(
        st.sampled_from(["", "report.txt", "xarf.json", "logfile.log", "r.zip", "x.gz", "abusehubcsv-1.0.0_x.csv"])
    )
    head = f"Content-Type: {ctype}" + (f"; charset={charset}" if charset else "")
    if name:
        head += f'; name="{name}"\nContent-Disposition: attachment; filename="{name}"'
    if ctype.startswith("multipart/") and depth < 3:
        boundary = f"b{depth}"
        subs = draw(st.lists(parts(depth + 1), max_size=3))
        body = "".join(f"--{boundary}\n{s}\n" for s in subs) + (f"--{boundary}--\n" if draw(st.booleans()) else "")
        return f'Content-Type: {ctype}; boundary="{boundary}"\n\n{body}'
    if ctype in ("application/zip", "application/gzip"):
        return f"{head}\nContent-Transfer-Encoding: base64\n\n{base64.b64encode(draw(archives())).decode()}\n"
    body = draw(text_blob)
    if ctype == "application/json":
        body = json.dumps(draw(xarf_docs()))
    if enc == "base64" and draw(st.booleans()):
        body = base64.b64encode(body.encode("utf-8", "replace")).decode()
    return f"{head}\nContent-Transfer-Encoding: {enc}\n\n{body}\n"


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    report_type = draw(st.sampled_from(["feedback-report", "delivery-status", ""]))
    top = draw(st.sampled_from(["multipart/report", "multipart/mixed", "multipart/signed", "text/plain"]))
    subject = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=40)))
    long_header = "X-Long: " + "a" * draw(st.integers(0, 20000)) + "\n"
    head = (
        f"From: {draw(st.sampled_from(['a@example.net', '6301@reports.spamcop.net', 'takedown@netcraft.com', '']))}\n"
        f"To: abuse@example.org\nSubject: {subject}\nDate: {draw(st.sampled_from(DATES))}\n"
        f"{long_header}MIME-Version: 1.0\n"
    ).replace("\r", "")
    if top == "text/plain":
        return (head + "Content-Type: text/plain\n\n" + draw(text_blob)).encode("utf-8", "surrogatepass")
    subs = draw(st.lists(parts(1), max_size=4))
    rt = f"; report-type={report_type}" if report_type else ""
    body = "".join(f"--top\n{s}\n" for s in subs) + "--top--\n"
    return (head + f'Content-Type: {top}{rt}; boundary="top"\n\n' + body).encode("utf-8", "surrogatepass")


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def xarf_docs(draw: st.DrawFn) -> Any:
    base = json.loads(json.dumps(draw(st.sampled_from([V4, ABUSIX]))))
    for _ in range(draw(st.integers(0, 4))):
        target = base
        if "Report" in base and draw(st.booleans()):
            target = base["Report"] if isinstance(base["Report"], dict) else base
        keys = [*target, "extra", "evidence", "source_port", "SourcePort", "Samples"]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target[key] = draw(json_values)
        else:
            target.pop(key, None)
    return base


@st.composite
def mutated(draw: st.DrawFn, pool: list[bytes]) -> bytes:
    tokens = [t.encode() for t in TOKENS]
    return mutate(draw, draw(st.sampled_from(pool)), tokens, insert=40, delete=200, copy=500)


# --- tests --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes(name: str, data: bytes) -> None:
    exercise(PARSERS[name], data)


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=mails())
def test_generated_mails(name: str, data: bytes) -> None:
    exercise(PARSERS[name], data)


@FUZZ
@given(doc=xarf_docs())
def test_generated_xarf_json(doc: Any) -> None:
    exercise(PARSERS["xarf"], json.dumps(doc, allow_nan=True).encode())


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=mutated(golden_seeds()))
def test_mutated_golden_inputs(name: str, data: bytes) -> None:
    exercise(PARSERS[name], data)


@pytest.mark.corpus
@pytest.mark.parametrize("name", list(PARSERS))
def test_mutated_corpus_samples(name: str, corpus: Path) -> None:
    pool = corpus_seeds()
    assert pool, "no corpus seeds found"

    @FUZZ
    @given(data=mutated(pool))
    def run(data: bytes) -> None:
        exercise(PARSERS[name], data)

    run()


def test_zip_bomb_attachment_is_refused_not_exploded() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.txt", b"0" * (80 * 1024 * 1024))
    bomb = base64.b64encode(buf.getvalue()).decode()
    data = (
        "From: a@example.net\nTo: abuse@example.org\nSubject: x\nX-ARF: yes\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi 192.0.2.1\n'
        f'--b\nContent-Type: application/zip; name="r.zip"\nContent-Transfer-Encoding: base64\n\n{bomb}\n--b--\n'
    ).encode()
    for parser in PARSERS.values():
        exercise(parser, data)
    from abusedesk.parsers import mime

    with pytest.raises(ParseError, match="zip bomb"):
        mime.attachments(mime.parse_message(data))


def regression_cases() -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for name in PARSERS for p in sorted((REGRESSIONS / name).glob("*.bin"))]


@pytest.mark.parametrize(("name", "path"), regression_cases(), ids=lambda v: getattr(v, "name", v))
def test_mail_regressions(name: str, path: Path) -> None:
    exercise(PARSERS[name], path.read_bytes())
