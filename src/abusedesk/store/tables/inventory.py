"""Customers → projects → services → IP allocations (half-open validity intervals), and accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class CustomerRow(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default="active")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class ServiceRow(Base):
    __tablename__ = "services"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | suspended
    data_access: Mapped[str] = mapped_column(String(20), default="enabled")  # enabled | disabled
    hostnames: Mapped[list[Any]] = mapped_column(default=list)


class AccountRow(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime | None] = mapped_column()


class AllocationRow(Base):
    """One address prefix given to one service for ``[valid_from, valid_to)``; ``valid_to`` None = still open.

    ``first_hex``/``last_hex`` are the prefix's bounds as 32 hex digits in the shared 128-bit space (IPv4 mapped
    into ::ffff:0:0/96), so range queries sort correctly on every backend.
    """

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_bounds", "first_hex", "last_hex"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(64), index=True)
    first_hex: Mapped[str] = mapped_column(String(32))
    last_hex: Mapped[str] = mapped_column(String(32))
    prefixlen: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column()
    valid_to: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)


class InventoryImportRow(Base):
    """One inventory import: its counts, and (by its id) the generation other processes compare to rebuild their
    attribution index."""

    __tablename__ = "inventory_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
