"""Fuzzing the feed and legal-notice parsers: whatever the bytes, the only exception is ParseError.

Seeds are the golden inputs (documentation addresses) and, when the shared corpus is present, its real samples;
hypothesis mutates them (truncate, flip, insert, delete, duplicate). A crashing input found here is saved under
``fuzz_regressions/<parser>/`` and replayed by ``test_regressions`` for ever after; one found from a corpus seed
must be rebuilt from a documentation-address input before it is committed (the corpus is never copied into the
repository). ``ABUSEDESK_FUZZ_EXAMPLES`` raises the number of examples for a longer hunt.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.dmca import DmcaParser
from abusedesk.parsers.intelmq import IntelmqParser
from abusedesk.parsers.listfeeds import ListFeedParser
from abusedesk.parsers.shadowserver import ShadowserverParser
from tests.conftest import CORPUS
from tests.parsers.feedsupport import make_report

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
PARSERS: dict[str, Parser] = {
    "shadowserver": ShadowserverParser(),
    "acns": AcnsParser(),
    "dmca": DmcaParser(),
    "intelmq": IntelmqParser(),
    "listfeeds": ListFeedParser(),
}
CORPUS_SEEDS = {
    "shadowserver": [
        "reports/intelmq-shadowserver-testdata/scan_dns.csv",
        "reports/intelmq-shadowserver-testdata/event4_sinkhole_http.csv",
        "reports/abuseio-notifier-samples/shadowserver/2019-10-15-scan_ftp-sample-asn.csv.zip.eml",
    ],
    "acns": [
        "reports/abuseio-notifier-samples/ip-echelon/ip-echelon_sample1.eml",
        "reports/abuseio-notifier-samples/copyrightcompliance/Copyrightcompliance_Example_1.eml",
    ],
    "dmca": ["reports/ovh-cerberus-core-samples/sample5"],
    "intelmq": [],
    "listfeeds": [
        "reports/intelmq-3.5.0-parser-testdata/spamhaus__cert.txt",
        "reports/intelmq-3.5.0-parser-testdata/microsoft__ctip.txt",
        "reports/intelmq-3.5.0-parser-testdata/dataplane__sshpwauth.txt",
        "reports/intelmq-3.5.0-parser-testdata/html_table__feodotracker.html",
    ],
}


def seeds(name: str) -> list[tuple[str, bytes]]:
    out = [(p.name[: -len(".in")], p.read_bytes()) for p in sorted((GOLDEN / name).glob("*.in"))]
    for rel in CORPUS_SEEDS[name]:
        path = CORPUS / rel
        if path.exists():
            out.append((path.name, path.read_bytes()))
    return out


def exercise(parser: Parser, filename: str, data: bytes) -> None:
    """Sniff and parse; anything but ParseError is a bug, saved as a regression case before failing."""
    report = make_report(data, filename)
    try:
        parser.recognises(report)
        list(parser.parse(report))
    except ParseError:
        return
    except Exception as exc:
        # one file per distinct failure (type and raising line); shrinking keeps replacing it with smaller inputs
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
        sig = hashlib.sha256(f"{type(exc).__name__}@{where}".encode()).hexdigest()[:12]
        target = REGRESSIONS / parser.name
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{sig}__{filename}"
        if not path.exists() or len(data) < path.stat().st_size:
            path.write_bytes(data)
        raise


@st.composite
def mutated(draw: st.DrawFn, name: str) -> tuple[str, bytes]:
    filename, data = draw(st.sampled_from(seeds(name)))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate", "splice"]))
        pos = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "truncate":
            del buf[pos:]
        elif op == "flip" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\x00",
                        b'"',
                        b",",
                        b"\n",
                        b"|",
                        b";",
                        b"<",
                        b"&a;",
                        b"{",
                        b"]",
                        b"\xff\xfe",
                        b"9" * 30,
                        b"::",
                        b"/33",
                        b"-1",
                        b"<![foo[",
                        b"</table>",
                        b"<td>",
                    ]
                )
            )
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 64))]
        elif op == "duplicate":
            buf[pos:pos] = buf[pos : pos + draw(st.integers(1, 200))]
        elif op == "splice":
            _, other = draw(st.sampled_from(seeds(name)))
            buf[pos:] = other[draw(st.integers(0, max(0, len(other) - 1))) :]
    return filename, bytes(buf)


FUZZ = settings(
    max_examples=int(os.environ.get("ABUSEDESK_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_fuzz_only_parse_errors(name: str) -> None:
    @FUZZ
    @given(mutated(name))
    def run(case: tuple[str, bytes]) -> None:
        exercise(PARSERS[name], *case)

    run()


@given(st.binary(max_size=2048), st.sampled_from(sorted(PARSERS)))
@settings(max_examples=200, deadline=None)
def test_random_bytes(data: bytes, name: str) -> None:
    exercise(PARSERS[name], "input.bin", data)


def regression_cases() -> list[Path]:
    # the directory is shared with the mail parsers' fuzz tests: only replay the cases of the parsers here
    return sorted(p for name in PARSERS for p in (REGRESSIONS / name).glob("*") if p.is_file())


@pytest.mark.parametrize("path", regression_cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regressions(path: Path) -> None:
    exercise(PARSERS[path.parent.name], path.name.split("__", 1)[-1], path.read_bytes())


@given(st.integers(0, 2**32 - 1), st.sampled_from(["", " ", "\n", "0"]))
@settings(max_examples=300, deadline=None)
def test_ipv4_fast_path_matches_ipaddress(value: int, noise: str) -> None:
    """The parsers lean on normalise_ip's fast path for canonical IPv4; it must agree with ipaddress exactly."""
    import ipaddress

    from abusedesk.domain.ipnet import int_to_ip, ip_to_int, normalise_ip

    text = str(ipaddress.IPv4Address(value))
    assert normalise_ip(text) == text == int_to_ip(ip_to_int(text))
    noisy = noise + text if noise != "0" else "0" + text
    try:
        slow = int_to_ip(ip_to_int(noisy))
    except ValueError:
        with pytest.raises(ValueError):
            normalise_ip(noisy)
    else:
        assert normalise_ip(noisy) == slow


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("shadowserver", b'"timestamp","ip","port"\n"0001-01-01T00:00:00+01:00","192.0.2.1",53\n'),
        ("intelmq", b'{"classification.type": "scanner", "time.source": "0001-01-01T00:00:00+01:00"}\n'),
        ("listfeeds", b'{"DataFeed": "CTIP-Infected", "DateTimeReceivedUtc": 99999999999999999999999}\n'),
        ("listfeeds", b"# DataPlane.org\n1 | x | 192.0.2.1 | 0001-01-01T00:00:00+01:00 | sshpwauth\n"),
        (
            "acns",
            b'<Infringement xmlns="http://www.acns.net/ACNS"><Source><TimeStamp>0001-01-01T00:00:00+01:00'
            b"</TimeStamp><IP_Address>192.0.2.1</IP_Address></Source></Infringement>",
        ),
        ("dmca", b"From: a@example.com\nDate: Mon, 1 Jan 99999999999999999999 00:00:00 +0000\nSubject: DMCA\n\nDMCA"),
    ],
)
def test_out_of_range_times(name: str, data: bytes) -> None:
    exercise(PARSERS[name], "2026-02-28-scan_dns-example-asn.csv" if name == "shadowserver" else "x", data)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("intelmq", b"[" * 100_000 + b"]" * 100_000),
        ("intelmq", b'{"classification.type": "x", "a": ' + b'{"b": ' * 2000 + b"1" + b"}" * 2000 + b"}\n"),
        ("listfeeds", b'[{"indicatorthreattype": "Botnet", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"),
        ("intelmq", b'{"classification.type": "x", "source.port": ' + b"9" * 5000 + b"}\n"),
    ],
)
def test_deep_or_huge_json(name: str, data: bytes) -> None:
    exercise(PARSERS[name], "x.json", data)


@pytest.mark.parametrize("name", ["acns", "dmca"])
def test_charset_with_nul(name: str) -> None:
    data = (
        b"From: notices@example.com\nSubject: DMCA notice\nMIME-Version: 1.0\n"
        b'Content-Type: text/plain; charset="utf\x00-8"\n\n'
        b"DMCA notice for http://files.example.net/x\n"
        b'<Infringement xmlns="http://www.acns.net/ACNS"><Source><TimeStamp>2026-02-28T00:00:00Z</TimeStamp>'
        b"<IP_Address>192.0.2.1</IP_Address></Source></Infringement>\n"
    )
    exercise(PARSERS[name], "notice.eml", data)
