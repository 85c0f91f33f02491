"""Starlette's TestClient, imported without its "use httpx2" deprecation warning (the suite turns warnings into
errors; httpx is what the project installs)."""

from __future__ import annotations

import warnings

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]
