"""Findings, cases, their transitions, actions, notices and notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from abusedesk.store.base import Base


class FindingRow(Base):
    __tablename__ = "findings"
    # every reader asks for one case's findings, often by window: one index serves them all (each index more is
    # paid on every one of the millions of inserted findings). The dashboard counts the findings of its last
    # 7/30/90 days by created_at: on PostgreSQL a BRIN index (findings arrive in created_at order; a BRIN is a few
    # pages and next to free on insert) bounds that read to the window's block ranges
    __table_args__ = (
        Index("ix_findings_case_window", "case_id", "window_end"),
        Index("ix_findings_created_brin", "created_at", postgresql_using="brin"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    detector: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(40))
    clauses: Mapped[list[Any]] = mapped_column(default=list)
    group_key: Mapped[str] = mapped_column(String(300))
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    severity: Mapped[str] = mapped_column(String(10))
    confidence: Mapped[float] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    subject_ip: Mapped[str | None] = mapped_column(String(45))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    service_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CaseRow(Base):
    """A case: findings of one customer, service, clause and group key, driven to an end (domain/casestate.py).

    ``case_key`` is the hash of (customer, service, clause, group key); ``open_key`` equals it while the case is
    open and is NULL once it ended, so the unique constraint allows one open case per key even with several
    engine workers. ``notified_at`` is when the request to cease (or first notice) went out; the scheduler
    compares finding windows against it.
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_key", "customer_id", "service_id", "clause", "group_key"),
        # the case list (API, console): newest change first, cursor (updated_at, id), by state or customer
        Index("ix_cases_updated", "updated_at", "id"),
        Index("ix_cases_state_updated", "state", "updated_at", "id"),
        Index("ix_cases_customer_updated", "customer_id", "updated_at", "id"),
        # the console's queue sorted by age (oldest first) and by deadline (soonest first), cursor (column, id)
        Index("ix_cases_opened", "opened_at", "id"),
        Index("ix_cases_deadline_id", "deadline", "id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    case_key: Mapped[str] = mapped_column(String(40), index=True)
    open_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    base_severity: Mapped[str] = mapped_column(String(10))
    notified_at: Mapped[datetime | None] = mapped_column()
    customer_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    service_id: Mapped[str | None] = mapped_column(String(64))
    clause: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(40))
    group_key: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    policy_version: Mapped[str] = mapped_column(String(80))
    opened_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    deadline: Mapped[datetime | None] = mapped_column()
    last_finding_at: Mapped[datetime | None] = mapped_column()
    finding_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic locking
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's documented spelling


class CaseTransitionRow(Base):
    __tablename__ = "case_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    # declared so that one flush inserts a new case before the rows that refer to it (the unit of work orders
    # mappers by their relationships); never loaded: ``lazy="raise"``
    case: Mapped[CaseRow] = relationship(lazy="raise")
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column()


class ActionRow(Base):
    """An action for a case. status: proposed → approved → pending → running → done | failed (retriable)."""

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("idempotency_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    # declared so that one flush inserts a new case before the rows that refer to it (the unit of work orders
    # mappers by their relationships); never loaded: ``lazy="raise"``
    case: Mapped[CaseRow] = relationship(lazy="raise")
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    proposed_by: Mapped[str] = mapped_column(String(120))
    approved_by: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class NoticeRow(Base):
    """One notice to a customer contact; findings of several cases may share one digest notice."""

    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    contact: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(30))  # notice | request-to-cease | reminder | digest
    case_ids: Mapped[list[Any]] = mapped_column(default=list)
    message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | sent | failed
    due_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class CaseNoteRow(Base):
    __tablename__ = "case_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    # declared so that one flush inserts a new case before the rows that refer to it (the unit of work orders
    # mappers by their relationships); never loaded: ``lazy="raise"``
    case: Mapped[CaseRow] = relationship(lazy="raise")
    author: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()


class CaseMessageRow(Base):
    """What the customer said on a case from the portal (or the API): ``acknowledge``, ``reply`` or ``appeal``.

    Staff and the customer both see these (unlike notes, which are the desk's own); each is audited."""

    __tablename__ = "case_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    # declared so that one flush orders the insert after its case; never loaded: ``lazy="raise"``
    case: Mapped[CaseRow] = relationship(lazy="raise")
    author: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()
