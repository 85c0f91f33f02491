from __future__ import annotations

from collections.abc import Iterator

import pytest

from abusedesk.api.app import create_app
from abusedesk.runtime import Runtime
from tests.api.testclient import TestClient
from tests.support.identities import People
from tests.support.web import WebUsers, web_users


@pytest.fixture
def users(runtime: Runtime, people: People) -> WebUsers:
    """Every test person with the console password; approvers and the admin with TOTP secrets."""
    return web_users(runtime, people)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url="http://desk.test") as c:
        yield c
