"""Control-plane actions through the signed webhook, against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from abusedesk.actions.base import ActionRequest
from abusedesk.actions.runner import ActionRunner
from abusedesk.actions.webhook import SIGNATURE_HEADER, ControlPlaneWebhookAction, verify_signature
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.clock import ManualClock
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow
from abusedesk.store.tables.inventory import ServiceRow
from tests.actions.support import SECRET, ControlPlane, control_plane, seed_inventory
from tests.cases.support import finding
from tests.support.components import free_port
from tests.support.identities import People, people_of


def _adapter(url: str, attempts: int = 3) -> ControlPlaneWebhookAction:
    return ControlPlaneWebhookAction(
        ControlPlaneWebhookAction.Params(url=url, secret=SECRET, timeout=5, max_attempts=attempts, backoff_base=0.01)
    )


def _runner(rt: Runtime, url: str, attempts: int = 3) -> ActionRunner:
    adapter = _adapter(url, attempts)
    return ActionRunner(rt, {k: adapter for k in adapter.kinds})


def _approved(rt: Runtime, kind: str = "suspend-service", key: str = "ip:192.0.2.10") -> tuple[str, str]:
    """A case (made by the real engine) with an approved ``kind`` action; returns (case ref, action id)."""
    people = people_of(rt)
    CaseEngine(rt).ingest([finding(rt.policy, 0, key=key)])
    with rt.sessions() as s:
        ref = s.scalars(select(CaseRow.ref).where(CaseRow.group_key == key)).one()
        # the engine's own request-to-cease is not what these tests are about
        case_id = s.scalars(select(CaseRow.id).where(CaseRow.ref == ref)).one()
        for a in s.scalars(select(ActionRow).where(ActionRow.case_id == case_id, ActionRow.status == "pending")):
            a.status = "done"
        s.commit()
    svc = CaseService(rt)
    proposed = svc.propose(ref, kind, by=people["alice"], reason="scanning went on after the deadline")
    svc.approve(proposed["id"], by=people["bob"])
    return ref, proposed["id"]


def _action(rt: Runtime, action_id: str) -> ActionRow:
    with rt.sessions() as s:
        row = s.get(ActionRow, action_id)
        assert row is not None
        return row


def _service(rt: Runtime, sid: str = "svc-a1") -> ServiceRow:
    with rt.sessions() as s:
        row = s.get(ServiceRow, sid)
        assert row is not None
        return row


def _check_signature(cp: ControlPlane) -> None:
    for rec in cp.requests:
        header = rec.headers[SIGNATURE_HEADER.lower()]
        t, v1 = (p.split("=", 1)[1] for p in header.split(","))
        # recomputed here from the definition, not with the code under test
        expected = hmac.new(SECRET.encode(), t.encode() + b"." + rec.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, expected)
        assert verify_signature(SECRET, header, rec.body)
        assert not verify_signature("wrong-secret", header, rec.body)
        assert not verify_signature(SECRET, header, rec.body + b" ")


def test_500_then_200_is_done_after_two_attempts_and_suspends(runtime: Runtime) -> None:
    seed_inventory(runtime)
    ref, action_id = _approved(runtime)
    with control_plane([500, 200]) as cp:
        [result] = _runner(runtime, cp.url).run_pending()
    assert result.ok, result.detail
    assert result.action_id == action_id
    assert result.response["attempts"] == 2
    assert len(cp.requests) == 2
    _check_signature(cp)
    action = _action(runtime, action_id)
    keys = {r.headers["idempotency-key"] for r in cp.requests}
    assert keys == {action.idempotency_key}  # stable across retries
    assert cp.requests[0].body == cp.requests[1].body
    body = json.loads(cp.requests[0].body)
    assert body["action"] == "suspend-service"
    assert body["case_ref"] == ref
    assert body["service_id"] == "svc-a1"
    assert (action.status, action.attempts, action.error) == ("done", 1, None)
    assert action.result["external_ref"] == "cp-2"
    assert _service(runtime).status == "suspended"
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow).where(CaseRow.ref == ref)).one()
        assert case.state == "restricted"
        entries = s.scalars(select(audit.AuditRow.action)).all()
        assert "action.done" in entries
        assert "service.updated" in entries
        assert audit.verify(s).ok


def test_always_500_fails_with_the_error_and_is_retried_later(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime, "disable-data-access")
    with control_plane([500]) as cp:
        runner = _runner(runtime, cp.url)
        [result] = runner.run_pending()
        assert not result.ok
        assert result.retryable
        assert len(cp.requests) == 3  # max_attempts in one run
        action = _action(runtime, action_id)
        assert action.status == "failed"
        assert "HTTP 500" in (action.error or "")
        assert action.next_attempt_at == clock.now() + timedelta(minutes=1)
        assert runner.run_pending() == []  # not before its time
        clock.advance(timedelta(minutes=1))
        cp.script[:] = [200]
        [second] = runner.run_pending()
        assert second.ok, second.detail
        assert len(cp.requests) == 4
    assert {r.headers["idempotency-key"] for r in cp.requests} == {action.idempotency_key}
    action = _action(runtime, action_id)
    assert (action.status, action.attempts) == ("done", 2)
    assert _service(runtime).data_access == "disabled"


def test_backoff_doubles_between_runner_attempts(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime)
    with control_plane([503]) as cp:
        runner = _runner(runtime, cp.url, attempts=1)
        gaps = []
        for _ in range(3):
            runner.run_pending()
            action = _action(runtime, action_id)
            assert action.next_attempt_at is not None
            gaps.append(action.next_attempt_at - clock.now())
            clock.set(action.next_attempt_at)
    assert gaps == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]


def test_400_fails_and_is_not_retried(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime)
    with control_plane([400]) as cp:
        runner = _runner(runtime, cp.url)
        [result] = runner.run_pending()
        clock.advance(timedelta(days=2))
        assert runner.run_pending() == []
        assert len(cp.requests) == 1
    assert not result.retryable
    action = _action(runtime, action_id)
    assert action.status == "failed"
    assert action.next_attempt_at is None
    assert "HTTP 400" in (action.error or "")
    assert "not retried" in (action.error or "")
    assert _service(runtime).status == "active"


@pytest.mark.parametrize("status", [409, 429])
def test_409_and_429_are_retried(runtime: Runtime, status: int) -> None:
    seed_inventory(runtime)
    _approved(runtime)
    with control_plane([status, 200]) as cp:
        [result] = _runner(runtime, cp.url).run_pending()
    assert result.ok, result.detail
    assert len(cp.requests) == 2


def test_connection_refused_is_retriable(runtime: Runtime) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime)
    [result] = _runner(runtime, f"http://127.0.0.1:{free_port()}/actions", attempts=2).run_pending()
    assert not result.ok
    assert result.retryable
    assert "ConnectError" in result.detail
    action = _action(runtime, action_id)
    assert action.status == "failed"
    assert action.next_attempt_at is not None


def test_dry_run_sends_nothing_and_says_what_it_would_send(runtime: Runtime) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime)
    with runtime.sessions() as s, s.begin():
        row = s.get(ActionRow, action_id)
        assert row is not None
        row.dry_run = True
    with control_plane([200]) as cp:
        [result] = _runner(runtime, cp.url).run_pending()
        assert cp.requests == []
    assert result.ok
    assert result.response["dry_run"] is True
    assert json.loads(result.response["body"])["action"] == "suspend-service"
    assert result.response["headers"]["Idempotency-Key"] == _action(runtime, action_id).idempotency_key
    assert _service(runtime).status == "active"


def test_reinstate_undoes_both_restrictions(runtime: Runtime, people: People) -> None:
    seed_inventory(runtime)
    ref, _ = _approved(runtime, "suspend-service")
    with control_plane([200]) as cp:
        runner = _runner(runtime, cp.url)
        runner.run_pending()
        assert _service(runtime).status == "suspended"
        CaseService(runtime).propose(ref, "reinstate", by=people["alice"], reason="customer removed the scanner")
        [result] = runner.run_pending()
        assert result.ok, result.detail
    svc = _service(runtime)
    assert (svc.status, svc.data_access) == ("active", "enabled")


def test_nothing_is_done_twice_by_concurrent_runners(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    ids = [_approved(runtime, key=f"ip:192.0.2.{30 + i}")[1] for i in range(8)]
    with control_plane([200]) as cp:
        runners = [_runner(runtime, cp.url) for _ in range(4)]
        results: list[list[object]] = [[] for _ in runners]
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                results[i].extend(runners[i].run_pending())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        clock.advance(timedelta(days=1))
        assert runners[0].run_pending() == []  # done stays done
    keys = [r.headers["idempotency-key"] for r in cp.requests]
    assert len(keys) == len(set(keys)) == 8
    assert sum(len(r) for r in results) == 8
    assert all(_action(runtime, i).status == "done" for i in ids)


def test_adapter_refuses_without_url_or_secret() -> None:
    req = ActionRequest("a", "k", "suspend-service", "c")
    assert "webhook.url" in ControlPlaneWebhookAction().apply(req).detail
    no_secret = ControlPlaneWebhookAction(ControlPlaneWebhookAction.Params(url="http://127.0.0.1:9/"))
    res = no_secret.apply(req)
    assert not res.ok
    assert "webhook.secret" in res.detail


def test_timeout_is_retried_with_the_same_key(runtime: Runtime) -> None:
    seed_inventory(runtime)
    _, action_id = _approved(runtime)
    adapter = ControlPlaneWebhookAction(
        ControlPlaneWebhookAction.Params(url="", secret=SECRET, timeout=0.3, max_attempts=3, backoff_base=0.01)
    )
    with control_plane([0, 200]) as cp:
        adapter.params.url = cp.url
        [result] = ActionRunner(runtime, {"suspend-service": adapter}).run_pending()
        assert result.ok, result.detail
        assert len(cp.requests) == 2
    assert {r.headers["idempotency-key"] for r in cp.requests} == {_action(runtime, action_id).idempotency_key}
