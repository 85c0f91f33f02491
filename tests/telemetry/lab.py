"""The lab's inventory: who had which address in the corpus recording and in the namespace tests.

Customer sources 10.99.0.10–.18 are one service each (the scenario labels of ../shared/corpus/flows/labels.csv);
10.99.1.0/24 (the victim) is the provider's own range, a service of the provider's; 10.99.2.0/24 is outside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SERVICES = {
    "10.99.0.10": "svc-benign",
    "10.99.0.11": "svc-vscan",
    "10.99.0.12": "svc-hscan",
    "10.99.0.13": "svc-synflood",
    "10.99.0.14": "svc-ssh",
    "10.99.0.15": "svc-rdp",
    "10.99.0.16": "svc-smtp",
    "10.99.0.17": "svc-load",
    "10.99.0.18": "svc-udpflood",
}
PROVIDER_RANGE = "10.99.1.0/24"

#: scenario → (service, the detector that must flag it)
EXPECTED = {
    "vscan": ("svc-vscan", "vertical_scan"),
    "hscan": ("svc-hscan", "horizontal_scan"),
    "synflood": ("svc-synflood", "flood"),
    "udpflood": ("svc-udpflood", "flood"),
    "ssh_brute": ("svc-ssh", "bruteforce"),
    "rdp_brute": ("svc-rdp", "bruteforce"),
    "smtp_spam": ("svc-smtp", "smtp_burst"),
    "loadtest": ("svc-load", "load_test"),
}


def inventory(valid_from: str = "2020-01-01T00:00:00Z") -> dict[str, list[dict[str, Any]]]:
    services = [{"id": s, "project_id": "prj-lab", "kind": "vm", "name": s, "hostnames": []} for s in SERVICES.values()]
    services.append({"id": "svc-provider", "project_id": "prj-provider", "kind": "api", "name": "api", "hostnames": []})
    allocations = [{"prefix": f"{ip}/32", "service_id": s, "valid_from": valid_from, "valid_to": ""}
                   for ip, s in SERVICES.items()]  # fmt: skip
    allocations.append(
        {"prefix": PROVIDER_RANGE, "service_id": "svc-provider", "valid_from": valid_from, "valid_to": ""}
    )
    return {
        "customers": [{"id": "cus-lab", "name": "Lab Customer", "contact_email": "abuse@example.com"},
                      {"id": "cus-provider", "name": "The Provider", "contact_email": "noc@example.net"}],
        "projects": [{"id": "prj-lab", "customer_id": "cus-lab", "name": "lab"},
                     {"id": "prj-provider", "customer_id": "cus-provider", "name": "infra"}],
        "services": services,
        "accounts": [],
        "allocations": allocations,
    }  # fmt: skip


def write_inventory(path: Path) -> Path:
    path.write_text(json.dumps(inventory(), indent=1))
    return path


def detector_settings() -> dict[str, dict[str, Any]]:
    return {"load_test": {"provider_ranges": [PROVIDER_RANGE]}}
