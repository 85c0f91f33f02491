"""All tables, one module per area; importing this package registers every table on ``Base.metadata``."""

from abusedesk.store.tables import bus, cases, consent, evidence, intake, inventory, policy, screening  # noqa: F401
