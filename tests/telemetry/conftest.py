from __future__ import annotations

from pathlib import Path

import pytest

from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.inventory.service import InventoryService
from abusedesk.runtime import Runtime
from tests.telemetry.lab import detector_settings, write_inventory


@pytest.fixture
def lab_rt(runtime: Runtime, settings: Settings, clock: ManualClock, tmp_path: Path) -> Runtime:
    """The test database with the lab's inventory, Null notice backends and the provider's range configured."""
    InventoryService(runtime).import_file(write_inventory(tmp_path / "lab-inventory.json"))
    s = settings.model_copy(
        update={"notify_backend": "null", "control_backend": "null", "detectors": detector_settings()}
    )
    return Runtime(s, clock=clock, engine=runtime.engine)
