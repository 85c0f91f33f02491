"""Intake benchmark: parse throughput (bytes -> events) of abusedesk's parsers against IntelMQ 3.5's parser bots.

Workloads, each run by both sides on the same bytes in the same process, alternating, median of the rounds:

- ``shadowserver_corpus``: the corpus's Shadowserver CSVs of the report types IntelMQ knows offline. IntelMQ's
  Shadowserver bot needs Shadowserver's schema, which it downloads at run time; offline only the wheel's
  ``schema.json.test`` (types test_smb, test_telnet, test_afs) exists, so the corpus files scan_smb.csv and
  scan_telnet.csv are given to IntelMQ as ``test_smb`` / ``test_telnet`` and to abusedesk under their real names.
- ``shadowserver_20k``: one 20,000-row telnet report (documentation addresses, generated here).
- ``arf``: the corpus's RFC 5965 feedback-loop mails. IntelMQ has no ARF parser; its nearest is the key_value
  parser bot fed with the ``message/feedback-report`` part, which its mail collector would extract: that MIME
  step is counted on IntelMQ's side, as abusedesk's ArfParser does it too.

Also measured, ours only: every Shadowserver file of the corpus (93 CSVs, 18 zipped mails), and the ARF samples
through every parser's sniffing in the intake's order before the parse (what a feedback report costs the intake).

Run: ``.venv/bin/python benchmarks/intake.py [--quick]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import email
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "reports"
sys.path.insert(0, str(ROOT / "src"))

# IntelMQ reads INTELMQ_ROOT_DIR when it is imported: give it a scratch tree first
_SCRATCH = tempfile.mkdtemp(prefix="intelmq-bench-")
for sub in ("var/lib/bots", "etc", "var/log", "var/run"):
    os.makedirs(os.path.join(_SCRATCH, sub), exist_ok=True)
os.environ["INTELMQ_ROOT_DIR"] = _SCRATCH

from intelmq.bots.parsers.key_value.parser import KeyValueParserBot  # noqa: E402
from intelmq.bots.parsers.shadowserver.parser import ShadowserverParserBot  # noqa: E402
from intelmq.lib.bot import BotLibSettings  # noqa: E402

from abusedesk.domain.records import Event, RawInput  # noqa: E402
from abusedesk.parsers.arf import ArfParser  # noqa: E402
from abusedesk.parsers.base import Parser, Report  # noqa: E402
from abusedesk.parsers.shadowserver import ShadowserverParser  # noqa: E402
from abusedesk.plugins import load_parsers  # noqa: E402

RECEIVED = datetime(2026, 3, 1, tzinfo=UTC)
Sample = tuple[str, bytes]  # (file name, bytes)

# ------------------------------------------------------------------------------------------------ ours


def ours_run(parser: Parser, samples: list[Sample]) -> int:
    events = 0
    for name, data in samples:
        report = Report(
            RawInput(id="bench", size=len(data), channel="bench", received_at=RECEIVED, meta={"filename": name}), data
        )
        for item in parser.parse(report):
            if isinstance(item, Event):
                events += 1
    return events


# ------------------------------------------------------------------------------------------------ IntelMQ


def make_bot(cls: type, **params: Any) -> Any:
    bot = cls(f"bench-{cls.__name__.lower()}", settings=BotLibSettings | {"logging_level": "ERROR"} | params)
    return bot


def intelmq_report(name: str, data: bytes) -> dict[str, Any]:
    return {
        "__type": "Report",
        "raw": base64.b64encode(data).decode(),
        "feed.name": "bench",
        "extra.file_name": name,
        "time.observation": "2026-03-01T00:00:00+00:00",
    }


def intelmq_run(bot: Any, samples: list[Sample]) -> int:
    events = 0
    for name, data in samples:
        out = bot.process_message(intelmq_report(name, data))
        events += len(out.get("output", []))
    return events


def feedback_report_line(data: bytes) -> bytes:
    """What IntelMQ's mail collector would hand on: the message/feedback-report part, as one line of fields."""
    msg = email.message_from_bytes(data, policy=policy.compat32)
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list):  # parsed as a message: its headers are the fields
                text = "\n".join(f"{k}: {v}" for item in payload for k, v in item.items())
            else:
                text = str(payload)
            fields = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ": " in ln]
            return "\t".join(fields).encode()
    return b""


