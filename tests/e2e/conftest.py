"""Browser tests: the real server (`abusedesk serve`) on a free loopback port over a fresh data directory, driven by
Playwright through Debian's Chromium (``/usr/bin/chromium``; never a browser Playwright downloads).

Fixtures:

- ``server``: starts ``abusedesk serve`` on the test's data directory and database (the ``runtime`` fixture's:
  seed it first through ``runtime``), yields its base URL, stops it. Its output is kept as an artefact.
- ``browser`` (one per test process) and ``page`` (a fresh context per test: a laptop's 1366x768 window). The page
  is screenshotted when the test ends, pass or fail, into the artefact directory.
- ``shot(page, name)``: a screenshot now; ``axe_check(page, name)``: axe-core on the current page, failing on any
  serious or critical violation (the report is written beside the screenshots).

Artefacts go to ``$ABUSEDESK_TEST_ARTIFACTS`` or ``test-artifacts/e2e/`` in the checkout (gitignored). A missing
Chromium or Playwright fails the test under CI=true and skips it elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from abusedesk.runtime import Runtime
from tests.support.components import free_port, missing, wait_for_port

CHROMIUM = os.environ.get("ABUSEDESK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ABUSEDESK_TEST_ARTIFACTS") or REPO / "test-artifacts" / "e2e")
#: axe-core impacts that fail a page
BLOCKING = ("serious", "critical")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    path = ARTIFACTS / _slug(request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def server(runtime: Runtime, artifacts: Path) -> Iterator[str]:
    """``abusedesk serve`` on 127.0.0.1:<free port> over the test's data directory and database."""
    port = free_port()
    exe = Path(sys.executable).with_name("abusedesk")
    cmd = [
        str(exe), "--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url,
        "serve", "--host", "127.0.0.1", "--port", str(port), "--tick-interval", "1",
    ]  # fmt: skip
    env = {
        **os.environ,
        "ABUSEDESK_NOTIFY_BACKEND": "null",
        "ABUSEDESK_CONTROL_BACKEND": "null",
        "ABUSEDESK_INTAKE__SEND_ACKS": "false",
        "ABUSEDESK_INTAKE__API_RATE_LIMIT_STORE": "memory",
    }
    log = (artifacts / "server.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing(f"Chromium is not at {CHROMIUM} (apt-get install chromium; make test installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the Python package playwright is not installed (pip install -e '.[dev]')")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:
        pw.stop()
        missing(f"Chromium at {CHROMIUM} does not start under Playwright: {exc}")
        raise
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def page(browser: Any, artifacts: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    try:
        page.screenshot(path=str(artifacts / "zz-last.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def shot(artifacts: Path) -> Callable[[Any, str], Path]:
    counter = iter(range(1, 1000))

    def take(page: Any, name: str) -> Path:
        path = artifacts / f"{next(counter):02d}-{_slug(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def axe_check(artifacts: Path) -> Callable[[Any, str], list[dict[str, Any]]]:
    """Run axe-core on the page; fail on serious or critical violations; return every violation."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page: Any, name: str) -> list[dict[str, Any]]:
        results = axe.run(page)
        violations: list[dict[str, Any]] = list(results.response.get("violations", []))
        (artifacts / f"axe-{_slug(name)}.json").write_text(json.dumps(violations, indent=2))
        bad = [v for v in violations if v.get("impact") in BLOCKING]
        summary = "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v.get('nodes', [])][:3]}" for v in bad
        )
        assert not bad, f"axe-core on {name} ({page.url}): {summary}"
        return violations

    return check
