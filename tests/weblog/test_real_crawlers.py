"""Real crawlers through a real Squid: each gets the verdict it deserves, the obedient ones none (issue 13 item 5).

A local site (loopback, no reverse look-ups) serves a robots.txt with ``Disallow: /private/`` and
``Crawl-delay: 0.5``. Squid (Debian's, on a loopback port) is the egress proxy; its own access.log is the input.
The crawlers, each from its own address or with its own agent:

=========================================================  ========================================================
crawler                                                    verdict
=========================================================  ========================================================
wget -r, obeying robots, own agent, --wait above the delay none
wget -r -e robots=off, default agent, no wait              agent, robots unread, robots disallowed, crawl-delay
Scrapy, ROBOTSTXT_OBEY on, own agent, DOWNLOAD_DELAY 0.6   none
Scrapy, ROBOTSTXT_OBEY on, its default agent, no delay     agent, crawl-delay
Scrapy, ROBOTSTXT_OBEY off, own agent, no delay            robots unread, robots disallowed, crawl-delay
=========================================================  ========================================================
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from abusedesk.robots.store import RobotsStore
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.weblog.formats import parse_lines
from tests.pipeline.spine import add_allocation
from tests.support.components import missing, require_program
from tests.weblog.robotsserver import Site, serve
from tests.weblog.squid import squid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = 12
ROBOTS = b"User-agent: *\nCrawl-delay: 0.5\nDisallow: /private/\n"
POLITE_WGET, RUDE_WGET, SCRAPY_ADDR = "127.0.0.2", "127.0.0.3", "127.0.0.1"
POLITE_UA = "ExampleBot/1.0 (+https://crawler.example/bot)"
POLITE_SCRAPY_UA = "PoliteScrapy/1.0 (+https://crawler.example/scrapy)"
RUDE_SCRAPY_UA = "RudeScrapy/1.0 (+https://crawler.example/rude)"

SPIDER = """
import scrapy

class Site(scrapy.Spider):
    name = "site"
    start_urls = ["{start}"]

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse)
"""


def site() -> Site:
    links = "".join(f'<a href="/p{i}.html">p{i}</a> ' for i in range(PAGES))
    private = "".join(f'<a href="/private/s{i}.html">s{i}</a> ' for i in range(4))
    pages = {"/": f"<html><body>{links}{private}</body></html>".encode()}
    for i in range(PAGES):
        pages[f"/p{i}.html"] = b'<html><body><a href="/">home</a></body></html>'
    for i in range(4):
        pages[f"/private/s{i}.html"] = b"<html><body>secret</body></html>"
    return Site(robots=ROBOTS, pages=pages)


def wget(proxy: str, url: str, out: Path, *args: str) -> None:
    cmd = [require_program("wget"), "-q", "-r", "-l", "2", "-e", "use_proxy=yes", "-e", f"http_proxy={proxy}",
           "--no-cache", "-P", str(out), *args, url]  # fmt: skip
    subprocess.run(cmd, timeout=60, check=False, capture_output=True)  # wget exits 8 for the robots-off 404s


def scrapy(proxy: str, url: str, spider: Path, **settings: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["http_proxy"] = proxy
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-s", "LOG_LEVEL=ERROR",
           "-s", "TELNETCONSOLE_ENABLED=False", "-s", "HTTPCACHE_ENABLED=False", "-s", "DEPTH_LIMIT=2",
           "-s", "CLOSESPIDER_TIMEOUT=40"]  # fmt: skip
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    proc = subprocess.run(cmd, timeout=90, check=False, capture_output=True, env=env, cwd=spider.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_real_crawlers_through_squid(spine_rt: Runtime, tmp_path: Path) -> None:
    try:
        import scrapy as _scrapy  # noqa: F401 - the crawler under test, run as its own process
    except ImportError:
        missing("Scrapy is not installed (make test installs the dev extra)")
    detectors = {"crawler_agent": {"min_requests": 8, "min_distinct_paths": 8},
                 "robots_ignored": {"min_requests": 5}, "crawl_delay_ignored": {"min_requests": 8},
                 "mirroring": {"min_pages": 200}}  # fmt: skip
    rt = Runtime(spine_rt.settings.model_copy(update={"detectors": detectors}), clock=spine_rt.clock,
                 engine=spine_rt.engine)  # fmt: skip
    add_allocation(rt, "127.0.0.0/29", datetime(2020, 1, 1, tzinfo=UTC))  # the crawlers' loopback addresses
    the_site = site()
    with serve(the_site) as host, squid() as proxy:
        url = f"http://{host}/"
        spider = tmp_path / "spider.py"
        spider.write_text(SPIDER.format(start=url))
        wget(proxy.proxy, url, tmp_path / "w1", f"--bind-address={POLITE_WGET}", "-U", POLITE_UA, "--wait=0.6")
        wget(proxy.proxy, url, tmp_path / "w2", f"--bind-address={RUDE_WGET}", "-e", "robots=off")
        polite = {"ROBOTSTXT_OBEY": "True", "DOWNLOAD_DELAY": "0.6", "RANDOMIZE_DOWNLOAD_DELAY": "False",
                  "CONCURRENT_REQUESTS_PER_DOMAIN": "1"}  # fmt: skip
        scrapy(proxy.proxy, url, spider, USER_AGENT=POLITE_SCRAPY_UA, **polite)
        scrapy(proxy.proxy, url, spider, ROBOTSTXT_OBEY="True")
        scrapy(proxy.proxy, url, spider, ROBOTSTXT_OBEY="False", USER_AGENT=RUDE_SCRAPY_UA)
        RobotsStore(rt).fetch(host)  # the desk's own fetch of the target's robots.txt, through no proxy
        log = proxy.access_log.read_bytes()
    assert the_site.seen, "the site saw no request"
    agents = {r["ua"] for r in parse_lines(log.decode().splitlines(), "squid").table.to_pylist()}
    scrapy_default = next(a for a in agents if a.startswith("Scrapy/"))
    wget_default = next(a for a in agents if a.startswith("Wget/"))

    from abusedesk.intake.service import IntakeService

    IntakeService(rt).accept(log, channel="file", meta={"parser": "weblog", "weblog_format": "squid"})
    rt.drain()
    got: dict[tuple[str, str], set[str]] = {}
    with rt.sessions() as s:
        for row in s.scalars(select(FindingRow)):
            who = (str(row.subject_ip), row.data["evidence"][0]["user_agent"])
            got.setdefault(who, set()).add(row.group_key.split(":")[0])
    assert got == {
        (RUDE_WGET, wget_default): {"agent", "robots-unread", "robots-disallowed", "crawl-delay"},
        (SCRAPY_ADDR, scrapy_default): {"agent", "crawl-delay"},
        (SCRAPY_ADDR, RUDE_SCRAPY_UA): {"robots-unread", "robots-disallowed", "crawl-delay"},
    }, got
