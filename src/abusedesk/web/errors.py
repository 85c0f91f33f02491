"""Errors on pages: the API's one error handler (api/errors.py) asks :func:`render_problem` for a browser's
request of a page (``api.errors.wants_page``), so a page shows the same status and message as the API would, as
HTML."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from abusedesk.web.templating import render

TITLES = {
    400: "The request is wrong",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That cannot be done now",
    412: "Someone else changed this",
    422: "Something in the form is wrong",
    429: "Too many attempts",
}


def render_problem(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "Error")
    response = render(request, "error.html", status, title=title, status=status, detail=detail)
    if headers:
        response.headers.update({k: v for k, v in headers.items() if k.lower() != "www-authenticate"})
    return response
