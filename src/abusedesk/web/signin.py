"""Sign-in (password, then a TOTP code where one is owed), sign-out, ``/`` and ``/account``.

The sign-in form is protected against login CSRF (a site signing a victim into the attacker's account) by a
double submit: ``GET /signin`` sets a random nonce in an HttpOnly cookie scoped to ``/signin`` and puts its HMAC
under the server's key in the form; ``POST /signin`` accepts only the pair. Attempts are limited per client address
and per user name (``web.signin_burst``, ``web.signin_per_minute``) before any password is hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from abusedesk.api.auth import identities
from abusedesk.api.deps import runtime_of
from abusedesk.domain.errors import Conflict, RateLimited, Unauthenticated
from abusedesk.domain.identity import Principal
from abusedesk.identity.service import fold_name
from abusedesk.identity.sessions import FULL, PASSWORD, WebSession
from abusedesk.web.auth import (
    clear_session_cookie,
    client_of,
    csrf_checked,
    current_session,
    page_user,
    redirect,
    safe_next,
    set_session_cookie,
    signin_limiter,
    web_sessions,
)
from abusedesk.web.nav import home
from abusedesk.web.templating import render

router = APIRouter(include_in_schema=False)

SIGNIN_COOKIE = "abusedesk_signin"


def _form_token(request: Request, nonce: str) -> str:
    return identities(request).digest("signin-form:" + nonce)


def _limit(request: Request, name: str) -> None:
    limiter = signin_limiter(request)
    limiter.check(limiter.client(client_of(request)))
    limiter.check("u:" + hashlib.sha256(fold_name(name).encode()).hexdigest()[:40])


def _signin_page(request: Request, next_path: str, *, error: str = "", status: int = 200, name: str = "") -> Response:
    nonce = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request, "signin.html", status, next_path=next_path, error=error, name=name,
        signin_token=_form_token(request, nonce),
    )  # fmt: skip
    response.set_cookie(SIGNIN_COOKIE, nonce, path="/signin", httponly=True, samesite="strict", max_age=3600)
    return response


@router.get("/signin")
def signin_form(
    request: Request, session: Annotated[WebSession | None, Depends(current_session)], next: str = "/"
) -> Response:
    target = safe_next(next)
    if session is not None and session.is_full:
        return RedirectResponse(target, status_code=303)
    return _signin_page(request, target)


@router.post("/signin")
def signin(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=2000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if not nonce or not hmac.compare_digest(csrf_token.encode(), _form_token(request, nonce).encode()):
        return _signin_page(request, target, status=403, name=name, error="The form expired; sign in again.")
    try:
        _limit(request, name)
        session = web_sessions(request).sign_in(
            name, password, client=client_of(request), user_agent=request.headers.get("user-agent", ""),
            replacing=request.cookies.get("abusedesk_session"),
        )  # fmt: skip
    except RateLimited as exc:
        response = _signin_page(request, target, status=429, name=name, error=exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except (Unauthenticated, Conflict) as exc:
        return _signin_page(request, target, status=exc.status, name=name, error=exc.message)
    where = target if session.level == FULL else "/signin/totp?next=" + quote(target, safe="/")
    response = RedirectResponse(where, status_code=303)
    set_session_cookie(request, response, session)
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


def _pending(session: WebSession | None) -> bool:
    return session is not None and session.level == PASSWORD


@router.get("/signin/totp")
def totp_form(
    request: Request, session: Annotated[WebSession | None, Depends(current_session)], next: str = "/"
) -> Response:
    if not _pending(session):
        return RedirectResponse("/signin?next=" + quote(safe_next(next), safe="/"), status_code=303)
    return render(request, "totp.html", next_path=safe_next(next), error="")


@router.post("/signin/totp")
def totp(
    request: Request,
    session: Annotated[WebSession, Depends(csrf_checked)],
    code: Annotated[str, Form(max_length=20)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    if not _pending(session):
        return RedirectResponse("/signin?next=" + quote(target, safe="/"), status_code=303)
    try:
        _limit(request, session.principal.name)
        full = web_sessions(request).second_factor(session.token, code)
    except RateLimited as exc:
        refused = render(request, "totp.html", 429, next_path=target, error=exc.message)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except Unauthenticated as exc:
        return render(request, "totp.html", 401, next_path=target, error=exc.message)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, full)
    return response


@router.post("/signout")
def signout(request: Request, session: Annotated[WebSession, Depends(csrf_checked)]) -> Response:
    web_sessions(request).sign_out(session.token)
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/")
def index(request: Request, session: Annotated[WebSession | None, Depends(current_session)]) -> Response:
    if session is None or not session.is_full:
        return RedirectResponse("/signin", status_code=303)
    return redirect(request, home(session.principal))


@router.get("/account")
def account(request: Request, user: Annotated[Principal, Depends(page_user())]) -> Response:
    session = getattr(request.state, "web_session", None)
    settings = runtime_of(request).settings.web
    return render(request, "account.html", session=session, idle_minutes=settings.session_idle_minutes)
