"""Helpers shared by tests: component checks, free ports, real servers started on loopback."""
