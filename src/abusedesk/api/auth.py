"""Who calls: ``Authorization: Bearer TOKEN`` → :class:`Principal` (one HMAC and one indexed lookup per request).

Routes declare ``by: Caller`` (a token is required: 401 without one) or ``by: MaybeCaller`` (public routes that
say more to a known caller). The OpenAPI document names the scheme (``bearerAuth``), so Swagger UI's
"Authorize" button sends the header.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from abusedesk.domain.errors import Unauthenticated
from abusedesk.domain.identity import Principal
from abusedesk.identity.service import TOKEN_PREFIX, IdentityService
from abusedesk.runtime import Runtime

bearer = HTTPBearer(scheme_name="bearerAuth", auto_error=False, description="An API token: `abusedesk token create`")


def identities(request: Request) -> IdentityService:
    state = request.app.state
    if getattr(state, "identities", None) is None:
        state.identities = IdentityService(state.rt)
    service: IdentityService = state.identities
    return service


async def _check(request: Request, token: str) -> Principal:
    """A token checked recently is answered on the event loop (no I/O); otherwise the database is asked from a
    worker thread, so the loop never waits on it."""
    service = identities(request)
    known = service.cached(token) if token.startswith(TOKEN_PREFIX) else None
    if known is not None:
        return known
    return await run_in_threadpool(service.authenticate, token)


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None:
        raise Unauthenticated("this route needs an API token: Authorization: Bearer TOKEN")
    return await _check(request, credentials.credentials)


async def maybe_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    if credentials is None:
        return None
    return await _check(request, credentials.credentials)


Caller = Annotated[Principal, Depends(principal)]
MaybeCaller = Annotated[Principal | None, Depends(maybe_principal)]


async def runtime(request: Request) -> Runtime:
    """The app's Runtime (``async``: FastAPI would run a plain function in a worker thread, a hop per request)."""
    rt: Runtime = request.app.state.rt
    return rt


RT = Annotated[Runtime, Depends(runtime)]
