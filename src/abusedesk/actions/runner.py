"""Running actions: ``ActionRunner`` carries out pending actions, ``NoticeDispatcher`` sends due notices.

**Claiming.** ``run_pending`` selects actions that are ``pending``, or ``failed`` and retriable with
``next_attempt_at`` passed, or ``running`` with an expired lease (a runner crashed mid-way). It claims each with
one conditional UPDATE (status and attempts must still be what it read; on PostgreSQL the SELECT also takes
``FOR UPDATE SKIP LOCKED``), so two runners never run the same action. A ``done`` action is never selected
again, and the idempotency key is unique per action, so nothing is done twice by us; the adapters pass the key on
(the webhook's ``Idempotency-Key``) so a re-run after a crash is also harmless at the far end.

**Outcome.** Success: ``done`` with the adapter's result, and for control actions the inventory (service status,
data access) and the case state change in the same transaction. Failure: ``failed`` with the error; retriable
failures get ``next_attempt_at = now + min(base·2^(attempts-1), cap)`` until ``max_attempts``, permanent ones
none (an analyst re-queues them). Every outcome writes an audit entry.

**Notices.** Notice actions are batched (``actions/notices.py``): the runner only files the action into its
contact's queued notice. ``NoticeDispatcher.send_due`` then sends notices whose time has come. To be safe
against a crash between the SMTP server's 250 and our commit, a notice is first committed as ``sending`` with its
Message-ID fixed and its exact bytes stored as evidence; only then is it sent. A crash in that window leaves it
``sending``; when its lease runs out it is sent again, byte for byte the same, with the same Message-ID. That
is the one at-least-once edge (the recipient may get the same message twice, recognisable as such); nothing is
ever lost, and a notice marked ``sent`` is never sent again.
"""

from __future__ import annotations

import email.policy
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from abusedesk.actions import notices
from abusedesk.actions.base import ActionRequest, ActionResult, Adapter
from abusedesk.actions.export import ReportOfficialsAction
from abusedesk.actions.smtp import EmailNotifyAction
from abusedesk.actions.webhook import ControlPlaneWebhookAction
from abusedesk.domain.actions import CATALOGUE, AdapterFamily
from abusedesk.domain.errors import AbuseDeskError, ConfigError, Conflict, NotFound
from abusedesk.domain.identity import ACTIONS
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import audit
from abusedesk.evidence.blobs import EvidenceStore, link_to_case, store_evidence
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, NoticeRow
from abusedesk.store.tables.evidence import EvidenceRow
from abusedesk.store.tables.inventory import CustomerRow, ServiceRow

log = logging.getLogger(__name__)

ACTOR = ACTIONS.id
#: setting value -> adapter plugin name, for each adapter family of the action catalogue
BACKENDS: dict[AdapterFamily, dict[str, str]] = {
    AdapterFamily.NOTIFY: {"smtp": "email_notify", "console": "notify_console", "null": "notify_null"},
    AdapterFamily.CONTROL: {"webhook": "control_plane_webhook", "console": "control_console", "null": "control_null"},
    AdapterFamily.OFFICIALS: {"bundle": "report_officials_bundle"},
}


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Delay before attempt ``attempts + 1``: base, 2·base, 4·base ... at most ``cap``."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, cap)


def _build(cls: type[Adapter], rt: Runtime) -> Adapter:
    if cls is EmailNotifyAction:
        return EmailNotifyAction.from_settings(rt.settings.smtp)
    if cls is ControlPlaneWebhookAction:
        return ControlPlaneWebhookAction.from_settings(rt.settings.webhook)
    if cls is ReportOfficialsAction:
        return ReportOfficialsAction(runtime=rt)
    return cls()


