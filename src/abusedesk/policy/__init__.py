"""The policy as data: the clause model, the loader and validator, playbooks, and stored versions.

Load with :func:`load_policy` (None: the shipped policy); ask a :class:`Policy` which clauses a kind falls under,
how severe it is and which playbook to run. See docs/reference/policy-file.md for the file format.
"""

from abusedesk.policy.loader import load_policy, load_policy_bytes, load_policy_text
from abusedesk.policy.model import (
    Clause,
    ClauseRole,
    Playbook,
    PlaybookSpec,
    Policy,
    RepeatRule,
    Step,
    StepType,
    format_duration,
    parse_duration,
)

__all__ = [
    "Clause",
    "ClauseRole",
    "Playbook",
    "PlaybookSpec",
    "Policy",
    "RepeatRule",
    "Step",
    "StepType",
    "format_duration",
    "load_policy",
    "load_policy_bytes",
    "load_policy_text",
    "parse_duration",
]
