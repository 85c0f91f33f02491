"""Who is looking at a page, and whether a form post is really theirs: the page dependencies.

- ``by: Annotated[Principal, Depends(page_user(Role.ANALYST, ...))]`` — the signed-in user (a full session: the
  second factor given where it is owed), or a 303 to ``/signin?next=<this page>`` (htmx requests get
  ``HX-Redirect`` instead); a user of another role gets a 403 page. ``page_user()`` with no role takes any
  signed-in user. A page can also ask for a capability: ``page_user(can=Can.TRIAGE_READ)``.
- ``dependencies=[Depends(csrf_checked)]`` on every route that changes something (every POST): the form field
  ``csrf_token`` or the header ``X-CSRF-Token`` (htmx sends it: ``base.html`` puts it in ``hx-headers``) must
  equal the session's synchroniser token, and a request whose ``Origin`` names another site is refused, before
  the route runs: 403.
- ``session_of(request)`` — the :class:`WebSession` (or None) the dependencies found.

The Principal is the one :class:`abusedesk.identity.sessions.WebSessionService` makes from the session row; pass it
to the same services the API and the CLI call (``CaseService(rt).note(ref, text, by=by)``), never a name.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from abusedesk.api.auth import identities
from abusedesk.api.deps import app_service, runtime_of
from abusedesk.api.ratelimit import ClientLimiter
from abusedesk.domain.errors import Forbidden, Unauthenticated
from abusedesk.domain.identity import Can, Principal, Role
from abusedesk.identity.sessions import FULL, WebSession, WebSessionService
from abusedesk.runtime import Runtime

SESSION_COOKIE = "abusedesk_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInRequired(Exception):
    """Raised by a page dependency without a full session: answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__(reason or "sign in first")
        self.next_path = next_path
        self.reason = reason


def web_sessions(request: Request) -> WebSessionService:
    return app_service(request, "web_sessions", lambda rt: WebSessionService(rt, identities(request)))


def signin_limiter(request: Request) -> ClientLimiter:
    def build(rt: Runtime) -> ClientLimiter:
        cfg = rt.settings.web
        return ClientLimiter(
            rt, rate=cfg.signin_per_minute / 60.0, burst=cfg.signin_burst,
            what="sign-in attempts", setting="web.signin_per_minute", namespace="signin:",
        )  # fmt: skip

    return app_service(request, "signin_limiter", build)


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def session_of(request: Request) -> WebSession | None:
    found: WebSession | None = getattr(request.state, "web_session", None)
    return found


def current_session(request: Request) -> WebSession | None:
    """The live session of the request's cookie (any level), or None; kept on ``request.state``."""
    if hasattr(request.state, "web_session"):
        return session_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    found: WebSession | None = None
    if token:
        service = web_sessions(request)
        for level in (FULL, "password"):
            try:
                found = service.authenticate(token, level=level)
                break
            except Unauthenticated:
                continue
    request.state.web_session = found
    return found


def this_page(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def page_user(*roles: Role, can: Can | None = None) -> Callable[..., Principal]:
    """A dependency: the signed-in Principal, if its role is one of ``roles`` (any, if none) and it ``can``."""
    wanted = frozenset(roles)

    def dependency(request: Request, session: Annotated[WebSession | None, Depends(current_session)]) -> Principal:
        if session is None or not session.is_full:
            raise SignInRequired(this_page(request))
        user = session.principal
        if wanted and user.role not in wanted:
            raise Forbidden(f"{user.name} is signed in as {user.role}; this page is for {', '.join(sorted(wanted))}")
        if can is not None:
            user.require(can)
        return user

    return dependency


async def csrf_checked(request: Request, session: Annotated[WebSession | None, Depends(current_session)]) -> WebSession:
    """403 unless the request carries this session's CSRF token and comes from this site (see the module text)."""
    check_origin(request)
    if session is None:
        raise SignInRequired(_referrer_path(request))
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden(
            "the form's security token is missing or stale (was the page open before you signed in again?); "
            "reload the page and send it again"
        )
    return session


def check_origin(request: Request) -> None:
    """A browser says where a post comes from (``Origin``); one from another site is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc.lower() != host.lower():
        raise Forbidden(f"this form was posted from {origin[:100]}, not from this site ({host}); refused")


def _referrer_path(request: Request) -> str:
    ref = request.headers.get("referer")
    return safe_next(urlsplit(ref).path if ref else "/")


def safe_next(value: str | None) -> str:
    """A path on this site to go to after sign-in ("/" for anything else: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n"):
        return "/"
    return value


def set_session_cookie(request: Request, response: Response, session: WebSession) -> None:
    secure = runtime_of(request).settings.web.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    hours = runtime_of(request).settings.web.session_absolute_hours
    response.set_cookie(
        SESSION_COOKIE, session.token, max_age=int(hours * 3600), path="/", httponly=True, samesite="lax",
        secure=secure,
    )  # fmt: skip


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def redirect(request: Request, path: str) -> Response:
    """303 to ``path``; for an htmx request, ``HX-Redirect`` (htmx would otherwise swap the page into a div)."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": path})
    return RedirectResponse(path, status_code=303)


def signin_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return redirect(request, "/signin?next=" + quote(safe_next(exc.next_path), safe="/"))
