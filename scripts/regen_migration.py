"""Regenerate the initial migration from the tables (used until the first release freezes the schema).

Until abusedesk has a release, its schema lives in one migration, ``0001``, regenerated from the table modules;
after the first release each change gets a migration of its own. ``make migration`` runs this.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from abusedesk.store.db import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    command.revision(
        alembic_config(f"sqlite:///{Path(tmp) / 'x.db'}"), message="initial schema", autogenerate=True, rev_id="0001"
    )
