"""Notices to customer contacts: batching actions into digests, and composing the e-mail.

**Batching.** A notice action (``notify``, ``request-to-cease``, ``renotify``) does not send mail itself: it is
put into the one *queued* notice of the customer's contact (a new one if there is none), and that notice is due at
``now + min(policy.digest_interval, policy.max_notice_delay(severity))``. Later actions for the same contact join
the queued notice and can only bring its due time *forward*, so 500 findings in an hour make one digest, while a
critical case (delay 0) makes the notice due at once and never waits behind a digest.

**Composing** happens once, when the dispatcher claims a due notice: subject, body (``templates/notice.txt.j2``,
and its HTML twin ``notice.html.j2`` as the second part of a multipart/alternative message) and Message-ID are
written to the notice row before any byte goes out, so a retry sends the very same message. Each finding is shown
with its technical facts and each case with advice for its kind (``actions/advice.py``); reporters are named only
when they agreed (``notices.disclose_reporters``).

**Deadlines count from delivery.** A request to cease carries the time the playbook allows (``deadline_s``); the
deadline written in the notice is the moment it is composed (right before the first delivery attempt) plus that
time, and when the notice is delivered the case's deadline becomes delivery plus that time, never earlier than
the one written (``actions/runner.py``).

**Threading.** The first notice that mentions a case is the root of that case's thread; every later notice about
the case carries ``In-Reply-To`` and ``References`` with the root's Message-ID. ``Reply-To`` is
``<local>+<case ref>@<domain>`` (from ``settings.notify_from``) so replies land on the case.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from abusedesk.actions import advice
from abusedesk.domain.errors import NotFound
from abusedesk.domain.ids import stable_id
from abusedesk.domain.mailtext import MAIL_POLICY, body_cte
from abusedesk.domain.timeutil import iso
from abusedesk.policy.model import ClauseRole, Policy
from abusedesk.store.tables.cases import ActionRow, CaseRow, NoticeRow

NOTICE_KIND = {"notify": "notice", "request-to-cease": "request-to-cease", "renotify": "reminder"}
_HEADINGS = {"notify": "notice of a policy breach", "request-to-cease": "request to cease", "renotify": "reminder"}
_KIND_RANK = {"notice": 0, "reminder": 1, "request-to-cease": 2}

_env = Environment(
    loader=PackageLoader("abusedesk.actions", "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def notice_due(policy: Policy, severity: str, now: datetime, delay_s: int | None = None) -> datetime:
    """When a notice for a case at ``severity`` must go out at the latest, counted from ``now``."""
    limit = timedelta(seconds=delay_s) if delay_s is not None else policy.max_notice_delay(severity)
    return now + min(policy.digest_interval, limit)


def enqueue(
    session: Session,
    action: ActionRow,
    case: CaseRow,
    *,
    contact: str,
    policy: Policy,
    now: datetime,
) -> NoticeRow:
    """Put ``action`` into its contact's queued notice (creating it); returns the notice. Caller commits."""
    due = notice_due(policy, case.severity, now, action.payload.get("max_notice_delay_s"))
    kind = NOTICE_KIND[action.kind]
    query = (
        select(NoticeRow)
        .where(NoticeRow.contact == contact, NoticeRow.status == "queued")
        .order_by(NoticeRow.due_at)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    notice = session.scalars(query).first()
    if notice is None:
        notice = NoticeRow(
            id=stable_id("nt", contact, action.id),
            customer_id=case.customer_id,
            contact=contact,
            kind=kind,
            case_ids=[case.id],
            status="queued",
            due_at=due,
            attempts=0,
            subject="",
            body="",
        )
        session.add(notice)
        session.flush()
        return notice
    if case.id not in notice.case_ids:
        notice.case_ids = [*notice.case_ids, case.id]
    if due < notice.due_at:
        notice.due_at = due
    if len(notice.case_ids) > 1:
        notice.kind = "digest"
    elif _KIND_RANK.get(kind, 0) > _KIND_RANK.get(notice.kind, 0):
        notice.kind = kind
    return notice


@dataclass(frozen=True, slots=True)
class Composed:
    subject: str
    body: str
    message_id: str
    html: str
    reply_to: str
    in_reply_to: str | None
    references: tuple[str, ...]


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise NotFound(f"setting notify_from {address!r} is not an e-mail address (local@domain)")
    return local, domain


def reply_address(notify_from: str, ref: str) -> str:
    """``abuse+AD-1234@provider.example``: replies land on the case (subaddressing, RFC 5233)."""
    local, domain = split_address(notify_from)
    return f"{local}+{ref}@{domain}"


def message_id_for(notice_id: str, notify_from: str) -> str:
    """Decided before sending and kept across retries: a resend is recognisably the same message."""
    return f"<{notice_id}@{split_address(notify_from)[1]}>"


def notice_actions(session: Session, notice: NoticeRow) -> list[ActionRow]:
    """The notice actions this notice carries (``result.notice_id``), oldest first."""
    if not notice.case_ids:
        return []
    rows = session.scalars(
        select(ActionRow)
        .where(ActionRow.case_id.in_(list(notice.case_ids)), ActionRow.kind.in_(list(NOTICE_KIND)))
        .order_by(ActionRow.created_at, ActionRow.id)
    ).all()
    return [r for r in rows if (r.result or {}).get("notice_id") == notice.id]


def thread_roots(session: Session, notice: NoticeRow) -> dict[str, str]:
    """case id → Message-ID of the first earlier notice that mentioned it (sent or being sent)."""
    wanted = set(notice.case_ids)
    roots: dict[str, str] = {}
    earlier = session.scalars(
        select(NoticeRow)
        .where(
            NoticeRow.contact == notice.contact,
            NoticeRow.id != notice.id,
            NoticeRow.message_id.is_not(None),
            NoticeRow.status.in_(("sent", "sending")),
        )
        .order_by(NoticeRow.sent_at, NoticeRow.due_at, NoticeRow.id)
    ).all()
    for row in earlier:
        for cid in row.case_ids:
            if cid in wanted and cid not in roots and row.message_id:
                roots[cid] = row.message_id
    return roots


def _clause_bits(policy: Policy, clause_id: str | None, fallback_title: str = "") -> tuple[str, str, str]:
    if not clause_id:
        return "", fallback_title, ""
    try:
        c = policy.clause(clause_id)
    except NotFound:
        return clause_id, fallback_title or clause_id, ""
    return c.id, c.title, " ".join(c.summary.split())


def _role(policy: Policy, role: ClauseRole) -> tuple[str, str, str]:
    try:
        c = policy.clause_for_role(role)
    except NotFound:
        return "", "", ""
    return c.id, c.title, " ".join(c.summary.split())


def compose(
    session: Session,
    notice: NoticeRow,
    *,
    policy: Policy,
    notify_from: str,
    now: datetime,
    disclose_reporters: tuple[str, ...] | list[str] = (),
) -> Composed:
    """Subject, body and threading headers of ``notice`` from its cases and their latest notice actions."""
    actions = notice_actions(session, notice)
    cases = {c.id: c for c in session.scalars(select(CaseRow).where(CaseRow.id.in_(list(notice.case_ids))))}
    latest: dict[str, ActionRow] = {}
    kinds: dict[str, set[str]] = {}
    for a in actions:
        latest[a.case_id] = a
        kinds.setdefault(a.case_id, set()).add(a.kind)
    duty = _role(policy, ClauseRole.DUTY_TO_CEASE)
    rights = _role(policy, ClauseRole.ENFORCEMENT_RIGHTS)
    items: list[dict[str, Any]] = []
    for cid in notice.case_ids:
        case = cases.get(cid)
        if case is None:
            continue
        last = latest.get(cid)
        p: dict[str, Any] = dict(last.payload) if last is not None else {}
        case_kinds = kinds.get(cid, {"notify"})
        rtc = "request-to-cease" in case_kinds
        main = "request-to-cease" if rtc else ("renotify" if "renotify" in case_kinds else "notify")
        cid_, title, summary = _clause_bits(policy, p.get("clause") or case.clause, p.get("clause_title", ""))
        deadline = p.get("deadline") or (iso(case.deadline) if case.deadline else None)
        if rtc and p.get("deadline_s"):
            deadline = iso(deadline_from(now, int(p["deadline_s"])))
        findings = list(p.get("findings", []))
        families = [advice.family(f.get("kind") or case.kind, f.get("facts")) for f in findings] or [
            advice.family(case.kind)
        ]
        items.append(
            {
                "ref": case.ref,
                "heading": _HEADINGS[main],
                "clause": cid_,
                "clause_title": title,
                "clause_summary": summary,
                "finding_count": int(p.get("finding_count") or case.finding_count or len(p.get("findings", []))),
                "findings": [advice.view_finding(f, disclose_reporters) for f in findings],
                "title": advice.FAMILY_TITLES.get(families[0], case.kind),
                "advice": advice.advice_for(families),
                "deadline_s": int(p["deadline_s"]) if rtc and p.get("deadline_s") else None,
                "subject": f"{case.kind} ({case.group_key})",
                "service_id": case.service_id,
                "project_id": case.project_id,
                "request_to_cease": rtc,
                "reminder": main == "renotify",
                "deadline": deadline,
                "duty_clause": duty[0],
                "duty_title": duty[1],
                "duty_summary": duty[2],
                "rights_clause": rights[0] or "3",
                "reply_to": reply_address(notify_from, case.ref),
            }
        )
    if not items:
        raise NotFound(f"notice {notice.id} names no case that exists (case ids {notice.case_ids})")
    refs = ", ".join(it["ref"] for it in items)
    provider = split_address(notify_from)[1]
    context = {"items": items, "provider": provider, "policy_version": policy.version, "refs": refs}
    body = wrap_text(_env.get_template("notice.txt.j2").render(context))
    html = _env.get_template("notice.html.j2").render(context)
    if len(items) == 1:
        it = items[0]
        subject = f"[{it['ref']}] {it['heading'].capitalize()}: Acceptable Use Policy clause {it['clause']}"
        if it["request_to_cease"] and it["deadline"]:
            subject += f", cease by {it['deadline']}"
        reply_to = it["reply_to"]
    else:
        shown = ", ".join(it["ref"] for it in items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
        urgent = " (includes a request to cease)" if any(it["request_to_cease"] for it in items) else ""
        subject = f"[abuse digest] {len(items)} cases about your services: {shown}{urgent}"
        reply_to = notify_from
    roots = thread_roots(session, notice)
    references = tuple(dict.fromkeys(roots[c] for c in notice.case_ids if c in roots))
    return Composed(
        subject=subject,
        body=body,
        html=html,
        message_id=notice.message_id or message_id_for(notice.id, notify_from),
        reply_to=reply_to,
        in_reply_to=references[0] if references else None,
        references=references,
    )


def wrap_text(text: str, width: int = 76) -> str:
    """Wrap long lines at ``width``, keeping each line's indent (and a list item's hanging indent)."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line.rstrip())
            continue
        indent = line[: len(line) - len(line.lstrip())]
        hanging = indent + ("  " if line.lstrip().startswith("- ") else "")
        out.append(
            textwrap.fill(line.strip(), width, initial_indent=indent, subsequent_indent=hanging, break_on_hyphens=False)
        )
    return "\n".join(out).strip("\n") + "\n"


def build_message(notice: NoticeRow, composed: Composed, *, notify_from: str, date: datetime) -> EmailMessage:
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = notify_from
    msg["To"] = notice.contact
    msg["Subject"] = composed.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = composed.message_id
    msg["Reply-To"] = composed.reply_to
    if composed.in_reply_to:
        msg["In-Reply-To"] = composed.in_reply_to
        msg["References"] = " ".join(composed.references)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Abusedesk-Notice"] = notice.id
    msg["X-Abusedesk-Cases"] = " ".join(notice.case_ids)
    msg.set_content(composed.body, cte=body_cte(composed.body))
    msg.add_alternative(composed.html, subtype="html", cte=body_cte(composed.html))
    return msg


def deadline_from(delivered: datetime, allowed_s: int) -> datetime:
    """The deadline of a request to cease delivered at ``delivered`` that allows ``allowed_s`` seconds."""
    return (delivered + timedelta(seconds=allowed_s)).replace(microsecond=0)


def hours(seconds: int) -> str:
    """``72 hours``, ``1 hour``, ``30 minutes``: the time a request to cease allows, in words."""
    if seconds % 3600 == 0:
        n = seconds // 3600
        return f"{n} hour{'s' if n != 1 else ''}"
    n = max(1, seconds // 60)
    return f"{n} minute{'s' if n != 1 else ''}"


_env.filters["hours"] = hours
