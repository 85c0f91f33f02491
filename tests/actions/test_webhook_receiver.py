"""The receiver recipe of docs/reference/webhook-receiver.md, run as written against real signed deliveries.

The recipe's code is taken from the page itself and served by a real HTTP server on loopback; the deliveries come
from the real ControlPlaneWebhookAction (issue 10 item 9).
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abusedesk.actions import webhook
from abusedesk.actions.base import ActionRequest
from abusedesk.actions.webhook import SIGNATURE_HEADER, ControlPlaneWebhookAction, sign, verify_signature

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "webhook-receiver.md"
OLD, NEW = "old-secret-2025", "new-secret-2026"


def _recipe() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2, "the page holds the verifier and the receiver"
    namespace: dict[str, Any] = {"__name__": "recipe"}
    exec(compile("\n".join(blocks), str(PAGE), "exec"), namespace)
    return namespace


def test_recipe_verifier_is_the_shipped_function() -> None:
    assert inspect.getsource(verify_signature) in PAGE.read_text()


@contextmanager
def _receiver(secrets: list[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    ns = _recipe()
    carried: list[dict[str, Any]] = []
    ns["SECRETS"][:] = secrets
    ns["carry_out"] = carried.append
    server = ThreadingHTTPServer(("127.0.0.1", 0), ns["AbusedeskWebhook"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", carried
    finally:
        server.shutdown()
        server.server_close()


def _request(action_id: str = "ac_1") -> ActionRequest:
    return ActionRequest(
        action_id=action_id,
        case_id="cs_1",
        kind="suspend-service",
        idempotency_key=f"cs_1:manual:suspend-service:{action_id}",
        customer_id="cust-a",
        service_id="svc-a1",
        payload={"case_ref": "AD-1", "clause": "1.8"},
    )


def _sender(url: str, secret: str, rotating: list[str] | None = None) -> ControlPlaneWebhookAction:
    params = ControlPlaneWebhookAction.Params(
        url=url, secret=secret, rotating_secrets=rotating or [], max_attempts=1, timeout=5
    )
    return ControlPlaneWebhookAction(params)


def test_recipe_carries_out_each_action_once_across_retries() -> None:
    with _receiver([NEW]) as (url, carried):
        sender = _sender(url, NEW)
        for _ in range(3):  # the desk retries until it sees a 2xx; every attempt is a real, fresh signature
            result = sender.apply(_request())
            assert result.ok, result.detail
        assert sender.apply(_request("ac_2")).ok
    assert [a["action_id"] for a in carried] == ["ac_1", "ac_2"]


def test_recipe_accepts_either_secret_during_a_rotation() -> None:
    with _receiver([OLD]) as (url, carried):  # the receiver has not moved yet; the desk signs with both
        assert _sender(url, NEW, rotating=[OLD]).apply(_request()).ok
    with _receiver([NEW, OLD]) as (url, carried2):  # the receiver holds both; the desk still signs with the old
        assert _sender(url, OLD).apply(_request()).ok
    assert len(carried) == len(carried2) == 1


def test_recipe_refuses_a_wrong_secret_a_stale_time_and_an_altered_body() -> None:
    with _receiver([NEW]) as (url, carried):
        bad = _sender(url, "someone-elses-secret").apply(_request())
        assert not bad.ok
        assert "401" in bad.detail
        body = webhook.action_body(_request())
        stale = int(time.time()) - 3600
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign(NEW, stale, body)})
        assert r.status_code == 401
        now = int(time.time())
        r = httpx.post(url, content=body + b" ", headers={SIGNATURE_HEADER: sign(NEW, now, body)})
        assert r.status_code == 401
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: "t=,v1=,v1=\u00e9\u00e9,=,,".encode()})
        assert r.status_code == 401
    assert carried == []


def test_empty_secret_is_refused() -> None:
    for secrets in ("", [], [NEW, ""]):
        with pytest.raises(ValueError, match="empty"):
            verify_signature(secrets, sign(NEW, int(time.time()), b"{}"), b"{}")


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(st.text(max_size=300), st.binary(max_size=50), st.none(), st.integers()), body=st.binary())
def test_verify_never_raises_on_any_input(header: Any, body: bytes) -> None:
    assert verify_signature([NEW, OLD], header, body) is False
    assert _recipe_verify()([NEW], header, body) is False


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200), extra=st.lists(st.text(max_size=70), max_size=3))
def test_any_of_several_v1_values_matches(body: bytes, extra: list[str]) -> None:
    now = int(time.time())
    good = sign(NEW, now, body)
    noisy = ",".join([good, *(f"v1={e}" for e in extra if "," not in e)])
    assert verify_signature([OLD, NEW], noisy, body, now=now)
    assert not verify_signature([OLD], noisy, body, now=now)


_RECIPE: dict[str, Any] = {}


def _recipe_verify() -> Any:
    if not _RECIPE:
        _RECIPE.update(_recipe())
    return _RECIPE["verify_signature"]
