"""A small inventory on documentation addresses, as JSON and as CSV files, for the inventory tests."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

from abusedesk.inventory.importer import RECORD_TYPES

SAMPLE: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {"id": "cus-a", "name": "Example A Ltd", "contact_email": "abuse@example.com"},
        {"id": "cus-b", "name": "Example B GmbH", "contact_email": "noc@example.net"},
    ],
    "projects": [
        {"id": "prj-a", "customer_id": "cus-a", "name": "web"},
        {"id": "prj-b", "customer_id": "cus-b", "name": "mail"},
    ],
    "services": [
        {"id": "svc-a", "project_id": "prj-a", "kind": "vm", "name": "web-1",
         "hostnames": ["www.example.com", "api.example.com"]},
        {"id": "svc-b", "project_id": "prj-b", "kind": "vm", "name": "mx-1", "hostnames": []},
        {"id": "svc-lb", "project_id": "prj-a", "kind": "load-balancer", "name": "lb-1", "hostnames": []},
        {"id": "svc-v6", "project_id": "prj-b", "kind": "vm", "name": "v6-1", "hostnames": ["mx.example.net"]},
    ],
    "accounts": [
        {"id": "acc-a", "customer_id": "cus-a", "email": "owner@example.com", "created_at": "2025-01-01T00:00:00Z"},
    ],
    "allocations": [
        {"prefix": "203.0.113.0/24", "service_id": "svc-lb", "valid_from": "2026-01-01T00:00:00Z", "valid_to": ""},
        {"prefix": "203.0.113.0/28", "service_id": "svc-a", "valid_from": "2026-01-01T00:00:00Z",
         "valid_to": "2026-03-01T12:00:00Z"},
        {"prefix": "203.0.113.0/28", "service_id": "svc-b", "valid_from": "2026-03-01T12:00:00Z", "valid_to": ""},
        {"prefix": "203.0.113.7/32", "service_id": "svc-b", "valid_from": "2026-02-01T00:00:00Z",
         "valid_to": "2026-02-02T00:00:00Z"},
        {"prefix": "198.51.100.0/25", "service_id": "svc-a", "valid_from": "2025-06-01T00:00:00+02:00",
         "valid_to": "2025-12-01T00:00:00Z"},
        {"prefix": "2001:db8::/32", "service_id": "svc-v6", "valid_from": "2026-01-01T00:00:00Z", "valid_to": ""},
        {"prefix": "2001:db8:1::/48", "service_id": "svc-a", "valid_from": "2026-01-01T00:00:00Z", "valid_to": ""},
    ],
}  # fmt: skip


def sample() -> dict[str, list[dict[str, Any]]]:
    return copy.deepcopy(SAMPLE)


def write_json(path: Path, data: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(sample() if data is None else data, indent=1))
    return path


def csv_rows(kind: str, items: list[dict[str, Any]]) -> list[list[str]]:
    required, optional = RECORD_TYPES[kind]
    header = [*required, *optional]
    rows = [header]
    for item in items:
        rows.append([" ".join(v) if isinstance(v := item.get(h, ""), list) else str(v) for h in header])
    return rows


def write_csv_dir(directory: Path, data: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """One CSV per record type: customers.csv, projects.csv ... (the names are for people; headers decide)."""
    directory.mkdir(parents=True, exist_ok=True)
    for kind, items in (sample() if data is None else data).items():
        with (directory / f"{kind}.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows(csv_rows(kind, items))
    return directory
