"""The one stage table: every pipeline stage, the subject it reads and the class that handles it.

Both buses run exactly these handlers: the in-process bus (``abusedesk serve``, the intake commands, the demo)
drains them in one process; ``abusedesk worker --stage NAME`` runs one of them over NATS JetStream. The buses
know no stage by name: they are handed this table. Handlers are named by import path and imported only when a
stage is built, so a command that runs no stage pays for none of them (and a broken import stops the start-up of
a process that runs the stage, with its error).

=============  ======================  ==============================================  ============
stage          reads                   writes                                           partitioned
=============  ======================  ==============================================  ============
parse          ``raw.stored``          events; ``events.parsed`` (``weblog.stored``     no
                                       for an egress log, handed on whole)
attribute      ``events.parsed``       event attribution; ``events.attributed``         no
detect         ``events.attributed``   detector state; ``findings.new``                 by subject
replies        ``events.attributed``   "not ours" replies to reporters                  no
flows          ``telemetry.closed``    detector state; ``findings.new``; consented      no
                                       findings
weblog         ``weblog.stored``       detector state; ``findings.new``; the log's      no
                                       line issues (or its quarantine)
cases          ``findings.new``        findings, cases, actions, timeline               no
scheduler      (timer)                 case deadlines
actions        (timer)                 actions and notices
=============  ======================  ==============================================  ============
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from abusedesk.domain.errors import ConfigError

if TYPE_CHECKING:
    from abusedesk.bus.base import StageHandler
    from abusedesk.runtime import Runtime

RAW_STORED = "raw.stored"
EVENTS_PARSED = "events.parsed"
EVENTS_ATTRIBUTED = "events.attributed"
FINDINGS_NEW = "findings.new"
TELEMETRY_CLOSED = "telemetry.closed"
WEBLOG_STORED = "weblog.stored"


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage: ``handler`` is ``"module:Class"``, built with the Runtime; ``subject`` None for a timer stage."""

    name: str
    subject: str | None
    handler: str
    batch: int = 200
    #: at most this many events or findings in one batch (a large feed's messages carry thousands each)
    max_items: int = 5000
    partitioned: bool = False
    description: str = ""

    @property
    def is_timer(self) -> bool:
        return self.subject is None

    def build(self, rt: Runtime) -> Any:
        """The stage's handler over ``rt`` (a StageHandler for message stages, a Ticker for timer stages)."""
        module_name, _, class_name = self.handler.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, class_name)(rt)

    def build_handler(self, rt: Runtime) -> StageHandler:
        if self.is_timer:
            raise ConfigError(f"stage {self.name!r} is a timer stage; it has no message handler", field="stage")
        handler: StageHandler = self.build(rt)
        return handler


STAGES: tuple[StageSpec, ...] = (
    StageSpec("parse", RAW_STORED, "abusedesk.intake.service:ParseStage", batch=100,
              description="raw input → events, or quarantine"),
    StageSpec("attribute", EVENTS_PARSED, "abusedesk.pipeline:AttributeStage", batch=500,
              description="events → customer, project, service"),
    StageSpec("detect", EVENTS_ATTRIBUTED, "abusedesk.pipeline:DetectStage", batch=500, partitioned=True,
              description="events → findings (state per partition)"),
    StageSpec("replies", EVENTS_ATTRIBUTED, "abusedesk.intake.reporters:RepliesStage", batch=500,
              description="'not ours' replies to reporters"),
    StageSpec("flows", TELEMETRY_CLOSED, "abusedesk.telemetry.stage:FlowStage", batch=1, max_items=1,
              description="closed flow files → attribution → flow detectors → findings"),
    StageSpec("weblog", WEBLOG_STORED, "abusedesk.weblog.stage:WeblogStage", batch=1, max_items=1,
              description="stored egress logs → columns → attribution → crawler detectors → findings"),
    StageSpec("cases", FINDINGS_NEW, "abusedesk.cases.engine:CasesStage", batch=500,
              description="findings → cases and playbooks"),
    StageSpec("scheduler", None, "abusedesk.cases.scheduler:SchedulerTicker", description="case deadlines"),
    StageSpec("actions", None, "abusedesk.actions.runner:ActionsTicker", description="actions and notices"),
)  # fmt: skip


def stage(name: str) -> StageSpec:
    for spec in STAGES:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown stage {name!r}; choose one of {', '.join(s.name for s in STAGES)}", field="stage")


def message_stages() -> tuple[StageSpec, ...]:
    return tuple(s for s in STAGES if not s.is_timer)


def timer_stages() -> tuple[StageSpec, ...]:
    return tuple(s for s in STAGES if s.is_timer)


def routes(stages: tuple[StageSpec, ...] = STAGES) -> dict[str, tuple[str, ...]]:
    """subject → the stages that read it, in table order (what the in-process bus fans a message out to)."""
    out: dict[str, list[str]] = {}
    for spec in stages:
        if spec.subject is not None:
            out.setdefault(spec.subject, []).append(spec.name)
    return {k: tuple(v) for k, v in out.items()}
