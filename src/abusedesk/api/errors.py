"""One error handler for the whole API: the domain error tree → HTTP status, in one JSON shape.

Every error response is ``{"ok": false, "error": "<sentence>", "errors": [...], "status": <code>}``; the status
code comes from the error class (``AbuseDeskError.status``: ParseError 422, InputRejected 413, NotFound 404,
Conflict 409, Forbidden 403, RateLimited 429 (with Retry-After), ConfigError 400, SourceError 502/503,
ActionError 502). Request validation errors are 422 with one entry per field in ``errors``. Anything unexpected
is a 500 that says no more than that.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from abusedesk.domain.errors import AbuseDeskError, ConfigError, RateLimited

log = logging.getLogger(__name__)


def error_body(status: int, error: str, errors: list[Any] | None = None) -> dict[str, Any]:
    """The one JSON shape of an error response."""
    return {"ok": False, "error": error, "errors": errors or [], "status": status}


def error_response(status: int, error: str, errors: list[Any] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, error, errors), status_code=status)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AbuseDeskError)
    errors: list[Any] = []
    if isinstance(exc, ConfigError):
        errors = [e.message for e in exc.errors]
    response = error_response(exc.status, exc.message, errors)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "?", "message": "invalid"}
    return error_response(422, f"request field '{first['field']}': {first['message']}", errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AbuseDeskError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
