"""The FastAPI application factory: ``create_app(rt)``.

The app is routers plus one error handler (``abusedesk.api.errors``, RFC 9457 problem+json). It does not wire the
pipeline: the caller (``abusedesk serve``, a test) runs the stages; with the in-process bus the intake routes drain
the in-process bus after answering, so a report is parsed, attributed and grouped right after it was accepted.

The API documentation (Swagger UI at ``/api/docs``, Redoc at ``/api/redoc``) is served from assets in the
installed ``fastapi-offline`` package, never from a CDN, so it works offline. The OpenAPI document names the
Bearer scheme (``bearerAuth``) every authenticated route uses.

The console and the customer portal (``abusedesk.web``) are pages on the same app, outside ``/api/``:
``web.mount(app)`` adds them (sign-in at ``/signin``, static files at ``/static``).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from abusedesk import __version__
from abusedesk.api import cases, consents, desk, intake, ops, screen
from abusedesk.api.errors import install_error_handlers
from abusedesk.runtime import Runtime

#: every router of the API; tests/api/test_tenants.py calls each of their routes as every role
ROUTERS = (intake.router, cases.router, desk.router, ops.router, consents.router, screen.router)
OPENAPI_URL = "/api/v1/openapi.json"
ASSETS = "/api/docs-assets"


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="abusedesk",
        version=__version__,
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        description="The abuse desk's API. Authenticate with `Authorization: Bearer TOKEN` "
        "(`abusedesk token create`). Errors are RFC 9457 problem details.",
    )
    app.state.rt = rt
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    from abusedesk import web

    web.mount(app)
    static = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="abusedesk API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    @app.get("/api/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title="abusedesk API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    return app