def default_adapters(rt: Runtime) -> dict[str, Adapter]:
    """kind → adapter: for each action of the catalogue, the adapter (from the plugin registry) that the setting
    of its family names (``notify_backend``, ``control_backend``); ConfigError if that adapter lacks the kind."""
    from abusedesk.plugins import adapter_classes

    s = rt.settings
    chosen = {
        AdapterFamily.NOTIFY: s.notify_backend,
        AdapterFamily.CONTROL: s.control_backend,
        AdapterFamily.OFFICIALS: "bundle",
    }
    classes = {cls.name: cls for cls in adapter_classes()}
    built: dict[AdapterFamily, Adapter] = {
        family: _build(classes[BACKENDS[family][backend]], rt) for family, backend in chosen.items()
    }
    out: dict[str, Adapter] = {}
    for kind, spec in CATALOGUE.items():
        adapter = built[spec.adapter]
        if kind not in adapter.kinds:
            raise ConfigError(f"adapter {adapter.name} does not carry out action {kind!r} (its kinds: {adapter.kinds})")
        out[kind] = adapter
    return out


def _request(row: ActionRow, case: CaseRow | None) -> ActionRequest:
    p = dict(row.payload or {})
    return ActionRequest(
        action_id=row.id,
        idempotency_key=row.idempotency_key,
        kind=row.kind,
        case_id=row.case_id,
        customer_id=p.get("customer_id") or (case.customer_id if case else None),
        service_id=p.get("service_id") or (case.service_id if case else None),
        payload=p,
    )