def intelmq_arf_run(bot: Any, samples: list[Sample]) -> int:
    events = 0
    for name, data in samples:
        line = feedback_report_line(data)
        out = bot.process_message(intelmq_report(name, line))
        events += len(out.get("output", []))
    return events


# ------------------------------------------------------------------------------------------------ workloads

TELNET_HEADER = (
    '"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","sic","banner"\n'
)


def telnet_rows(n: int) -> bytes:
    nets = ("192.0.2", "198.51.100", "203.0.113")
    rows = []
    for i in range(n):
        ip = f"{nets[i % 3]}.{(i // 3) % 256}" if i % 10 else f"2001:db8::{i:x}"
        rows.append(
            f'"2026-02-28 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}","{ip}","tcp",{23 + i % 3},'
            f'"host{i}.example.net","telnet",64496,"ZZ","Region","City",0,0,"login: "\n'
        )
    return (TELNET_HEADER + "".join(rows)).encode()


def shadowserver_corpus() -> tuple[list[Sample], list[Sample]]:
    ours, peer = [], []
    for typ in ("smb", "telnet"):
        data = (CORPUS / "intelmq-shadowserver-testdata" / f"scan_{typ}.csv").read_bytes()
        ours.append((f"2026-02-28-scan_{typ}-corpus-asn.csv", data))
        peer.append((f"2026-02-28-test_{typ}-corpus-asn.csv", data))
    return ours, peer


def arf_samples() -> list[Sample]:
    files = sorted((CORPUS / "abuseio-notifier-samples" / "feedback-loop").glob("*.eml"))
    files += sorted((CORPUS / "abuseio-notifier-samples" / "spamexperts").glob("*.eml"))
    return [(p.name, p.read_bytes()) for p in files]


