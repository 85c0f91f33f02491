"""Intake: channels deliver bytes, the raw store keeps them before anything is acknowledged or parsed."""
