"""Egress HTTP logs (Squid, combined, JSON lines) → per-client crawl summaries for the clause 1.14/1.5 detectors."""
