"""The demo: a sample inventory and sample signals of every kind, replayed through the real doors."""
