"""Control-plane actions (suspend a service, disable its data access, reinstate it) as a signed HTTP webhook.

Each action is one ``POST`` of a JSON body to ``settings.webhook.url`` with

- ``Idempotency-Key``: the action's idempotency key, the same on every attempt and every retry, so the control
  plane carries the action out at most once however often we ask;
- ``X-Abusedesk-Signature: t=<unix time>,v1=<hex>``: HMAC-SHA256 with ``settings.webhook.secret`` over
  ``"<t>." + body`` (the scheme Stripe uses). The receiver recomputes it and refuses a ``t`` older than its
  tolerance (:func:`verify_signature` is the reference implementation).

Responses: 2xx is success. 5xx, 408, 409 (the control plane is still working on this key), 429, timeouts and
connection errors are retried here with exponential backoff up to ``max_attempts``; if all fail the result is
retryable and the runner tries again later. Any other 4xx means the request itself is wrong: failed, not retried.
With ``dry_run`` nothing is sent; the result says what would have been sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from abusedesk.actions.base import ActionRequest, ActionResult, Adapter
from abusedesk.config import WebhookSettings
from abusedesk.domain.actions import AdapterFamily, kinds_of
from abusedesk.domain.ids import canonical_json

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Abusedesk-Signature"
#: the actions a control-plane adapter carries out: the catalogue's control family
CONTROL_KINDS = kinds_of(AdapterFamily.CONTROL)
_RETRY_STATUS = frozenset({408, 409, 425, 429})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = 300) -> bool:
    """What a receiver does: parse ``t=..,v1=..``, recompute, compare in constant time, refuse stale ``t``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def action_body(request: ActionRequest) -> bytes:
    """The JSON body: the same bytes on every attempt of one action."""
    p = request.payload
    return canonical_json(
        {
            "action_id": request.action_id,
            "idempotency_key": request.idempotency_key,
            "action": request.kind,
            "case_id": request.case_id,
            "case_ref": p.get("case_ref"),
            "customer_id": request.customer_id,
            "project_id": p.get("project_id"),
            "service_id": request.service_id,
            "clause": p.get("clause"),
            "cites": p.get("cites", []),
            "reason": p.get("reason") or f"AUP clause {p.get('clause')} ({p.get('clause_title', '')})",
        }
    )


class ControlPlaneWebhookAction(Adapter):
    """Suspends a service, disables its data access or reinstates it by a signed webhook to the control plane.

    Flags nothing itself; it carries out approved control actions. False positives are stopped upstream by the
    two-person rule. ``reinstate`` undoes both restrictions.
    """

    name = "control_plane_webhook"
    kinds: ClassVar[tuple[str, ...]] = CONTROL_KINDS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str | None = None
        secret: str = ""
        timeout: float = 10.0
        max_attempts: int = 5
        backoff_base: float = 0.5
        backoff_cap: float = 30.0

    params: Params

    def __init__(self, params: Params | None = None, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(params if params is not None else self.Params())
        self._sleep = sleep

    @classmethod
    def from_settings(cls, webhook: WebhookSettings) -> ControlPlaneWebhookAction:
        return cls(cls.Params(**webhook.model_dump(exclude={"secret"}), secret=webhook.secret.get_secret_value()))

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        p = self.params
        body = action_body(request)
        if dry_run:
            return ActionResult(
                True,
                f"dry run: would POST {len(body)} bytes to {p.url or '(webhook.url not set)'}",
                response={
                    "dry_run": True,
                    "url": p.url,
                    "headers": {"Idempotency-Key": request.idempotency_key},
                    "body": body.decode(),
                },
            )
        if not p.url:
            return ActionResult(False, "setting webhook.url (env ABUSEDESK_WEBHOOK__URL) is not set; no control plane")
        if not p.secret:
            return ActionResult(
                False,
                "setting webhook.secret (env ABUSEDESK_WEBHOOK__SECRET) is empty; refusing to "
                "send an unsigned control-plane request",
            )
        last = ""
        attempts = 0
        for attempt in range(1, max(p.max_attempts, 1) + 1):
            attempts = attempt
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": request.idempotency_key,
                SIGNATURE_HEADER: sign(p.secret, int(time.time()), body),
                "User-Agent": "abusedesk-control/1",
            }
            retry_after: float | None = None
            try:
                resp = httpx.post(p.url, content=body, headers=headers, timeout=p.timeout)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__} talking to {p.url}: {exc}"
            else:
                if resp.is_success:
                    data = _json(resp)
                    ref = str(data.get("id") or data.get("ref") or "") or None
                    return ActionResult(
                        True,
                        f"HTTP {resp.status_code} from {p.url} after {attempt} attempt(s)",
                        external_ref=ref,
                        response={"status": resp.status_code, "attempts": attempt, "body": data},
                    )
                last = f"HTTP {resp.status_code} from {p.url}: {resp.text[:300]}"
                if resp.status_code < 500 and resp.status_code not in _RETRY_STATUS:
                    return ActionResult(
                        False,
                        f"{last} (the control plane refused the request; not retried)",
                        retryable=False,
                        response={"status": resp.status_code, "attempts": attempt},
                    )
                retry_after = _retry_after(resp)
            log.warning("control-plane %s for %s attempt %d failed: %s", request.kind, request.case_id, attempt, last)
            if attempt < p.max_attempts:
                delay = min(p.backoff_base * 2 ** (attempt - 1), p.backoff_cap)
                self._sleep(min(retry_after, p.backoff_cap) if retry_after is not None else delay)
        return ActionResult(
            False,
            f"{last} (gave up after {attempts} attempts; will be retried later)",
            retryable=True,
            response={"attempts": attempts},
        )


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {"text": resp.text[:500]}
    return data if isinstance(data, dict) else {"value": data}


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class ConsoleControlAction(Adapter):
    """The dev/test twin (``control_backend = "console"``): logs what the webhook would send, changes nothing."""

    name = "control_console"
    kinds: ClassVar[tuple[str, ...]] = CONTROL_KINDS

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        body = action_body(request).decode()
        log.info("control-plane %s (console backend%s): %s", request.kind, ", dry run" if dry_run else "", body)
        return ActionResult(True, f"console backend: logged {request.kind}", response={"body": body})


class NullControlAction(Adapter):
    """``control_backend = "null"``: accepts every control action and does nothing (tests of other stages)."""

    name = "control_null"
    kinds: ClassVar[tuple[str, ...]] = CONTROL_KINDS

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        return ActionResult(True, "null backend: nothing done")
