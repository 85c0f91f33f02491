"""Intake routes: ``POST /api/v1/reports`` (XARF v4, raw mail, web form) and ``GET /api/v1/reports/{reference}``.

A body over ``intake.max_input_bytes`` is refused with 413: by its Content-Length before anything is read, and
while streaming when no length was given, so an oversized upload never sits in memory whole. A new report
answers 202; a re-sent one (the same content from the same reporter: for XARF the same document, for mail the
same message once the header fields added in transit are set aside) 200 with the first one's reference and
``duplicate: true``. A XARF ``report_id`` the same reporter already used for other content is refused with 409
(Conflict, naming the earlier reference); a mail with an earlier Message-ID and other content is a new report,
``related_to`` the earlier one. One client submitting too fast gets 429 with ``Retry-After``
(``abusedesk.api.ratelimit``), before its body is read.

A report's status is for its submitter and staff only: the answer to a submission carries ``status_token``, which
``GET /api/v1/reports/{reference}`` takes in ``X-Report-Token``; a staff Bearer token reads any report. Anyone
else gets 404, as for a reference that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from abusedesk.api.auth import MaybeCaller, identities
from abusedesk.api.deps import app_service, runtime_of
from abusedesk.api.ratelimit import SubmissionLimiter
from abusedesk.domain.errors import InputRejected, NotFound
from abusedesk.domain.identity import Can
from abusedesk.domain.numbers import ascii_uint
from abusedesk.intake.channels import MailDoor
from abusedesk.intake.http import HttpIntake, report_status
from abusedesk.intake.reporters import reference_of
from abusedesk.intake.service import IntakeService

router = APIRouter(prefix="/api/v1", tags=["intake"])


def _intake(request: Request) -> HttpIntake:
    return app_service(request, "http_intake", lambda rt: HttpIntake(MailDoor(IntakeService(rt))))


def _limiter(request: Request) -> SubmissionLimiter:
    return app_service(request, "submission_limiter", SubmissionLimiter)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with InputRejected (413) as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if (ascii_uint(declared) or 0) > limit:
        raise InputRejected(
            f"request body of {declared} bytes is over the limit of {limit} bytes "
            "(setting intake.max_input_bytes); it was not stored"
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise InputRejected(
                f"request body is over the limit of {limit} bytes (setting intake.max_input_bytes); it was not stored"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/reports",
    status_code=202,
    responses={
        200: {"description": "a re-sent report (the same content from the same reporter)"},
        409: {"description": "a XARF report_id this reporter already used for other content"},
    },
)
async def submit_report(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Submit a report; the answer carries the reference and where to poll its status."""
    rt = runtime_of(request)
    peer = request.client.host if request.client else None
    limiter = _limiter(request)
    # the peer as uvicorn hands it over: proxy headers are believed only from intake.api_trusted_proxies
    await run_in_threadpool(limiter.check, limiter.client(peer))
    body = await read_limited(request, rt.settings.intake.max_input_bytes)
    submission = await run_in_threadpool(
        _intake(request).submit, body, request.headers.get("content-type", ""), peer=peer
    )
    receipt = submission.receipt
    background.add_task(rt.drain_soon)
    content: dict[str, Any] = {
        "ok": True,
        "reference": receipt.reference,
        "status_url": str(request.url_for("get_report", reference=receipt.reference)),
        "duplicate": receipt.duplicate,
        "format": submission.kind,
    }
    content["status_token"] = identities(request).report_token(receipt.reference)
    if receipt.related_to:
        content["related_to"] = reference_of(receipt.related_to)
    if receipt.ack is not None:
        content["acknowledged"] = receipt.ack.sent
    return JSONResponse(content, status_code=200 if receipt.duplicate else 202, background=background)


@router.get("/reports/{reference}", name="get_report")
def get_report(
    request: Request,
    reference: str,
    by: MaybeCaller,
    report_token: Annotated[str | None, Header(alias="X-Report-Token")] = None,
) -> dict[str, Any]:
    """What became of a report: stored, parsed or quarantined; events; case references; the report it relates to.
    For its submitter (``X-Report-Token`` from the submission's answer) and staff (Bearer) only."""
    allowed = (by is not None and by.is_staff and by.can(Can.REPORT_READ)) or identities(request).is_report_token(
        reference, report_token
    )
    if not allowed:
        raise NotFound(
            f"report {reference!r} does not exist, or is not yours: send the status_token of its submission as "
            "X-Report-Token"
        )
    return {"ok": True, **report_status(runtime_of(request), reference)}
