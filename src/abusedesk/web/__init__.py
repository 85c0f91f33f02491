"""The console and the customer portal: server-rendered pages on the API's FastAPI app (docs/dev/web.md).

:func:`mount` adds the page routers of :data:`PAGE_ROUTERS`, the static files under ``/static`` and the error
pages. Pages call the same services as the API and the CLI, with the Principal of the signed-in session.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI


def page_routers() -> tuple[APIRouter, ...]:
    """Every router of pages (a new area adds its router here)."""
    from abusedesk.web import portal, signin
    from abusedesk.web.console import pages as console

    return (signin.router, console.router, portal.router)


def mount(app: FastAPI) -> None:
    from fastapi.staticfiles import StaticFiles

    from abusedesk.web.auth import SignInRequired, signin_redirect
    from abusedesk.web.errors import render_problem
    from abusedesk.web.templating import STATIC_PREFIX

    for router in page_routers():
        app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(resources.files("abusedesk.web") / "static")), name="static")
    app.add_exception_handler(SignInRequired, signin_redirect)
    app.state.render_problem = render_problem
