"""The adapter interface: carry out one Action and say how it went; idempotent per idempotency key."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What to do: ``kind`` (notify, suspend-service, disable-data-access, reinstate, report), for which case."""

    action_id: str
    idempotency_key: str
    kind: str
    case_id: str
    customer_id: str | None = None
    service_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    detail: str = ""
    retryable: bool = False
    external_ref: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    action_id: str | None = None  # set by the runner / dispatcher: which action (or notice) this is the result of


class Adapter(ABC):
    """Base of every adapter. ``apply`` must be safe to call twice with the same idempotency key."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ()

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        """Carry out the action (or, with ``dry_run``, say what would be done without doing it)."""
