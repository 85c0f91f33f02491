"""Who acts: a :class:`Principal` (a user with one role, or a service account) and what each role may do. No I/O.

Every change to a case, every approval and every audit entry names a principal's ``id``: a person's user id
(``us_...``, from the ``users`` table, authenticated by an API token) or a service account's (``svc:scheduler``).
The two-person rule compares these ids, never names. Service accounts are defined here, in code: no token can
be created for them and no user can take their name, so no person can act as the scheduler or a worker.

Roles (issue 10)::

    analyst    reads cases, quarantine and inventory; proposes actions; transitions; notes
    approver   what an analyst does, and approves or rejects proposed actions and consents
    admin      everything, and manages users and tokens
    auditor    reads everything and verifies the audit chain; changes nothing
    customer   reads its own cases and notices (one customer id); acknowledges, replies to and appeals them;
               requests consent for tests of its services
    integration  a provider system calling the desk (the signup flow): screens signups, nothing else (issue 14)
    service    the system itself (engine, scheduler, action runner, intake): acts for no person

A token may be narrowed to the ``read`` scope; what it may do is then the role's reading capabilities only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from abusedesk.domain.errors import Forbidden


class Role(StrEnum):
    ANALYST = "analyst"
    APPROVER = "approver"
    ADMIN = "admin"
    AUDITOR = "auditor"
    CUSTOMER = "customer"
    SERVICE = "service"
    INTEGRATION = "integration"


#: Roles a person can be given (``abusedesk user add --role``); ``service`` is not one of them.
#: ``integration`` is a user row too (a token for the provider's signup flow), though no person acts through it.
PERSON_ROLES: tuple[Role, ...] = (
    Role.ANALYST, Role.APPROVER, Role.ADMIN, Role.AUDITOR, Role.CUSTOMER, Role.INTEGRATION,
)  # fmt: skip
#: Roles of the provider's own people (they see every customer).
STAFF_ROLES: frozenset[Role] = frozenset({Role.ANALYST, Role.APPROVER, Role.ADMIN, Role.AUDITOR})


class Can(StrEnum):
    """Capabilities. Those ending in ``.read`` are the read scope; the rest change something."""

    CASE_READ = "case.read"
    CASE_CHANGE = "case.change"  # transition, note
    CASE_RESPOND = "case.respond"  # the customer's side: acknowledge, reply, appeal (its own cases)
    ACTION_PROPOSE = "action.propose"
    ACTION_APPROVE = "action.approve"  # approve or reject
    TRIAGE_READ = "triage.read"  # quarantine and triage queue, raw inputs
    TRIAGE_CHANGE = "triage.change"  # release, promote
    INVENTORY_READ = "inventory.read"
    AUDIT_READ = "audit.read"
    POLICY_READ = "policy.read"
    USER_ADMIN = "user.admin"  # users and tokens
    REPORT_READ = "report.read"  # any report's status (a submitter always sees its own)
    CONSENT_READ = "consent.read"  # consents for load and security tests (a customer: its own)
    CONSENT_REQUEST = "consent.request"  # ask for one (a customer, for its own services)
    CONSENT_DECIDE = "consent.decide"  # approve, reject or revoke one (clause 1.3)
    SIGNUP_SCREEN = "signup.screen"  # POST /api/v1/screen/signup: screen a signup, record it for the pipeline


_ANALYST = frozenset(
    {
        Can.CASE_READ, Can.CASE_CHANGE, Can.ACTION_PROPOSE, Can.TRIAGE_READ, Can.TRIAGE_CHANGE, Can.INVENTORY_READ,
        Can.POLICY_READ, Can.REPORT_READ, Can.CONSENT_READ,
    }
)  # fmt: skip
#: role -> what it may do (a customer's reads are further limited to its own customer id by the services)
CAPABILITIES: dict[Role, frozenset[Can]] = {
    Role.ANALYST: _ANALYST,
    Role.APPROVER: _ANALYST | {Can.ACTION_APPROVE, Can.CONSENT_DECIDE},
    Role.ADMIN: frozenset(Can),
    Role.AUDITOR: frozenset(c for c in Can if c.value.endswith(".read")),
    Role.CUSTOMER: frozenset({Can.CASE_READ, Can.CASE_RESPOND, Can.POLICY_READ, Can.CONSENT_READ, Can.CONSENT_REQUEST}),
    Role.SERVICE: frozenset(Can)
    - {Can.USER_ADMIN, Can.ACTION_APPROVE, Can.CONSENT_REQUEST, Can.CONSENT_DECIDE, Can.CASE_RESPOND},
    Role.INTEGRATION: frozenset({Can.SIGNUP_SCREEN}),
}

SCOPES = ("read", "write")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who does something: ``id`` (the user id the audit log names), ``name`` (for people to read), ``role``,
    ``customer_id`` (customers only) and the token's ``scopes``."""

    id: str
    name: str
    role: Role
    customer_id: str | None = None
    scopes: frozenset[str] = field(default=frozenset(SCOPES))

    @property
    def is_person(self) -> bool:
        return self.role is not Role.SERVICE

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES or self.role is Role.SERVICE

    def can(self, what: Can) -> bool:
        if what not in CAPABILITIES[self.role]:
            return False
        return what.value.endswith(".read") or "write" in self.scopes

    def require(self, what: Can) -> None:
        """Forbidden unless this principal may do ``what``."""
        if not self.can(what):
            why = "its token has the read scope only" if what in CAPABILITIES[self.role] else f"role {self.role}"
            raise Forbidden(f"{self.name} ({self.id}) may not {what.value}: {why}")

    def sees_customer(self, customer_id: str | None) -> bool:
        """Staff see every customer; a customer only its own."""
        return self.is_staff or (customer_id is not None and customer_id == self.customer_id)


def service_account(name: str) -> Principal:
    return Principal(id=f"svc:{name}", name=name, role=Role.SERVICE)


ENGINE = service_account("engine")
SCHEDULER = service_account("scheduler")
ACTIONS = service_account("actions")
INTAKE = service_account("intake")
INVENTORY = service_account("inventory")
#: the service accounts; ``user add`` refuses their names and the ``svc:`` prefix
SERVICE_ACCOUNTS: dict[str, Principal] = {p.id: p for p in (ENGINE, SCHEDULER, ACTIONS, INTAKE, INVENTORY)}


#: prefixes of the ids the system acts under: service accounts, pipeline stages, intake channels
SERVICE_PREFIXES = ("svc:", "stage:", "channel:")


def is_service_id(actor_id: str) -> bool:
    """True for an id the system acts under (never a person's: user ids are ``us_...``)."""
    return actor_id.startswith(SERVICE_PREFIXES)
