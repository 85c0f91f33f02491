"""Sending a composed notice: SMTP (``notify_backend = "smtp"``), or the console and null twins.

The notice dispatcher (``actions/runner.py``) composes the message, fixes its Message-ID and records the notice as
``sending`` before it calls ``apply``; the adapter only delivers bytes. ``request.payload`` carries ``to``,
``from`` and ``message`` (the RFC 5322 bytes).

SMTP failures: a connection error, a timeout or a 4xx reply is retryable (the server may be back later); a 5xx
reply to the recipient or the message is permanent for this notice (a wrong address will not become right).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from abusedesk.actions.base import ActionRequest, ActionResult, Adapter
from abusedesk.config import SmtpSettings

log = logging.getLogger(__name__)

NOTICE_ACTION_KINDS = ("notify", "request-to-cease", "renotify")


class EmailNotifyAction(Adapter):
    """Delivers notices to customer contacts over SMTP (STARTTLS and AUTH when configured).

    Flags nothing; it sends what the case engine decided to send. Idempotency: the message keeps one
    Message-ID across retries, so a recipient's mail client shows a rare duplicate (after a crash between the
    server's 250 and our commit) as the same message.
    """

    name = "email_notify"
    kinds: ClassVar[tuple[str, ...]] = NOTICE_ACTION_KINDS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        host: str = "127.0.0.1"
        port: int = 25
        starttls: bool = False
        username: str | None = None
        password: str | None = None
        timeout: float = 10.0
        cafile: str | None = None  # CA bundle to verify the server's STARTTLS certificate (default: system CAs)

    params: Params

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> EmailNotifyAction:
        return cls(
            cls.Params(
                **smtp.model_dump(exclude={"password", "cafile"}),
                password=smtp.password.get_secret_value() if smtp.password is not None else None,
                cafile=str(smtp.cafile) if smtp.cafile is not None else None,
            )
        )

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        p = self.params
        to = str(request.payload["to"])
        sender = str(request.payload["from"])
        message: bytes = request.payload["message"]
        message_id = request.payload.get("message_id")
        where = f"SMTP server {p.host}:{p.port}"
        if dry_run:
            return ActionResult(
                True,
                f"dry run: would send {len(message)} bytes to {to} via {where}",
                external_ref=message_id,
                response={"dry_run": True},
            )
        try:
            with smtplib.SMTP(p.host, p.port, timeout=p.timeout) as smtp:
                smtp.ehlo()
                if p.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=p.cafile))
                    smtp.ehlo()
                if p.username:
                    smtp.login(p.username, p.password or "")
                refused = smtp.sendmail(sender, [to], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _refused(f"{where} refused recipient {to}: {code} {text!r}", code)
        except smtplib.SMTPResponseException as exc:
            return _refused(f"{where} answered {exc.smtp_code} {exc.smtp_error!r} sending to {to}", exc.smtp_code)
        except (OSError, smtplib.SMTPException) as exc:
            return ActionResult(
                False,
                f"cannot deliver to {to}: {type(exc).__name__} with {where}: {exc}; is the server up?",
                retryable=True,
            )
        if refused:
            return ActionResult(False, f"{where} refused {to}: {refused}", retryable=False)
        return ActionResult(True, f"accepted by {where} for {to}", external_ref=message_id)


def _refused(detail: str, code: int) -> ActionResult:
    return ActionResult(False, detail, retryable=not 500 <= code < 600)


class ConsoleNotifyAction(Adapter):
    """``notify_backend = "console"``: prints each notice to the log instead of sending it (development)."""

    name = "notify_console"
    kinds: ClassVar[tuple[str, ...]] = NOTICE_ACTION_KINDS

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        message: bytes = request.payload["message"]
        log.info("notice to %s (console backend):\n%s", request.payload["to"], message.decode("utf-8", "replace"))
        return ActionResult(True, "console backend: logged", external_ref=request.payload.get("message_id"))


class NullNotifyAction(Adapter):
    """``notify_backend = "null"``: accepts and drops every notice."""

    name = "notify_null"
    kinds: ClassVar[tuple[str, ...]] = NOTICE_ACTION_KINDS

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        return ActionResult(True, "null backend: dropped", external_ref=request.payload.get("message_id"))
