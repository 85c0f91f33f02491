"""Raw inputs (content-addressed; the bytes live in the raw store), parsed events, reporters, IMAP cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class RawInputRow(Base):
    """One input as received. status: stored → parsed | quarantined (→ discarded, by an analyst, with a reason).

    ``id`` is the SHA-256 of the bytes (``blob``), except for the rare second input with the very same bytes from
    another reporter, whose id is derived from both (``service.derived_raw_id``). ``content_key`` (unique) is what
    makes a re-sent report a duplicate: the same reporter and the same canonical content (``intake.contentkey``).
    ``related_to`` links a new input to the first one with its ``report_ref`` (the same Message-ID or XARF
    ``report_id`` with other content).
    """

    __tablename__ = "raw_inputs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob: Mapped[str] = mapped_column(String(64))  # SHA-256 of the bytes: their name in the raw store
    content_key: Mapped[str] = mapped_column(String(64), unique=True)  # reporter + canonical content, hashed
    size: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="stored", index=True)
    parser: Mapped[str | None] = mapped_column(String(60))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    issues: Mapped[list[Any]] = mapped_column(default=list)
    reporter: Mapped[str | None] = mapped_column(String(320), index=True)
    report_ref: Mapped[str | None] = mapped_column(String(200), index=True)  # external id (XARF report_id ...)
    related_to: Mapped[str | None] = mapped_column(ForeignKey("raw_inputs.id"), index=True)  # first same-ref input
    parsed_at: Mapped[datetime | None] = mapped_column()
    # events of this input already committed and handed on by a parse that was cut into chunks (a large feed);
    # a parse resumed after a crash skips them. 0 once the parse is complete.
    parse_progress: Mapped[int] = mapped_column(Integer, default=0)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "customer_id", "service_id", "kind"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    raw_id: Mapped[str | None] = mapped_column(ForeignKey("raw_inputs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    time: Mapped[datetime] = mapped_column(index=True)
    feed: Mapped[str] = mapped_column(String(80))
    reporter: Mapped[str | None] = mapped_column(String(320))
    source_ip: Mapped[str | None] = mapped_column(String(45), index=True)
    source_url: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    customer_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    service_id: Mapped[str | None] = mapped_column(String(64))
    disposition: Mapped[str] = mapped_column(
        String(20), default="new"
    )  # new | attributed | not-ours | triage | signup | promoted
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the whole event in catalogue names


class ReporterRow(Base):
    """An outside reporter (by address): acknowledgement rate limit and accuracy over time."""

    __tablename__ = "reporters"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    reports: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_cases: Mapped[int] = mapped_column(Integer, default=0)
    dismissed_cases: Mapped[int] = mapped_column(Integer, default=0)
    acks_window_start: Mapped[datetime | None] = mapped_column()
    acks_in_window: Mapped[int] = mapped_column(Integer, default=0)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)


class ImapCursorRow(Base):
    """Where the IMAP poller is in one mailbox: the UIDVALIDITY it read under and the highest UID it took in.

    UIDs only mean something within one UIDVALIDITY; when the server announces another, the poller starts again
    from UID 1 (the raw store recognises what it already has). Both are 32-bit unsigned in IMAP, hence BigInteger.
    """

    __tablename__ = "imap_cursors"
    mailbox: Mapped[str] = mapped_column(String(512), primary_key=True)  # user@host:port/mailbox
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column()


class ApiRateBucketRow(Base):
    """One client's token bucket for ``POST /api/v1/reports``, shared by every ``serve`` process (issue 10).

    ``tokens`` left at ``at`` (Unix seconds, from the runtime's clock); refilled on read.
    """

    __tablename__ = "api_rate_buckets"
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float, index=True)


class ReplyWindowRow(Base):
    """Replies sent to one destination domain in the current hour (``intake.ack_per_domain_per_hour``)."""

    __tablename__ = "reply_windows"
    destination: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    sent: Mapped[int] = mapped_column(Integer, default=0)
