"""The parse stage quarantines an input that passes a bound, with the bound's name and setting as the reason
(issue 9 item 3): unpacked bytes of the whole input, MIME depth (while sniffing too), parse time."""

from __future__ import annotations

from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from tests.parsers.test_input_limits import HEADER, _csv_rows, _mail_with_archives, nested_mail


def _parse(runtime: Runtime, data: bytes, **meta: str) -> tuple[str, str | None]:
    intake = IntakeService(runtime)
    accepted = intake.accept(data, channel="file", meta=dict(meta))
    outcome = intake.parse(accepted.raw.id)
    return outcome.status, outcome.error


def test_45_archives_over_the_budget_together_are_quarantined(runtime: Runtime) -> None:
    runtime.settings.intake.max_unpacked_bytes = 4 * 1024 * 1024
    status, error = _parse(runtime, _mail_with_archives(1, rows=2000))
    assert status == "parsed"  # one archive is well within the limit
    status, error = _parse(runtime, _mail_with_archives(45, rows=2000))
    assert status == "quarantined"
    assert error is not None
    assert "more than 4194304 bytes" in error
    assert "setting intake.max_unpacked_bytes" in error


def test_mime_nested_1000_deep_is_quarantined_for_its_depth(runtime: Runtime) -> None:
    status, error = _parse(runtime, nested_mail(1000))
    assert status == "quarantined"
    assert error == (
        "MIME nesting deeper than 32 (setting intake.max_mime_depth); the mail may be built to exhaust the parser"
    )


def test_the_depth_limit_is_a_setting(runtime: Runtime) -> None:
    status, error = _parse(runtime, nested_mail(40))
    assert status == "quarantined"
    assert error is not None
    assert "deeper than 32" in error
    runtime.settings.intake.max_mime_depth = 64
    status, error = _parse(runtime, nested_mail(40) + b"\r\n")  # other bytes: another input
    assert error is None or "deeper than" not in error


def test_a_feed_over_the_parse_deadline_is_quarantined(runtime: Runtime) -> None:
    runtime.settings.intake.max_parse_seconds = 0.05
    data = (HEADER + _csv_rows(100_000)).encode()
    status, error = _parse(runtime, data, filename="2026-03-01-scan_dns-example-asn.csv")
    assert status == "quarantined"
    assert error is not None
    assert "longer than 0.05 seconds (setting intake.max_parse_seconds)" in error
    runtime.settings.intake.max_parse_seconds = 300
    small = (HEADER + _csv_rows(2000)).encode()  # recording 100,000 events would take the stage most of a minute
    status, error = _parse(runtime, small, filename="2026-03-01-scan_dns-example-asn.csv")
    assert (status, error) == ("parsed", None)
