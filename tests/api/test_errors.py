"""The one error shape, RFC 9457 problem+json, pinned for every branch of the error tree."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from fastapi import FastAPI

from abusedesk.api.app import create_app
from abusedesk.domain.errors import (
    AbuseDeskError,
    ActionError,
    ConfigError,
    Conflict,
    FeedFormatChanged,
    Forbidden,
    InputRejected,
    NotFound,
    ParseError,
    PreconditionFailed,
    PreconditionRequired,
    SourceUnavailable,
    Unauthenticated,
)
from abusedesk.runtime import Runtime
from tests.api.testclient import TestClient


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime)

    @app.get("/boom/{which}")
    def boom(which: str, n: int = 0) -> dict[str, str]:
        errors: dict[str, Exception] = {
            "config": ConfigError("bad", file="a.toml", line=3, errors=[ConfigError("sub one"), ConfigError("two")]),
            "parse": ParseError("no events", source="x.csv", line=7),
            "rejected": InputRejected("too big"),
            "notfound": NotFound("no such case"),
            "conflict": Conflict("changed meanwhile"),
            "forbidden": Forbidden("not yours"),
            "unavailable": SourceUnavailable("server busy"),
            "format": FeedFormatChanged("column gone"),
            "action": ActionError("webhook down"),
            "base": AbuseDeskError("plain"),
            "unauthenticated": Unauthenticated("who are you"),
            "stale": PreconditionFailed("read again"),
            "unconditional": PreconditionRequired("say what you read"),
            "crash": RuntimeError("secret detail"),
        }
        raise errors[which]

    return app


@pytest.mark.parametrize(
    ("which", "status", "error", "errors"),
    [
        ("config", 400, "a.toml:3: bad", ["sub one", "two"]),
        ("parse", 422, "x.csv, line 7: no events", []),
        ("rejected", 413, "too big", []),
        ("notfound", 404, "no such case", []),
        ("conflict", 409, "changed meanwhile", []),
        ("forbidden", 403, "not yours", []),
        ("unavailable", 503, "server busy", []),
        ("format", 502, "column gone", []),
        ("action", 502, "webhook down", []),
        ("base", 500, "plain", []),
        ("unauthenticated", 401, "who are you", []),
        ("stale", 412, "read again", []),
        ("unconditional", 428, "say what you read", []),
        ("crash", 500, "internal error (RuntimeError); see the server log", []),
    ],
)
def test_error_shape(app: FastAPI, which: str, status: int, error: str, errors: list[str]) -> None:
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get(f"/boom/{which}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == problem(status, error, errors, f"/boom/{which}")
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def problem(status: int, detail: str, errors: list[object], instance: str) -> dict[str, object]:
    title = HTTPStatus(status).phrase
    return {
        "type": "urn:abusedesk:problem:" + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "errors": errors,
    }


def test_validation_and_routing_errors_have_the_same_shape(app: FastAPI) -> None:
    with TestClient(app) as c:
        r = c.get("/boom/parse?n=notanumber")
        assert r.status_code == 422
        body = r.json()
        assert set(body) == {"type", "title", "status", "detail", "instance", "errors"}
        assert body["errors"][0]["field"] == "query.n"
        assert body["detail"].startswith("request field 'query.n': ")
        r = c.get("/nowhere")
        assert r.json() == problem(404, "Not Found", [], "/nowhere")
        r = c.put("/api/v1/reports")
        assert r.json() == problem(405, "Method Not Allowed", [], "/api/v1/reports")
        assert r.headers["content-type"] == "application/problem+json"
