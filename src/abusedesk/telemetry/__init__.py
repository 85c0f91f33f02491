"""Network telemetry: flow export collection (IPFIX, NetFlow v9/v5), flow files, the raw flow store (issue 12)."""
