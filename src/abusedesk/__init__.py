"""abusedesk: an abuse desk that enforces a cloud provider's Acceptable Use Policy."""

__version__ = "0.1.0"
