"""The FastAPI application factory: ``create_app(rt)``.

The app is routers plus one error handler (``abusedesk.api.errors``). It does not wire the pipeline: the caller
(``abusedesk serve``, a test) runs the stages; with the in-process bus the intake routes drain the
in-process bus after answering, so a report is parsed, attributed and grouped right after it was accepted.
"""

from __future__ import annotations

from fastapi import FastAPI

from abusedesk import __version__
from abusedesk.api import intake, screen
from abusedesk.api.errors import install_error_handlers
from abusedesk.runtime import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="abusedesk", version=__version__, openapi_url="/api/v1/openapi.json", docs_url="/api/docs")
    app.state.rt = rt
    install_error_handlers(app)
    app.include_router(intake.router)
    app.include_router(screen.router)
    return app
