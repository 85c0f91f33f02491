"""Plain typed records and rules of the abuse desk; no I/O."""
