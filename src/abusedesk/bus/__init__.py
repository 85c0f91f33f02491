"""Buses carry messages between stages: in-process (default) or NATS JetStream (scale-out)."""