class ActionRunner:
    """Carries out pending actions through their adapters; see the module docstring for the guarantees."""

    def __init__(
        self,
        rt: Runtime,
        adapters: Mapping[str, Adapter] | None = None,
        *,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=10),
        max_attempts: int = 8,
        backoff_base: timedelta = timedelta(minutes=1),
        backoff_cap: timedelta = timedelta(hours=6),
    ) -> None:
        self.rt = rt
        self.adapters = dict(adapters) if adapters is not None else default_adapters(rt)
        self.batch, self.lease, self.max_attempts = batch, lease, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap

    # --- claiming

    def claim(self, now: datetime) -> list[ActionRow]:
        """Move up to ``batch`` runnable actions to ``running`` (attempts + 1) in one transaction."""
        with self.rt.sessions() as session, session.begin():
            query = (
                select(ActionRow)
                .where(
                    or_(
                        ActionRow.status == "pending",
                        (ActionRow.status.in_(("failed", "running")))
                        & ActionRow.next_attempt_at.is_not(None)
                        & (ActionRow.next_attempt_at <= now),
                    )
                )
                .order_by(ActionRow.created_at, ActionRow.id)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed: list[ActionRow] = []
            for row in session.scalars(query).all():
                res = session.execute(
                    update(ActionRow)
                    .where(
                        ActionRow.id == row.id,
                        ActionRow.status == row.status,
                        ActionRow.attempts == row.attempts,
                    )
                    .values(
                        status="running",
                        attempts=row.attempts + 1,
                        next_attempt_at=now + self.lease,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(res, "rowcount", 0) == 1:
                    claimed.append(row)
            for row in claimed:
                session.refresh(row)
            return claimed

    # --- running

    def run_pending(self, now: datetime | None = None) -> list[ActionResult]:
        """Claim and carry out every runnable action; one result per action (``action_id`` set)."""
        now = now or self.rt.clock.now()
        out: list[ActionResult] = []
        while True:
            claimed = self.claim(now)
            if not claimed:
                return out
            for row in claimed:
                out.append(self._run_one(row, now))
            if len(claimed) < self.batch:
                return out

    def _run_one(self, row: ActionRow, now: datetime) -> ActionResult:
        if row.kind in notices.NOTICE_KIND:
            return self._file_notice(row, now)
        adapter = self.adapters.get(row.kind)
        if adapter is None:
            result = ActionResult(False, f"no adapter carries out action kind {row.kind!r} (action {row.id})")
            return self._finish(row, result, now)
        with self.rt.sessions() as session:
            case = session.get(CaseRow, row.case_id)
            request = _request(row, case)
        try:
            result = adapter.apply(request, dry_run=row.dry_run)
        except AbuseDeskError as exc:
            result = ActionResult(False, exc.message, retryable=getattr(exc, "retryable", True))
        except Exception as exc:  # an adapter bug must not kill the runner; the action keeps the error
            log.exception("adapter %s crashed on action %s", adapter.name, row.id)
            result = ActionResult(False, f"adapter {adapter.name} crashed: {type(exc).__name__}: {exc}", retryable=True)
        return self._finish(row, result, now)

    def _file_notice(self, row: ActionRow, now: datetime) -> ActionResult:
        policy = self.rt.policy
        with self.rt.sessions() as session, session.begin():
            case = session.get(CaseRow, row.case_id)
            contact = _contact(session, row, case)
            if case is None or contact is None:
                who = case.customer_id if case else None
                detail = (
                    f"case {row.case_id} of action {row.id} does not exist"
                    if case is None
                    else f"customer {who!r} of case {case.ref} has no contact e-mail (customers.contact_email); "
                    "add one to the inventory and re-queue the action"
                )
                result = ActionResult(False, detail, retryable=False, action_id=row.id)
                self._record(session, row, result, now)
                return result
            live = session.get(ActionRow, row.id)
            assert live is not None
            if row.dry_run:
                due = notices.notice_due(policy, case.severity, now, live.payload.get("max_notice_delay_s"))
                result = ActionResult(
                    True,
                    f"dry run: would file {row.kind} for case {case.ref} into the notice to {contact}, due by "
                    f"{due.isoformat()}",
                    response={"contact": contact, "due_by": due.isoformat()},
                    action_id=row.id,
                )
                self._record(session, row, result, now)
                return result
            notice = notices.enqueue(session, live, case, contact=contact, policy=policy, now=now)
            result = ActionResult(
                True,
                f"filed into notice {notice.id} to {contact}, due {notice.due_at.isoformat()}",
                external_ref=notice.id,
                response={"notice_id": notice.id, "contact": contact, "due_at": notice.due_at.isoformat()},
                action_id=row.id,
            )
            self._record(session, row, result, now)
            return result

    def _finish(self, row: ActionRow, result: ActionResult, now: datetime) -> ActionResult:
        result = ActionResult(
            result.ok, result.detail, result.retryable, result.external_ref, result.response, action_id=row.id
        )
        with self.rt.sessions() as session, session.begin():
            self._record(session, row, result, now)
            if result.ok and not row.dry_run and row.kind in CATALOGUE:
                self._apply_effect(session, row, now)
        return result

    def _record(self, session: Session, row: ActionRow, result: ActionResult, now: datetime) -> None:
        live = session.get(ActionRow, row.id)
        if live is None:  # pragma: no cover - actions are never deleted
            raise NotFound(f"action {row.id} vanished while it ran")
        live.updated_at = now
        if result.ok:
            live.status = "done"
            live.error = None
            live.next_attempt_at = None
            live.result = {
                "detail": result.detail,
                "external_ref": result.external_ref,
                "dry_run": live.dry_run,
                **result.response,
            }
        else:
            live.status = "failed"
            live.error = result.detail
            retry = result.retryable and live.attempts < self.max_attempts
            live.next_attempt_at = now + backoff(live.attempts, self.backoff_base, self.backoff_cap) if retry else None
            live.result = {"detail": result.detail, "retryable": retry, **result.response}
        audit.append(
            session,
            at=now,
            actor=ACTOR,
            action="action.done" if result.ok else "action.failed",
            subject_type="action",
            subject_id=live.id,
            payload={
                "case": live.case_id,
                "kind": live.kind,
                "attempts": live.attempts,
                "key": live.idempotency_key,
                "dry_run": live.dry_run,
                "detail": result.detail,
                "next_attempt_at": iso(live.next_attempt_at) if live.next_attempt_at else None,
            },
        )
        # the object the caller holds shows the outcome too
        row.status, row.error, row.next_attempt_at, row.result = (
            live.status,
            live.error,
            live.next_attempt_at,
            live.result,
        )

    def _apply_effect(self, session: Session, row: ActionRow, now: datetime) -> None:
        """The inventory follows the control plane (the catalogue's ``effect``); the case moves to the state the
        action asserts (restricted, reported, reinstated), which only this may do."""
        effect = dict(CATALOGUE[row.kind].effect)
        case = session.get(CaseRow, row.case_id)
        service_id = (row.payload or {}).get("service_id") or (case.service_id if case else None)
        service = session.get(ServiceRow, service_id) if service_id and effect else None
        if service is not None:
            before = {"status": service.status, "data_access": service.data_access}
            for attr, value in effect.items():
                setattr(service, attr, value)
            audit.append(
                session,
                at=now,
                actor=ACTOR,
                action="service.updated",
                subject_type="service",
                subject_id=service.id,
                payload={"action": row.id, "kind": row.kind, "before": before, **effect},
            )
        if case is not None:
            _move_case(session, case, row, now)


def _move_case(session: Session, case: CaseRow, row: ActionRow, now: datetime) -> None:
    from abusedesk.cases import lifecycle

    target = CATALOGUE[row.kind].asserts
    if target is None or case.state == target.value:
        return
    try:
        lifecycle.transition(
            session,
            case,
            target,
            actor=ACTOR,
            reason=f"{row.kind} carried out (action {row.id}, approved by {row.approved_by or row.proposed_by})",
            at=now,
            carried_out=row.id,
        )
    except AbuseDeskError as exc:  # the lifecycle refuses: keep the action's outcome, say why the case stayed
        log.warning("case %s stays %s after %s: %s", case.ref, case.state, row.kind, exc.message)


def _contact(session: Session, row: ActionRow, case: CaseRow | None) -> str | None:
    explicit = (row.payload or {}).get("contact")
    if explicit:
        return str(explicit)
    if case is None or case.customer_id is None:
        return None
    customer = session.get(CustomerRow, case.customer_id)
    return customer.contact_email if customer is not None and customer.contact_email else None


class NoticeDispatcher:
    """Sends due notices through the notify adapter; see the module docstring for the crash-safety argument."""

    def __init__(
        self,
        rt: Runtime,
        adapter: Adapter | None = None,
        *,
        lease: timedelta = timedelta(minutes=10),
        max_attempts: int = 10,
        backoff_base: timedelta = timedelta(minutes=2),
        backoff_cap: timedelta = timedelta(hours=6),
    ) -> None:
        self.rt = rt
        self.adapter = adapter if adapter is not None else default_adapters(rt)["notify"]
        self.evidence = EvidenceStore(rt.settings.evidence_dir)
        self.lease, self.max_attempts = lease, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap

    def claim(self, now: datetime) -> list[tuple[NoticeRow, bytes]]:
        """Due notices → ``sending``, each with its message composed (first time) or loaded (retry)."""
        policy = self.rt.policy
        notify_from = self.rt.settings.notify_from
        out: list[tuple[NoticeRow, bytes]] = []
        with self.rt.sessions() as session, session.begin():
            query = (
                select(NoticeRow)
                .where(NoticeRow.status.in_(("queued", "failed", "sending")), NoticeRow.due_at <= now)
                .order_by(NoticeRow.due_at, NoticeRow.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for notice in session.scalars(query).all():
                if notice.status == "failed" and notice.attempts >= self.max_attempts:
                    continue
                if notice.message_id is None:
                    data = self._compose(session, notice, policy, notify_from, now)
                else:
                    data = self._stored_message(session, notice)
                notice.status = "sending"
                notice.attempts += 1
                notice.due_at = now + self.lease  # the lease: a crash leaves it to be re-sent after this
                out.append((notice, data))
        return out

    def _compose(self, session: Session, notice: NoticeRow, policy: Any, notify_from: str, now: datetime) -> bytes:
        composed = notices.compose(session, notice, policy=policy, notify_from=notify_from, now=now)
        message = notices.build_message(notice, composed, notify_from=notify_from, date=now)
        data = message.as_bytes(policy=email.policy.SMTP)  # CRLF line ends: the bytes as they go on the wire
        notice.subject, notice.body, notice.message_id = composed.subject, composed.body, composed.message_id
        stored = store_evidence(
            session,
            self.evidence,
            data,
            media_type="message/rfc822",
            collected_by=ACTOR,
            collected_at=now,
            origin=f"notice:{notice.id}",
            filename=f"notice-{notice.id}.eml",
            meta={"message_id": composed.message_id, "to": notice.contact},
        )
        for cid in notice.case_ids:
            link_to_case(session, cid, stored.sha256, at=now, actor=ACTOR)
        audit.append(
            session,
            at=now,
            actor=ACTOR,
            action="notice.composed",
            subject_type="notice",
            subject_id=notice.id,
            payload={
                "message_id": composed.message_id,
                "sha256": stored.sha256,
                "cases": list(notice.case_ids),
                "to": notice.contact,
                "kind": notice.kind,
            },
        )
        return data

    def _stored_message(self, session: Session, notice: NoticeRow) -> bytes:
        sha = session.scalar(select(EvidenceRow.sha256).where(EvidenceRow.origin == f"notice:{notice.id}").limit(1))
        if sha is None:
            raise NotFound(f"notice {notice.id} has Message-ID {notice.message_id} but its stored message is missing")
        return self.evidence.get(sha)

    def retry_now(self, notice_id: str, *, actor: str = ACTOR) -> None:
        """Make a failed notice due again at once (after an analyst fixed the cause), keeping its Message-ID."""
        now = self.rt.clock.now()
        with self.rt.sessions() as session, session.begin():
            notice = session.get(NoticeRow, notice_id)
            if notice is None:
                raise NotFound(f"notice {notice_id} does not exist")
            if notice.status != "failed":
                raise Conflict(f"notice {notice_id} is {notice.status}, not failed; nothing to retry")
            notice.due_at = now
            notice.attempts = min(notice.attempts, self.max_attempts - 1)
            audit.append(
                session,
                at=now,
                actor=actor,
                action="notice.retry",
                subject_type="notice",
                subject_id=notice.id,
                payload={"previous_error": notice.error},
            )

    def send_due(self, now: datetime | None = None) -> list[ActionResult]:
        """Send every notice due at ``now``; one result per notice (``action_id`` is the notice id)."""
        now = now or self.rt.clock.now()
        results = []
        for notice, data in self.claim(now):
            request = ActionRequest(
                action_id=notice.id,
                idempotency_key=notice.message_id or notice.id,
                kind=notice.kind,
                case_id=notice.case_ids[0] if notice.case_ids else "",
                customer_id=notice.customer_id,
                payload={
                    "to": notice.contact,
                    "from": self.rt.settings.notify_from,
                    "message": data,
                    "message_id": notice.message_id,
                },
            )
            try:
                result = self.adapter.apply(request)
            except Exception as exc:  # keep the notice and the error; never lose it to an adapter bug
                log.exception("notify adapter crashed on notice %s", notice.id)
                result = ActionResult(False, f"{type(exc).__name__}: {exc}", retryable=True)
            results.append(self._finish(notice, result, now))
        return results

    def _finish(self, notice: NoticeRow, result: ActionResult, now: datetime) -> ActionResult:
        with self.rt.sessions() as session, session.begin():
            live = session.get(NoticeRow, notice.id)
            assert live is not None
            if result.ok:
                live.status, live.sent_at, live.error = "sent", now, None
                for case in session.scalars(select(CaseRow).where(CaseRow.id.in_(list(live.case_ids)))):
                    if case.notified_at is None:
                        case.notified_at = now
            else:
                retry = result.retryable and live.attempts < self.max_attempts
                live.status, live.error = "failed", result.detail
                # due_at doubles as "next attempt at"; a permanent failure waits for an analyst (far future)
                live.due_at = now + (
                    backoff(live.attempts, self.backoff_base, self.backoff_cap) if retry else timedelta(days=36500)
                )
            audit.append(
                session,
                at=now,
                actor=ACTOR,
                action="notice.sent" if result.ok else "notice.failed",
                subject_type="notice",
                subject_id=live.id,
                payload={
                    "message_id": live.message_id,
                    "to": live.contact,
                    "cases": list(live.case_ids),
                    "attempts": live.attempts,
                    "detail": result.detail,
                    "next_attempt_at": None if result.ok else iso(live.due_at),
                },
            )
            notice.status, notice.error, notice.due_at = live.status, live.error, live.due_at
        return ActionResult(
            result.ok, result.detail, result.retryable, notice.message_id, result.response, action_id=notice.id
        )


class ActionsTicker:
    """The actions timer stage: run pending actions, then send the notices that are due."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.runner = ActionRunner(rt)
        self.dispatcher = NoticeDispatcher(rt)

    def tick(self) -> None:
        # actions first: a notice action files its notice, which may be due at once (critical clauses)
        now = self.rt.clock.now()
        self.runner.run_pending(now)
        self.dispatcher.send_due(now)
