"""The navigation bar: one entry per area, shown to the roles that may use it.

Add an area by adding a :class:`NavItem` to :data:`NAV` (order = order on the bar). An entry is shown when the
signed-in user's role is in ``roles``; the page itself still checks (``web.auth.page_user``): the bar only saves a
user from links that would answer 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from abusedesk.domain.identity import STAFF_ROLES, Principal, Role

CUSTOMER_ROLES = frozenset({Role.CUSTOMER})


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str
    roles: frozenset[Role]


#: every area of the console and the portal, in bar order (the console's areas go before the portal's)
NAV: list[NavItem] = [
    NavItem("Cases", "/console", STAFF_ROLES),
    NavItem("Triage", "/console/triage", STAFF_ROLES),
    NavItem("Who had it?", "/console/whois", STAFF_ROLES),
    NavItem("Dashboard", "/console/dashboard", STAFF_ROLES),
    NavItem("My cases", "/portal", CUSTOMER_ROLES),
    NavItem("Test consents", "/portal/consents", CUSTOMER_ROLES),
]


def visible(user: Principal | None, current_path: str = "") -> list[dict[str, object]]:
    """The entries ``user`` may use, each with ``current`` set for the one the page is under."""
    if user is None:
        return []
    items = [n for n in NAV if user.role in n.roles]
    best = max((n.path for n in items if _under(current_path, n.path)), key=len, default=None)
    return [{"label": n.label, "path": n.path, "current": n.path == best} for n in items]


def home(user: Principal) -> str:
    """Where ``/`` takes a signed-in user: the first area of the bar it may use."""
    for n in NAV:
        if user.role in n.roles:
            return n.path
    return "/account"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


__all__ = ["CUSTOMER_ROLES", "NAV", "STAFF_ROLES", "NavItem", "home", "visible"]