def all_shadowserver() -> list[Sample]:
    files = sorted((CORPUS / "intelmq-shadowserver-testdata").glob("*.csv"))
    files += sorted((CORPUS / "abuseio-notifier-samples" / "shadowserver").glob("*.eml"))
    return [(p.name, p.read_bytes()) for p in files]


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def compare(
    label: str, ours: Callable[[], int], peer: Callable[[], int], reports: int, rounds: int, budget: float
) -> dict[str, Any]:
    """Alternate ours/peer for ``rounds`` rounds, stopping early once ``budget`` seconds have passed; medians."""
    ours_t: list[float] = []
    peer_t: list[float] = []
    n_ours = n_peer = 0
    start = time.perf_counter()
    for i in range(rounds):
        first, second = (ours, peer) if i % 2 == 0 else (peer, ours)
        ta, na = timed(first)
        tb, nb = timed(second)
        if first is ours:
            ours_t.append(ta), peer_t.append(tb)
            n_ours, n_peer = na, nb
        else:
            peer_t.append(ta), ours_t.append(tb)
            n_peer, n_ours = na, nb
        if time.perf_counter() - start > budget:  # a loaded machine gets fewer rounds, not a longer run
            break
    mo, mp = statistics.median(ours_t), statistics.median(peer_t)
    result = {
        "events_ours": n_ours,
        "events_peer": n_peer,
        "reports": reports,
        "rounds": len(ours_t),
        "ours_events_per_s": round(n_ours / mo, 1),
        "peer_events_per_s": round(n_peer / mp, 1),
        "ours_reports_per_s": round(reports / mo, 3),
        "peer_reports_per_s": round(reports / mp, 3),
        "ratio": round(mp / mo, 2),  # same work, so the time ratio; events differ only where noted
    }
    print(
        f"{label:22s} ours {result['ours_events_per_s']:>10,.0f} ev/s {result['ours_reports_per_s']:>9,.1f} rep/s"
        f" | IntelMQ {result['peer_events_per_s']:>9,.0f} ev/s {result['peer_reports_per_s']:>8,.1f} rep/s"
        f" | x{result['ratio']:.1f}  (events {n_ours} vs {n_peer}, {len(ours_t)} rounds)"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and a 5,000-row report (smoke test)")
    args = ap.parse_args()
    rounds = 3 if args.quick else 7
    rows = 5_000 if args.quick else 20_000

    ss_bot = make_bot(ShadowserverParserBot, test_mode=True)
    kv_bot = make_bot(
        KeyValueParserBot,
        pair_separator="\t",
        kv_separator=": ",
        keys={
            "Source-IP": "source.ip",
            "Arrival-Date": "time.source",
            "Reported-Domain": "source.fqdn",
            "Feedback-Type": "event_description.text",
        },
    )
    ours_ss, ours_arf = ShadowserverParser(), ArfParser()

    workloads: dict[str, Any] = {}
    corpus_ours, corpus_peer = shadowserver_corpus()
    reps = 50  # the two files are tiny: repeat them so one round is measurable
    workloads["shadowserver_corpus"] = compare(
        "shadowserver corpus",
        lambda: ours_run(ours_ss, corpus_ours * reps),
        lambda: intelmq_run(ss_bot, corpus_peer * reps),
        len(corpus_ours) * reps,
        rounds,
        15,
    )

    big = telnet_rows(rows)
    big_ours = [("2026-02-28-scan_telnet-example-asn.csv", big)]
    big_peer = [("2026-02-28-test_telnet-example-asn.csv", big)]
    workloads[f"shadowserver_{rows // 1000}k"] = compare(
        f"shadowserver {rows:,} rows",
        lambda: ours_run(ours_ss, big_ours),
        lambda: intelmq_run(ss_bot, big_peer),
        1,
        max(3, rounds - 2),
        45,
    )

    arf = arf_samples()
    workloads["arf"] = compare(
        "ARF feedback loops",
        lambda: ours_run(ours_arf, arf * 5),
        lambda: intelmq_arf_run(kv_bot, arf * 5),
        len(arf) * 5,
        rounds,
        10,
    )

    # ours only: what the intake does with a feedback report, every parser's sniffing in order, then the parse
    sniffers = load_parsers()
    t, n = timed(lambda: sniff_and_parse(sniffers, arf * 5))
    workloads["ours_only_arf_sniffed_and_parsed"] = {
        "reports": len(arf) * 5,
        "events": n,
        "reports_per_s": round(len(arf) * 5 / t, 1),
        "us_per_report": round(t / (len(arf) * 5) * 1e6, 1),
    }
    print(
        f"{'ARF sniffed + parsed':22s} ours {n / t:>10,.0f} ev/s {len(arf) * 5 / t:>9,.1f} rep/s (ours only: every"
        f" parser's sniffing in the intake's order, then the parse)"
    )

    every = all_shadowserver()
    t, n = timed(lambda: ours_run_tolerant(ours_ss, every))
    workloads["ours_only_all_shadowserver"] = {
        "reports": len(every),
        "events": n,
        "reports_per_s": round(len(every) / t, 1),
        "events_per_s": round(n / t, 1),
    }
    print(
        f"{'all Shadowserver files':22s} ours {n / t:>10,.0f} ev/s {len(every) / t:>9,.1f} rep/s (ours only:"
        f" IntelMQ lacks the schema offline)"
    )

    for bot in (ss_bot, kv_bot):
        bot._Bot__stats_cache = None  # avoids IntelMQ's ~8 s Redis retry at exit; timings are unaffected

    head = workloads[f"shadowserver_{rows // 1000}k"]
    ratios = [w["ratio"] for k, w in workloads.items() if "ratio" in w]
    print(
        json.dumps(
            {
                "benchmark": "intake",
                "ours": head["ours_events_per_s"],
                "peer": head["peer_events_per_s"],
                "peer_name": "IntelMQ 3.5.0 parser bots, library mode (ShadowserverParserBot; KeyValueParserBot: ARF)",
                "unit": f"events/s, one {rows:,}-row Shadowserver report",
                "ratio": head["ratio"],
                "min_ratio": min(ratios),
                "workloads": workloads,
                "machine": f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
                f"{os.cpu_count()} CPUs, {platform.platform()}",
            }
        )
    )


def sniff_and_parse(parsers: list[Parser], samples: list[Sample]) -> int:
    """IntakeService's sniffing (the first parser that recognises the input) and parse, without the storage."""
    events = 0
    for name, data in samples:
        report = Report(
            RawInput(id="bench", size=len(data), channel="smtp", received_at=RECEIVED, meta={"filename": name}), data
        )
        parser = next(p for p in parsers if p.recognises(report))
        events += sum(isinstance(item, Event) for item in parser.parse(report))
    return events


def ours_run_tolerant(parser: Parser, samples: list[Sample]) -> int:
    """Like ours_run, but a file that must be quarantined (schema drift) counts as parsed to its error."""
    from abusedesk.domain.errors import ParseError

    events = 0
    for name, data in samples:
        try:
            events += ours_run(parser, [(name, data)])
        except ParseError:
            continue  # quarantined input (schema drift): counted as a report, with no events
    return events


if __name__ == "__main__":
    main()
