"""MX intelligence against a real DNS server on loopback (dnslib): fresh domains of a disposable service are
caught by their MX hosts; learned hosts are kept in the database; answers are cached."""

from __future__ import annotations

import pytest

from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from abusedesk.screening.service import ScreeningService
from tests.screening.dnsserver import dns_server

pytestmark = pytest.mark.integration

ZONES = {
    # two listed domains of one service share its MX hosts
    "mailinator.com": ["mx1.tempservice.example", "mx2.tempservice.example"],
    "0-mail.com": ["mx1.tempservice.example"],
    # a fresh domain of the same service, on no list
    "fresh-drop.example": ["mx2.tempservice.example", "mx1.tempservice.example"],
    # a fresh domain whose MX is below a listed domain
    "other-drop.example": ["mx.mailinator.com"],
    # an ordinary company
    "acme-corp.example": ["mail.acme-corp.example"],
}


def _rt(runtime: Runtime, **screening: object) -> Runtime:
    runtime.settings = Settings(
        data_dir=runtime.settings.data_dir,
        database_url=runtime.settings.database_url,
        screening={"mx_check": True, "dns_timeout": 2.0, **screening},  # type: ignore[arg-type]
    )
    return runtime


def test_learned_mx_hosts_flag_a_fresh_domain(runtime: Runtime) -> None:
    with dns_server(ZONES) as (address, zone):
        svc = ScreeningService(_rt(runtime, nameservers=[address]))
        assert svc.screen("a@fresh-drop.example").verdict == "ok"  # nothing known yet
        learned = svc.learn_mx(["mailinator.com", "0-mail.com"])
        assert learned["hosts"] == {"mx1.tempservice.example": 2}
        v = svc.screen("a@fresh-drop.example")
        assert (v.verdict, v.rule, v.mx_hosts) == ("review", "mx", ("mx1.tempservice.example",))
        assert "mailinator.com" in v.reason and v.list_versions[0][0] == "disposable-mx"
        assert svc.screen("b@acme-corp.example").verdict == "ok"
        # a listed domain is decided by the lists, with no DNS query
        before = len(zone.queries)
        assert svc.screen("c@mailinator.com").rule == "list"
        # a second signup from the same domain is answered from the cache
        svc.screen("d@fresh-drop.example")
        assert len(zone.queries) == before
    # the learned hosts are in the database: another process (a new service over a new screen) knows them
    assert "mx1.tempservice.example" in ScreeningService(runtime).known_mx_hosts()


def test_an_mx_below_a_listed_domain_needs_no_learning(runtime: Runtime) -> None:
    with dns_server(ZONES) as (address, _):
        svc = ScreeningService(_rt(runtime, nameservers=[address], mx_verdict="disposable"))
        v = svc.screen("x@other-drop.example")
    assert (v.verdict, v.rule, v.mx_hosts) == ("disposable", "mx", ("mx.mailinator.com",))


def test_operator_named_mx_hosts(runtime: Runtime) -> None:
    with dns_server(ZONES) as (address, _):
        svc = ScreeningService(_rt(runtime, nameservers=[address], disposable_mx_hosts=["MAIL.acme-corp.example."]))
        assert svc.screen("x@acme-corp.example").rule == "mx"


def test_no_answer_and_no_such_domain_are_ok_not_errors(runtime: Runtime) -> None:
    with dns_server(ZONES) as (address, zone):
        svc = ScreeningService(_rt(runtime, nameservers=[address]))
        v = svc.screen("x@nowhere-at-all.example")
    assert v.verdict == "ok" and zone.queries == ["nowhere-at-all.example"]


def test_mx_check_off_asks_no_dns(runtime: Runtime) -> None:
    with dns_server(ZONES) as (address, zone):
        runtime.settings = Settings(
            data_dir=runtime.settings.data_dir,
            database_url=runtime.settings.database_url,
            screening={"nameservers": [address]},  # type: ignore[arg-type]
        )
        assert ScreeningService(runtime).screen("x@fresh-drop.example").verdict == "ok"
    assert zone.queries == []
