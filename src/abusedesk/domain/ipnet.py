"""IP addresses as integers end to end: IPv4 and IPv6 in one 128-bit space (IPv4 mapped to ::ffff:0:0/96)."""

from __future__ import annotations

import ipaddress
import re

V4_BASE = 0xFFFF_0000_0000  # ::ffff:0.0.0.0, so an IPv4 address and its mapped IPv6 form are one integer


def ip_to_int(text: str) -> int:
    """An address as one integer in the shared 128-bit space; raises ValueError naming the bad text."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    if addr.version == 4:
        return V4_BASE + int(addr)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return V4_BASE + int(mapped)
    return int(addr)


def int_to_ip(value: int) -> str:
    if V4_BASE <= value <= V4_BASE + 0xFFFF_FFFF:
        return str(ipaddress.IPv4Address(value - V4_BASE))
    return str(ipaddress.IPv6Address(value))


def prefix_range(text: str) -> tuple[int, int, int]:
    """``(first, last, prefixlen128)`` of a CIDR prefix in the shared space; strict (host bits must be zero)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid IP prefix: {exc}") from None
    if net.version == 4:
        first = V4_BASE + int(net.network_address)
        return first, first + net.num_addresses - 1, 96 + net.prefixlen
    return int(net.network_address), int(net.broadcast_address), net.prefixlen


_CANONICAL_V4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


def normalise_ip(text: str) -> str:
    """The canonical text form of an address (compressed IPv6, IPv4-mapped shown as IPv4)."""
    if _CANONICAL_V4.fullmatch(text):  # already canonical IPv4, the common case: skip two ipaddress round trips
        return text
    return int_to_ip(ip_to_int(text))


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True
