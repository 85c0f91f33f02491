"""The pages' Jinja2 environment and :func:`render`.

Templates live in ``web/templates/`` and extend ``base.html`` (blocks ``title`` and ``content``; ``head`` for a
page's own ``<link>`` or ``<meta>``). Autoescape is on for every template: a value is text unless a template
says ``|safe`` (none does for data). :func:`render` gives every template:

- ``request``; ``user`` (the signed-in :class:`Principal`, or None); ``csrf_token`` (the session's synchroniser
  token, "" before sign-in); ``nav`` (the entries of ``web/nav.py`` this user may use); ``static(path)``
  (a URL of a file under ``web/static/``); ``version``; ``fmt_time`` (a filter: ISO time as ``2026-03-01 10:00Z``).
- the macro module ``forms.html`` is imported by the templates that need ``csrf_field()``.

Responses carry a strict Content-Security-Policy (scripts and styles from our own origin only: htmx is vendored
under ``web/static/``), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: same-origin`` and, for a
signed-in user, ``Cache-Control: no-store`` (a shared machine's back button shows no case after sign-out).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from abusedesk import __version__
from abusedesk.domain.timeutil import as_utc, parse_time

STATIC_PREFIX = "/static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def fmt_time(value: str | datetime | None) -> str:
    """``2026-03-01 10:15Z`` (seconds when they are not zero): how pages show a time."""
    if value is None or value == "":
        return "-"
    when = as_utc(value) if isinstance(value, datetime) else parse_time(str(value))
    text = when.strftime("%Y-%m-%d %H:%M:%S" if when.second else "%Y-%m-%d %H:%M")
    return text + "Z"


def static(path: str) -> str:
    return f"{STATIC_PREFIX}/{path.lstrip('/')}?v={__version__}"


env = Environment(
    loader=PackageLoader("abusedesk.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(static=static, version=__version__)
env.filters["fmt_time"] = fmt_time


def page_context(request: Request) -> dict[str, Any]:
    """What every page gets from the request (the session the page dependencies put on ``request.state``)."""
    from abusedesk.web.nav import visible

    session = getattr(request.state, "web_session", None)
    user = session.principal if session is not None and session.is_full else None
    return {
        "request": request,
        "user": user,
        "csrf_token": session.csrf if session is not None else "",
        "nav": visible(user, request.url.path),
    }


def render(request: Request, template_name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template_name`` with ``context`` on top of :func:`page_context`, with the security headers."""
    values = page_context(request) | context
    html = env.get_template(template_name).render(values)
    response = HTMLResponse(html, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    if values["user"] is not None or values["csrf_token"]:
        response.headers["Cache-Control"] = "no-store"
    return response
