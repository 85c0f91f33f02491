"""docs/reference/policy-file.md stays true to the loader: every field and step type, and a working example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from abusedesk.policy import StepType, load_policy_text
from abusedesk.policy.loader import _MODELS_BY_PATH

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = (DOCS / "reference" / "policy-file.md").read_text("utf-8")
FIELDS = sorted({name for _, model in _MODELS_BY_PATH for name in model.model_fields})


def _documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z_\-]+)` \|", REFERENCE, flags=re.MULTILINE))


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_documented(name: str) -> None:
    if name in ("low", "medium", "high", "critical"):  # the keys of max_notice_delay, documented in its row
        assert f"`{name}`" in REFERENCE
        return
    assert name in _documented(), f"field {name!r} has no row in docs/reference/policy-file.md"


@pytest.mark.parametrize("step", [s.value for s in StepType])
def test_every_step_type_is_documented(step: str) -> None:
    assert step in _documented()


def test_the_example_loads() -> None:
    example = REFERENCE.split("## Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = load_policy_text(example, "example")
    assert policy.id == "example-aup" and list(policy.clauses) == ["A", "B", "C", "D"]
    assert policy.clauses_for_kind("phishing") == ("A",)
    assert policy.playbook_for("B", "critical").steps[1].cite == "C"
    user = (DOCS / "user" / "policy.md").read_text("utf-8")
    assert f"OK /etc/abusedesk/policy.yaml: {policy.version} " in user
