"""The action runner's guarantees: failures keep their error and come back, crashes are recovered, nothing twice."""

from __future__ import annotations

import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select

from abusedesk.actions.base import ActionRequest, ActionResult, Adapter
from abusedesk.actions.runner import ActionRunner, backoff
from abusedesk.actions.webhook import ControlPlaneWebhookAction
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.clock import ManualClock
from abusedesk.evidence import audit
from abusedesk.plugins import BUILTIN_ADAPTERS, load_classes
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow
from tests.actions.support import SECRET, control_plane, seed_inventory
from tests.cases.support import finding
from tests.support.components import require_program
from tests.support.identities import people_of


class FlakyPluginAdapter(Adapter):
    """A third-party adapter with a bug: raises on its first ``fail`` calls, then works."""

    name = "flaky_plugin"
    kinds: ClassVar[tuple[str, ...]] = ("suspend-service",)

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail
        self.calls: list[str] = []

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        self.calls.append(request.idempotency_key)
        if len(self.calls) <= self.fail:
            raise RuntimeError("control plane client blew up")
        return ActionResult(True, "suspended")


def _approved(rt: Runtime, kind: str = "suspend-service") -> str:
    people = people_of(rt)
    CaseEngine(rt).ingest([finding(rt.policy, 0)])
    with rt.sessions() as s, s.begin():
        for a in s.scalars(select(ActionRow).where(ActionRow.status == "pending")):
            a.status = "done"  # the engine's own notice is not what these tests are about
        ref = s.scalars(select(CaseRow.ref)).one()
    svc = CaseService(rt)
    action_id = str(svc.propose(ref, kind, by=people["alice"], reason="no reaction to the request to cease")["id"])
    svc.approve(action_id, by=people["bob"])
    return action_id


def _action(rt: Runtime, action_id: str) -> ActionRow:
    with rt.sessions() as s:
        row = s.get(ActionRow, action_id)
        assert row is not None
        return row


def test_adapter_crash_leaves_the_action_failed_with_the_error_and_retriable(
    runtime: Runtime, clock: ManualClock
) -> None:
    seed_inventory(runtime)
    action_id = _approved(runtime)
    adapter = FlakyPluginAdapter(fail=1)
    runner = ActionRunner(runtime, {"suspend-service": adapter})
    [first] = runner.run_pending()
    assert not first.ok
    assert first.retryable
    row = _action(runtime, action_id)
    assert row.status == "failed"
    assert row.error == "adapter flaky_plugin crashed: RuntimeError: control plane client blew up"
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    [second] = runner.run_pending()
    assert second.ok
    assert runner.run_pending() == []
    assert adapter.calls == [row.idempotency_key] * 2
    row = _action(runtime, action_id)
    assert (row.status, row.attempts, row.error) == ("done", 2, None)
    with runtime.sessions() as s:
        entries = s.scalars(select(audit.AuditRow.action).where(audit.AuditRow.subject_id == action_id)).all()
        assert audit.verify(s).ok
    assert entries[-2:] == ["action.failed", "action.done"]


def test_retries_stop_after_max_attempts(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    action_id = _approved(runtime)
    adapter = FlakyPluginAdapter(fail=100)
    runner = ActionRunner(runtime, {"suspend-service": adapter}, max_attempts=3)
    for _ in range(5):
        runner.run_pending()
        clock.advance(timedelta(hours=7))
    row = _action(runtime, action_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert len(adapter.calls) == 3
    assert row.result["retryable"] is False


def test_runner_crash_mid_action_is_recovered_after_the_lease(runtime: Runtime, clock: ManualClock) -> None:
    """A runner that claimed an action and died: the action is run again once the lease ran out, same key."""
    seed_inventory(runtime)
    action_id = _approved(runtime)
    with control_plane([200]) as cp:
        adapter = ControlPlaneWebhookAction(ControlPlaneWebhookAction.Params(url=cp.url, secret=SECRET))
        runner = ActionRunner(runtime, {"suspend-service": adapter})
        [claimed] = runner.claim(clock.now())  # ... and the process dies here
        assert claimed.id == action_id
        assert _action(runtime, action_id).status == "running"
        assert runner.run_pending() == []  # still leased
        clock.advance(timedelta(minutes=10))
        [result] = runner.run_pending()
        assert result.ok, result.detail
        [request] = cp.requests
    row = _action(runtime, action_id)
    assert (row.status, row.attempts) == ("done", 2)
    assert request.headers["idempotency-key"] == row.idempotency_key


def test_no_adapter_for_a_kind_fails_and_says_so(runtime: Runtime) -> None:
    seed_inventory(runtime)
    action_id = _approved(runtime)
    [result] = ActionRunner(runtime, {}).run_pending()
    assert not result.ok
    assert "no adapter carries out action kind 'suspend-service'" in result.detail
    assert _action(runtime, action_id).next_attempt_at is None


def test_report_officials_writes_a_checkable_bundle(runtime: Runtime) -> None:
    seed_inventory(runtime)
    action_id = _approved(runtime, "report-officials")
    [result] = ActionRunner(runtime).run_pending()
    assert result.ok, result.detail
    path = Path(result.response["path"])
    assert path.parent == runtime.settings.data_dir / "exports"
    out = path.parent / "unpacked"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(out)
    proc = subprocess.run(
        [require_program("sha256sum"), "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
    assert _action(runtime, action_id).result["external_ref"] == result.external_ref


def test_backoff_doubles_up_to_the_cap() -> None:
    base, cap = timedelta(minutes=1), timedelta(minutes=10)
    assert [backoff(n, base, cap) for n in (1, 2, 3, 4, 5)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 10)]


def test_builtin_adapters_load_with_unique_names_and_kinds() -> None:
    classes = load_classes(BUILTIN_ADAPTERS, "abusedesk.adapters", Adapter)
    names = [c.name for c in classes]
    assert len(names) == len(set(names)) == len(BUILTIN_ADAPTERS)
    assert all(c.kinds and c.__doc__ for c in classes)
