"""The detector interface: a batch in, Findings out; window state is an explicit object.

A detector never keeps hidden state between calls: ``new_state`` makes the state, ``detect`` takes and updates it,
``flush`` hands on the windows that closed, ``finalize`` flushes what is left at the end of a stream. The state is
checkpointed between batches (``dump_state``/``load_state``) by ``detectors/runner.py``, so one detector can run
partitioned on several workers, each with the state of its own partition, and a restart keeps open windows
(pySigma's validate/finalize split is the model).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.records import Event, Finding, Severity


class ClauseMap(Protocol):
    """What a detector needs from the policy: which clauses a kind falls under, and its default severity."""

    def clauses_for_kind(self, kind: str) -> tuple[str, ...]: ...

    def severity_for_kind(self, kind: str) -> Severity: ...


class Detector(ABC):
    """Base of every detector. Subclasses set ``name`` and implement ``detect``."""

    name: ClassVar[str]
    #: whether this detector's open windows may still turn an event of the batch into a finding later (None:
    #: whenever it is stateful); the detect stage leaves such events out of triage
    holds_events: ClassVar[bool | None] = None
    #: the partitions (detect stage partition keys) this detector reads; None: every partition. A stateful
    #: detector of one kind of event (signups) names its partition, so no state is kept for the others.
    partitions: ClassVar[frozenset[str] | None] = None

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, policy: ClauseMap, params: BaseModel | None = None) -> None:
        self.policy = policy
        self.params = params if params is not None else self.Params()

    def bind(self, rt: Any) -> None:  # noqa: B027 - an optional hook: most detectors need nothing
        """Called once with the Runtime by the detector runner: a detector that reads stores (the robots store)
        keeps what it needs here. Most need nothing."""

    def reads(self, partition: str) -> bool:
        return self.partitions is None or partition in self.partitions

    def new_state(self) -> Any:
        """Window state for one partition; None for a stateless detector."""
        return None

    @abstractmethod
    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        """Findings for this batch (empty means clean)."""

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        """Findings of the windows in ``state`` that closed before ``watermark`` (the newest event time the
        partition has seen); they leave the state. Called after every batch."""
        return []

    def finalize(self, state: Any = None) -> list[Finding]:
        """Findings still held in ``state`` at the end of a stream."""
        return []

    def dump_state(self, state: Any) -> dict[str, Any]:
        """``state`` as JSON-able data, to be checkpointed with the stage's progress (a dict is kept as is)."""
        if isinstance(state, dict):
            return state
        raise TypeError(f"detector {self.name}: override dump_state/load_state for a state of {type(state).__name__}")

    def load_state(self, data: dict[str, Any]) -> Any:
        """The state that :meth:`dump_state` wrote."""
        return data
