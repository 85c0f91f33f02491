"""Plugin parameters from the settings: ``[parsers.<name>]`` / ``[detectors.<name>]`` and their env twins (issue 9)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.config import Settings, load_settings
from abusedesk.detectors.reported import ReportedAbuseDetector
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.records import Event
from abusedesk.intake.service import IntakeService
from abusedesk.parsers.xarf import XarfParser
from abusedesk.pipeline import DetectStage
from abusedesk.plugins import build_detectors, check_plugin_settings, detector_classes, parser_classes
from abusedesk.runtime import Runtime


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ABUSEDESK_DATA_DIR", "ABUSEDESK_DATABASE_URL", "ABUSEDESK_CONFIG", "ABUSEDESK_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def _open(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    try:
        yield rt
    finally:
        rt.close()


def _reported_event(confidence: float) -> Event:
    return Event.create(
        kind="spam",
        time=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        feed="test",
        reporter="reporter.example.net",
        source_ip="192.0.2.7",
        service_id="svc_1",
        customer_id="cus_1",
        confidence=confidence,
    )


def test_detect_stage_builds_detectors_with_the_settings_params(tmp_path: Path) -> None:
    event = _reported_event(0.9)
    defaults = Settings(data_dir=tmp_path / "a")
    tuned = Settings(data_dir=tmp_path / "b", detectors={"reported": {"min_confidence": 0.95}})
    with _open(defaults) as rt:
        (detector,) = [d for d in DetectStage(rt).detectors if d.name == "reported"]
        assert detector.params == ReportedAbuseDetector.Params()
        assert len(detector.detect([event])) == 1
    with _open(tuned) as rt:
        (detector,) = [d for d in DetectStage(rt).detectors if d.name == "reported"]
        assert detector.params == ReportedAbuseDetector.Params(min_confidence=0.95)
        assert detector.detect([event]) == []  # 0.9 is below the operator's threshold now


def test_parsers_get_their_params_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_PARSERS__XARF__MODE", "strict")
    monkeypatch.setenv("ABUSEDESK_DETECTORS__REPORTED__MIN_CONFIDENCE", "0.8")
    settings = load_settings(data_dir=tmp_path)
    assert settings.parsers == {"xarf": {"mode": "strict"}}
    with _open(settings) as rt:
        (xarf,) = [p for p in IntakeService(rt).parsers if isinstance(p, XarfParser)]
        assert xarf.params == XarfParser.Params(mode="strict")
        others = [p for p in IntakeService(rt).parsers if not isinstance(p, XarfParser)]
        assert all(p.params == type(p).Params() for p in others)
        assert build_detectors(rt.policy, rt.settings)[0].params == ReportedAbuseDetector.Params(min_confidence=0.8)


@pytest.mark.parametrize(
    ("parsers", "detectors", "message"),
    [
        ({}, {"reportd": {}}, r"setting 'detectors__reportd' \(env ABUSEDESK_DETECTORS__REPORTD\): no detector"),
        ({"xarff": {"mode": "strict"}}, {}, r"setting 'parsers__xarff' .*the parsers are: .*xarf"),
        (
            {},
            {"reported": {"min_confidance": 0.9}},
            r"setting 'detectors__reported__min_confidance' \(env ABUSEDESK_DETECTORS__REPORTED__MIN_CONFIDANCE\): "
            r"detector 'reported' has no parameter 'min_confidance'; its parameters: min_confidence",
        ),
        (
            {},
            {"reported": {"min_confidence": 2}},
            r"setting 'detectors__reported__min_confidence' \(env ABUSEDESK_DETECTORS__REPORTED__MIN_CONFIDENCE\): "
            r"Input should be less than or equal to 1",
        ),
        ({"xarf": {"mode": "lenient"}}, {}, r"setting 'parsers__xarf__mode' .*'strict', 'tolerant' or 'auto'"),
        ({"abusehub": {"timezone": "Mars/Olympus"}}, {}, r"setting 'parsers__abusehub__timezone'"),
    ],
)
def test_bad_plugin_settings_name_the_key(
    tmp_path: Path, parsers: dict[str, dict[str, object]], detectors: dict[str, dict[str, object]], message: str
) -> None:
    settings = Settings(data_dir=tmp_path, parsers=parsers, detectors=detectors)
    with pytest.raises(ConfigError, match=message):
        check_plugin_settings(settings)


def test_a_plugin_table_that_is_not_a_table_is_a_setting_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"setting 'detectors__reported'"):
        load_settings(data_dir=tmp_path, detectors={"reported": 0.9})


def test_cli_checks_plugin_settings_at_start(tmp_path: Path, clean_env: None) -> None:
    data = tmp_path / "desk"
    data.mkdir()
    (data / "abusedesk.toml").write_text("[detectors.reported]\nmin_confidance = 0.9\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--data-dir", str(data), "init"])
    assert result.exit_code == 2
    assert "setting 'detectors__reported__min_confidance'" in result.stderr
    (data / "abusedesk.toml").write_text("[detectors.reported]\nmin_confidence = 0.9\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["--data-dir", str(data), "init"]).exit_code == 0


def test_every_plugin_params_has_defaults() -> None:
    for cls in (*parser_classes(), *detector_classes()):
        cls.Params()  # the settings tables are optional: every parameter needs a default
