"""All tables, one module per area; importing this package registers every table on ``Base.metadata``."""

from abusedesk.store.tables import (  # noqa: F401
    bus,
    cases,
    consent,
    evidence,
    identity,
    intake,
    inventory,
    policy,
    robots,
    screening,
)
