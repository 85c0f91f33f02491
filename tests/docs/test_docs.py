"""Every setting and every event field has its documentation (datasette's test_docs.py is the model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from abusedesk.config import Settings
from abusedesk.domain.records import EVENT_FIELDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _documented_keys(page: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_.]+)` \|", (DOCS / page).read_text(), flags=re.MULTILINE))


def _setting_keys() -> list[str]:
    """Top-level keys, the keys of each section (``[smtp]``: ``host``), and deeper ones dotted from the section
    (``[intake.parser_hints]``: ``parser_hints.recipients``)."""

    def nested(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out.append(prefix + name)
                out.extend(nested(annotation, f"{prefix}{name}."))
            else:
                out.append(prefix + name)
        return out

    keys = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(nested(annotation, ""))
        else:
            keys.append(name)
    return keys


@pytest.mark.parametrize("key", _setting_keys())
def test_setting_is_documented(key: str) -> None:
    assert key in _documented_keys("admin/settings.md"), f"setting {key} has no row in docs/admin/settings.md"


@pytest.mark.parametrize("name", [*EVENT_FIELDS, "id", "extra"])
def test_event_field_is_documented(name: str) -> None:
    assert name in _documented_keys("reference/event-fields.md"), f"{name} missing in docs/reference/event-fields.md"


def _plugin_params() -> list[str]:
    from abusedesk.plugins import detector_classes, parser_classes

    keys = []
    for group, classes in (("parsers", parser_classes()), ("detectors", detector_classes())):
        keys += [f"{group}.{cls.name}.{param}" for cls in classes for param in cls.Params.model_fields]
    return keys


@pytest.mark.parametrize("key", _plugin_params())
def test_plugin_param_is_documented(key: str) -> None:
    assert key in _documented_keys("admin/settings.md"), f"plugin parameter {key} has no row in docs/admin/settings.md"
