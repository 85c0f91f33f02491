"""One error handler for the whole API: the domain error tree → HTTP status, as RFC 9457 problem details.

Every error response is ``application/problem+json``::

    {"type": "urn:abusedesk:problem:conflict", "title": "Conflict", "status": 409,
     "detail": "<what, where, likely cause>", "instance": "/api/v1/cases/AD-…", "errors": [...]}

The status comes from the error class (``AbuseDeskError.status``: ParseError 422, InputRejected 413, NotFound 404,
Conflict 409, PreconditionFailed 412, PreconditionRequired 428, Forbidden 403, Unauthenticated 401 (with
``WWW-Authenticate: Bearer``), RateLimited 429 (with Retry-After), ConfigError 400, SourceError 502/503,
ActionError 502). Request validation errors are 422 with one entry per field in ``errors``. Anything unexpected is
a 500 that says no more than that.

A browser's request for a page (a path not under ``/api/`` whose ``Accept`` names ``text/html``, or an htmx
request) gets the same status and message as HTML, from the renderer the web package puts on
``app.state.render_problem`` (web/errors.py); everything else gets problem+json.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from abusedesk.domain.errors import AbuseDeskError, ConfigError, RateLimited, Unauthenticated

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: str, errors: list[Any] | None = None, instance: str = "") -> dict[str, Any]:
    """The one JSON shape of an error response (RFC 9457 plus ``errors``)."""
    slug = _title(status).lower().replace(" ", "-").replace("'", "")
    return {
        "type": f"urn:abusedesk:problem:{slug}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "errors": errors or [],
    }


def problem_response(
    status: int, detail: str, errors: list[Any] | None = None, instance: str = "", headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, errors, instance), status_code=status, media_type=PROBLEM, headers=headers
    )


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a scraper or script)."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "") or bool(request.headers.get("hx-request"))


def _answer(
    request: Request, status: int, detail: str, errors: list[Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Problem JSON for the API; an HTML page for a page request when the web package is mounted."""
    page = getattr(request.app.state, "render_problem", None)
    if page is not None and wants_page(request):
        response: Response = page(request, status, detail, headers)
        return response
    return problem_response(status, detail, errors, request.url.path, headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AbuseDeskError)
    errors: list[Any] = []
    if isinstance(exc, ConfigError):
        errors = [e.message for e in exc.errors]
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="abusedesk"'
    return _answer(request, exc.status, exc.message, errors, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "?", "message": "invalid"}
    return _answer(request, 422, f"request field '{first['field']}': {first['message']}", errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return _answer(request, exc.status_code, str(exc.detail), headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _answer(request, 500, f"internal error ({type(exc).__name__}); see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AbuseDeskError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
