"""Whatever is done to a policy file, loading it either succeeds or raises ConfigError naming the file."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.domain.errors import ConfigError
from abusedesk.policy import Policy, load_policy_text

SHIPPED_TEXT = resources.files("abusedesk.policy").joinpath("data", "aup-2025-06-10.yaml").read_text("utf-8")
LINES = SHIPPED_TEXT.splitlines(keepends=True)
SHIPPED_DATA = yaml.safe_load(SHIPPED_TEXT)
NOISE = st.sampled_from(
    [":", "-", "[", "]", "{", "}", "&a", "*a", "!!", "'", '"', "\t", " ", "#", "\x00", "é", "%", "|", ">", "\n", "?"]
)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(text: str) -> Policy | None:
    """The Policy, or None after checking that the ConfigError names the file in every message."""
    error: ConfigError | None = None
    try:
        return load_policy_text(text, "fuzz.yaml")
    except ConfigError as exc:
        error = exc
    assert error.file == "fuzz.yaml"
    assert error.message.startswith("fuzz.yaml")
    for sub in error.errors:
        assert sub.file == "fuzz.yaml" and sub.message.startswith("fuzz.yaml")
    return None


@FUZZ
@given(st.data())
def test_line_mutations_never_raise_anything_but_config_error(data: st.DataObject) -> None:
    lines = list(LINES)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "noise", "truncate", "indent", "dedent"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "noise":
            pos = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + data.draw(NOISE) + lines[i][pos:]
        elif op == "truncate":
            lines = lines[:i]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        else:
            lines[i] = lines[i][2:]
        if not lines:
            break
    _load("".join(lines))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(SHIPPED_DATA) if p]
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["1.8", "spam", "notify", "critical", "72h", "0", "suspend-service", "default"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3), st.booleans())
def test_value_mutations_never_raise_anything_but_config_error(
    changes: list[tuple[tuple[Any, ...], Any]], delete: bool
) -> None:
    data = copy.deepcopy(SHIPPED_DATA)
    for path, value in changes:
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _load(yaml.dump(data, Dumper=DUMPER, allow_unicode=True, sort_keys=False))


def test_the_shipped_file_survives_a_dump_and_reload() -> None:
    # the value fuzz above starts from this round trip, so it must itself load
    policy = _load(yaml.safe_dump(SHIPPED_DATA, allow_unicode=True, sort_keys=False))
    assert policy is not None
    assert list(policy.clauses) == list(load_policy_text(SHIPPED_TEXT).clauses)
