"""Schemathesis against the OpenAPI document of the real server: no answer is a 5xx, and every answer the document
describes matches its schema. Bounded: a few generated requests per operation (``ABUSEDESK_FUZZ_EXAMPLES``, default
8), as an admin (every route's happy path is reachable) on a desk with a case, an action and a consent."""

from __future__ import annotations

import os
from typing import Any

import pytest

from abusedesk.clock import ManualClock
from abusedesk.runtime import Runtime
from tests.support.identities import People
from tests.support.web import portal_desk

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("ABUSEDESK_FUZZ_EXAMPLES", "8"))


def _operations(schema: Any) -> list[Any]:
    out = []
    for result in schema.get_all_operations():
        out.append(result.ok())
    return out


def test_no_server_error_and_no_response_outside_the_schema(
    server: str, runtime: Runtime, people: People, clock: ManualClock
) -> None:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    portal_desk(runtime, people, clock)
    schema = schemathesis.openapi.from_url(f"{server}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {people.tokens['root']}"}
    operations = _operations(schema)
    assert len(operations) >= 20, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=server, headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=30
            )

        try:
            run()
        except Exception as exc:  # every operation is tried; the failures are reported together
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
