"""WeblogParser: recognises an egress proxy's HTTP log (Squid, combined, JSON lines) and hands it on whole.

The file is a raw input like any other (stored first, quarantined if unreadable); ``abusedesk weblog file`` hands
it here by ``meta["parser"]`` with ``meta["weblog_format"]``, and a Squid or combined log is also recognised by
its first lines. A log is telemetry: it never becomes Events. The parse stage hands the stored input on to the
weblog stage (``hands_on``), which reads it in columns a chunk at a time (``weblog/stage.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers.base import Parser, Report
from abusedesk.stages import WEBLOG_STORED
from abusedesk.weblog.formats import _COMBINED, _SQUID, FORMATS

_SNIFF = {"squid": re.compile(_SQUID), "combined": re.compile(_COMBINED)}


def sniff_format(report: Report) -> str | None:
    """``squid`` or ``combined`` when the first non-empty lines of the input all read as that format."""
    lines = [line for line in report.head.decode("utf-8", "replace").splitlines()[:6] if line.strip()]
    if len(lines) > 1 and not report.head.endswith(b"\n"):
        lines = lines[:-1]  # the head may cut the last line
    for name, regex in _SNIFF.items():
        if lines and all(regex.match(line) for line in lines):
            return name
    return None


class WeblogParser(Parser):
    """Recognises egress HTTP logs: Squid native access.log (with the agent appended), combined, JSON lines.

    For: clause 1.14 (crawling) and 1.5 (mirroring). The input goes on whole to the weblog stage, which parses it
    in columns, attributes each client address and runs the crawler detectors; a line that does not parse is an
    issue named by its line number, and a file none of whose lines parse is quarantined there.
    False positives: none here (recognising is not judging).
    """

    name = "weblog"
    priority = 90  # after every report format: a log is recognised only when its lines say so
    hands_on: ClassVar[str | None] = WEBLOG_STORED

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        chunk_bytes: int = Field(
            16 * 2**20, ge=4096, description="Bytes of a log read and parsed together (bounds memory)."
        )

    def recognises(self, report: Report) -> bool:
        return report.raw.meta.get("weblog_format") in FORMATS or sniff_format(report) is not None

    def hand_on(self, report: Report) -> dict[str, Any]:
        """The log's format: the one the door was told, else the one its first lines show."""
        fmt = report.raw.meta.get("weblog_format") or sniff_format(report)
        if fmt not in FORMATS:
            raise ParseError("the input is not a Squid, combined or JSON-lines web log", parser=self.name)
        return {"format": str(fmt)}

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        """A log is read by the weblog stage, not as Events: the parse stage hands it on (``hands_on``)."""
        raise ParseError(f"a web log is read by the weblog stage ({self.hands_on}), not parsed into events",
                         parser=self.name)  # fmt: skip
        yield  # pragma: no cover - a generator, for the interface
