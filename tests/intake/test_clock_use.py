"""The intake reads the time from the runtime clock only, so tests and the demo can drive it (issue 4).

A wall-clock read (``datetime.now(...)``, ``utcnow()``, ``date.today()``) anywhere in ``abusedesk.intake`` would
give one input two notions of "now": the web form's dry parse used ``datetime.now(UTC)`` while the door recorded
the runtime clock's time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import abusedesk.intake

INTAKE = Path(abusedesk.intake.__file__).resolve().parent
_WALL_CLOCK = {"now", "utcnow", "today"}


def wall_clock_reads(source: str, filename: str) -> list[str]:
    """``file:line`` of every call that reads the wall clock instead of ``<...>.clock.now()``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _WALL_CLOCK:
            receiver = func.value
            if isinstance(receiver, ast.Attribute) and receiver.attr == "clock":
                continue  # self.rt.clock.now(), rt.clock.now()
            found.append(f"{filename}:{node.lineno}")
        elif isinstance(func, ast.Name) and func.id == "utcnow":
            found.append(f"{filename}:{node.lineno}")
    return found


def test_intake_reads_only_the_runtime_clock() -> None:
    found = [hit for path in sorted(INTAKE.glob("*.py")) for hit in wall_clock_reads(path.read_text(), path.name)]
    assert found == []


def test_the_check_sees_a_wall_clock_read() -> None:
    """The check can fail: the web form's old dry parse is found, the runtime clock is not."""
    old = "from datetime import UTC, datetime\nraw = RawInput(received_at=datetime.now(UTC))\n"
    assert wall_clock_reads(old, "http.py") == ["http.py:2"]
    assert wall_clock_reads("from abusedesk.domain.timeutil import utcnow\nt = utcnow()\n", "x.py") == ["x.py:2"]
    assert wall_clock_reads("when = self.rt.clock.now()\n", "http.py") == []
