"""What every router takes from the app: the Runtime, and services built once per app and kept on its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from abusedesk.runtime import Runtime

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def app_service(request: Request, name: str, build: Callable[[Runtime], T]) -> T:
    """``app.state.<name>``, built from the Runtime on first use (one per app, shared by its requests)."""
    state: Any = request.app.state
    service = getattr(state, name, None)
    if service is None:
        service = build(runtime_of(request))
        setattr(state, name, service)
    return service  # type: ignore[no-any-return]
