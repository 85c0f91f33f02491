"""The one error tree of abusedesk.

::

    AbuseDeskError
     ├── ConfigError            bad setting, policy or pipeline file; stops a worker
     ├── SourceError            a channel or feed could not deliver
     │    ├── SourceUnavailable     retryable (network down, server busy)
     │    └── FeedFormatChanged     permanent (a known feed no longer looks as expected)
     ├── ParseError             one raw input could not be parsed (carries source, line, offset)
     │    └── InputLimitExceeded    a bound on one input was passed (unpacked bytes, MIME depth, parse time)
     ├── InputRejected          refused before storing (too large, over a rate limit)
     ├── ActionError            an adapter failed (``retryable`` says whether to try again)
     ├── NotFound
     ├── Conflict               a concurrent change, a duplicate, an illegal transition
     │    ├── PreconditionFailed    If-Match names a version that is no longer current: 412
     │    └── PreconditionRequired  a change to a case without If-Match: 428
     └── Forbidden              not allowed for this actor (e.g. approving one's own proposal)
          └── Unauthenticated       no valid credentials (missing, unknown, expired or revoked token): 401

Messages say what, where and the likely cause, as a sentence.
"""

from __future__ import annotations


class AbuseDeskError(Exception):
    """Base of every error abusedesk raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AbuseDeskError):
    """A setting, policy file or pipeline file is wrong; names the file, line and field."""

    status = 400

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        errors: list[ConfigError] | None = None,
    ) -> None:
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        if field and f"'{field}'" not in message:
            prefix += f"field '{field}': "
        super().__init__(prefix + message)
        self.file, self.line, self.field = file, line, field
        self.errors: list[ConfigError] = errors or []


class SourceError(AbuseDeskError):
    """A channel or feed could not deliver raw input."""

    status = 502


class SourceUnavailable(SourceError):
    """Retryable: the source is down or busy."""

    status = 503


class FeedFormatChanged(SourceError):
    """Permanent: a known feed no longer has the shape we expect."""


class ParseError(AbuseDeskError):
    """One raw input could not be parsed; the input goes to quarantine with this reason."""

    status = 422

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        parser: str | None = None,
    ) -> None:
        where = []
        if source:
            where.append(source)
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"offset {offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.source, self.line, self.offset, self.parser = source, line, offset, parser


class InputLimitExceeded(ParseError):
    """One input passed a bound the intake sets on it (bytes unpacked and decoded, MIME nesting, parse time).

    Raised while sniffing too, where other errors only mean "not this format": the input is quarantined with this
    reason instead of "format unknown" (issue 9 item 3).
    """


class InputRejected(AbuseDeskError):
    """Input refused before it was stored: too large, over a rate limit, or not allowed."""

    status = 413


class RateLimited(InputRejected):
    """Too many submissions from one client; ``retry_after`` says in how many seconds one more is accepted."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ActionError(AbuseDeskError):
    """An adapter could not carry out an action; ``retryable`` says whether a retry may help."""

    status = 502

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotFound(AbuseDeskError):
    status = 404


class Conflict(AbuseDeskError):
    status = 409


class Forbidden(AbuseDeskError):
    status = 403


class Unauthenticated(Forbidden):
    """No valid credentials: HTTP 401 (Forbidden, 403, is "known, but not allowed")."""

    status = 401


class PreconditionFailed(Conflict):
    """The caller's ``If-Match`` (the version it read) is no longer current: HTTP 412."""

    status = 412


class PreconditionRequired(Conflict):
    """A change that must say which version it read (``If-Match``) did not: HTTP 428."""

    status = 428
