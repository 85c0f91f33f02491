"""Normalised identities: each provider's documented address rules fold the spellings of one mailbox."""

from __future__ import annotations

import pytest

from abusedesk.screening.identity import normalise_identity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("John.Doe@gmail.com", "johndoe@gmail.com"),
        ("j.o.h.n.d.o.e+signup-7@GoogleMail.com", "johndoe@gmail.com"),
        ("john.doe+x@outlook.com", "john.doe@outlook.com"),  # dots count at Outlook
        ("John.Doe@Hotmail.co.uk", "john.doe@hotmail.co.uk"),
        ("base-shopping@yahoo.com", "base@yahoo.com"),
        ("base@ymail.com", "base@yahoo.com"),
        ("base-x@yahoo.co.uk", "base@yahoo.co.uk"),
        ("J.o_h-n@protonmail.ch", "john@proton.me"),
        ("john@pm.me", "john@proton.me"),
        ("john@me.com", "john@icloud.com"),
        ("john@alias.fastmail.com", "john@fastmail.com"),
        ("Anna+tag@Bücher.example", "anna@xn--bcher-kva.example"),
        ('"quoted"@example.org', "quoted@example.org"),
        ("+only@example.org", "+only@example.org"),  # an empty base is kept as it is
        ("first.last@example.org", "first.last@example.org"),  # dots count elsewhere
    ],
)
def test_provider_rules(address: str, key: str) -> None:
    assert normalise_identity(address) == key


@pytest.mark.parametrize("bad", ["no-at-sign", "@example.org", "user@", "user@bad domain"])
def test_not_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not"):
        normalise_identity(bad)
