"""Screening routes: ``POST /api/v1/screen/signup``, called by the provider's signup flow (issue 14).

The answer is the address's verdict (``ok | disposable | invalid | review``, the rule, the matched domain, the
lists and their versions): a few dict look-ups, no DNS unless ``screening.mx_check`` is on. With ``record`` (the
default) the signup is also stored at the door and handed to the pipeline, where the ``signup`` detector judges
it against suspended customers and farms (clause 1.10); the answer then carries the input's ``reference``.

The caller authenticates with an API token whose role may ``signup.screen``: the ``integration`` role made for the
signup flow (``abusedesk user add signup-flow --role integration``, ``abusedesk token create signup-flow``), or an
admin. Without a token the answer is 401, with another role's 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from abusedesk.api.auth import Caller
from abusedesk.api.deps import app_service, runtime_of
from abusedesk.domain.ipnet import normalise_ip
from abusedesk.domain.timeutil import as_utc, iso
from abusedesk.intake.reporters import reference_of
from abusedesk.screening.service import ScreeningService, SignupService

router = APIRouter(prefix="/api/v1/screen", tags=["screening"])


class SignupRequest(BaseModel):
    """One signup as the signup flow knows it; only ``email`` is required (docs/reference/screening.md)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="The address the account is to be registered with.")
    time: datetime | None = Field(None, description="When the signup happened (with a zone); default now.")
    account_id: str | None = Field(None, max_length=1000)
    customer_id: str | None = Field(None, max_length=1000, description="The new account's customer, for its case.")
    ip: str | None = Field(None, max_length=64, description="The address the signup came from.")
    device: str | None = Field(None, max_length=1000, description="A device fingerprint.")
    user_agent: str | None = Field(None, max_length=1000)
    country: str | None = Field(None, max_length=1000)
    name: str | None = Field(None, max_length=1000)
    record: bool = Field(True, description="Also store the signup for the pipeline (circumvention, cases).")

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        return normalise_ip(value) if value else None

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("the time needs a zone (Z or +hh:mm)")
        return value


@router.post("/signup")
async def screen_signup(body: SignupRequest, request: Request, background: BackgroundTasks, by: Caller) -> JSONResponse:
    """Screen a signup's address; with ``record`` also hand the signup to the pipeline."""
    rt = runtime_of(request)
    screening = ScreeningService(rt)
    if rt.settings.screening.mx_check:
        verdict = await run_in_threadpool(screening.screen_for, by, body.email)
    else:
        verdict = screening.screen_for(by, body.email)
    content: dict[str, Any] = {"ok": True, **verdict.to_dict(), "recorded": None}
    if body.record:
        record = body.model_dump(exclude={"record", "time"}, exclude_none=True)
        record["type"] = "signup"
        record["time"] = iso(as_utc(body.time) if body.time else rt.clock.now())
        accepted = await run_in_threadpool(app_service(request, "signup_service", SignupService).record, [record])
        content["recorded"] = {"reference": reference_of(accepted.raw.id), "duplicate": accepted.duplicate}
        background.add_task(rt.drain_soon)
    return JSONResponse(content, background=background)
