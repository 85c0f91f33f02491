"""Persistence: SQLAlchemy 2 tables (one module per area under ``tables``), engine set-up, Alembic migrations."""
