"""The domain knowledge and the address screen: both shipped lists, the parent walk, public suffixes, operator
lists, syntax, IDN, and the provenance every verdict carries."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from disposable_email_domains import blocklist
from MailChecker import MailChecker

from abusedesk.domain.errors import ConfigError
from abusedesk.screening.knowledge import DomainKnowledge, OperatorLists, normalise_domain
from abusedesk.screening.screen import AddressScreen

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def screen() -> AddressScreen:
    return AddressScreen(DomainKnowledge())


def _only_on(left: set[str], right: set[str]) -> str:
    return sorted(d for d in left - right if d.count(".") == 1)[0]


def test_the_union_of_both_lists_with_the_list_named(screen: AddressScreen) -> None:
    ded_only = _only_on(set(blocklist), set(MailChecker.blacklist))
    mc_only = _only_on(set(MailChecker.blacklist), set(blocklist))
    both = sorted(set(blocklist) & set(MailChecker.blacklist))[0]
    v1, v2, v3 = (screen.screen(f"someone@{d}") for d in (ded_only, mc_only, both))
    assert (v1.verdict, v1.rule, v1.lists) == ("disposable", "list", ("disposable-email-domains",))
    assert v2.lists == ("mailchecker",)
    assert v3.lists == ("disposable-email-domains", "mailchecker")
    assert dict(v3.list_versions) == {
        "disposable-email-domains": version("disposable-email-domains"),
        "mailchecker": version("mailchecker"),
    }


def test_every_verdict_names_every_list_and_its_version(screen: AddressScreen) -> None:
    for address in ("ok@example.com", "x@mailinator.com", "not an address"):
        knowledge = screen.screen(address).to_dict()["knowledge"]
        assert f"disposable-email-domains {version('disposable-email-domains')}" in knowledge
        assert f"mailchecker {version('mailchecker')}" in knowledge
        assert f"publicsuffixlist {version('publicsuffixlist')}" in knowledge


def test_parent_domain_walk(screen: AddressScreen) -> None:
    v = screen.screen("Someone@Deep.Sub.MAILINATOR.com")
    assert (v.verdict, v.matched_domain, v.domain) == ("disposable", "mailinator.com", "deep.sub.mailinator.com")
    assert "a parent of deep.sub.mailinator.com" in v.reason


def test_a_listed_public_suffix_matches_itself_not_the_names_below_it(screen: AddressScreen) -> None:
    kn = screen.knowledge
    assert "ddns.net" in kn.exact and "ddns.net" not in kn.walk  # a dynamic-DNS suffix on mailchecker
    assert screen.screen("a@ddns.net").verdict == "disposable"
    assert screen.screen("a@someones-host.ddns.net").verdict == "ok"


def test_an_address_at_a_public_suffix_goes_to_review(screen: AddressScreen) -> None:
    v = screen.screen("user@co.uk")
    assert (v.verdict, v.rule) == ("review", "public-suffix")


def test_syntax_is_email_validators_without_dns(screen: AddressScreen) -> None:
    for bad in ("plainaddress", "a@@b.example", "a@b", "a b@example.com", "a@-example.com", ""):
        v = screen.screen(bad)
        assert (v.verdict, v.rule) == ("invalid", "syntax"), bad
        assert v.reason.startswith("not a valid e-mail address")


def test_idn_domains_are_matched_as_a_labels() -> None:
    kn = DomainKnowledge(OperatorLists.build(deny=["bücher-wegwerf.example"]))
    v = AddressScreen(kn).screen("anna@BÜCHER-wegwerf.example")
    a_label = "xn--bcher-wegwerf-wob.example"
    assert (v.verdict, v.domain, v.matched_domain) == ("disposable", a_label, a_label)
    assert normalise_domain("*.Bücher.example.") == "xn--bcher-kva.example"
    assert normalise_domain("straße.example") == "xn--strae-oqa.example"  # IDNA 2008, as email-validator


def test_operator_lists_win_over_the_shipped_lists(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("# our partner's relay\nfriendly.mailinator.com\n")
    kn = DomainKnowledge(OperatorLists.build(deny=["corp-throwaway.example"], review=["odd.example"], allow_file=allow))
    screen = AddressScreen(kn)
    ok = screen.screen("a@friendly.mailinator.com")
    assert (ok.verdict, ok.rule, ok.matched_domain) == ("ok", "operator-allow", "friendly.mailinator.com")
    assert screen.screen("a@other.mailinator.com").rule == "list"
    deny = screen.screen("a@x.corp-throwaway.example")
    assert (deny.verdict, deny.rule, deny.matched_domain) == ("disposable", "operator-deny", "corp-throwaway.example")
    assert screen.screen("a@odd.example").verdict == "review"
    assert dict(deny.list_versions)["operator"] == kn.operator_lists.digest
    # the operator's lists change the knowledge's version, so a verdict tells which lists decided it
    assert kn.version != DomainKnowledge().version


def test_an_operator_allow_beats_a_deny_of_the_same_domain() -> None:
    kn = DomainKnowledge(OperatorLists.build(allow=["both.example"], deny=["both.example"]))
    assert AddressScreen(kn).screen("a@both.example").verdict == "ok"


def test_a_bad_line_in_a_list_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "deny.txt"
    bad.write_text("fine.example\nnot a domain\n")
    with pytest.raises(ConfigError, match=r"deny.txt:2: .*not a domain"):
        OperatorLists.build(deny_file=bad)
    with pytest.raises(ConfigError, match="cannot read domain list"):
        OperatorLists.build(deny_file=tmp_path / "missing.txt")


def test_fast_path_agrees_with_the_full_screen(screen: AddressScreen) -> None:
    addresses = [f"u{i}@{d}" for i, d in enumerate(sorted(blocklist)[:300])] + [
        "a@gmail.com", "b@sub.mailinator.com", "c@foo.ddns.net", "d@ddns.net", "e@example.org",
    ]  # fmt: skip
    for a in addresses:
        assert screen.is_disposable_fast(a) == (screen.screen(a).verdict == "disposable"), a


def test_the_batch_path_agrees_with_single_calls(tmp_path: Path) -> None:
    from abusedesk.screening.batch import flag_batch

    listed = sorted(blocklist)[:200]
    addresses = (
        [f"u{i}@{d}" for i, d in enumerate(listed)]
        + [f"u{i}@a.b.{d.upper()}" for i, d in enumerate(listed[:50])]
        + ["a@gmail.com", "b@foo.ddns.net", "c@ddns.net", "no-at-sign", "x@", 'q@"odd"@mailinator.com']
        + ["z@friendly.mailinator.com", "y@corp-throwaway.example", "w@deep.corp-throwaway.example"]
    )
    for kn in (DomainKnowledge(), DomainKnowledge(OperatorLists.build(allow=["friendly.mailinator.com"],
                                                                       deny=["corp-throwaway.example"]))):  # fmt: skip
        screen = AddressScreen(kn)
        assert flag_batch(kn, addresses).to_list() == [screen.is_disposable_fast(a) for a in addresses]
