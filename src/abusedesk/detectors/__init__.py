"""Detectors turn batches of Events (or columnar telemetry) into Findings that cite clauses."""
