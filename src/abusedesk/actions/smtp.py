"""Sending mail: :class:`SmtpTransport`, the one SMTP client of abusedesk (notices and reporter replies), and the
notice adapters: SMTP (``notify_backend = "smtp"``), or the console and null twins.

Transport security (issue 10): with ``smtp.starttls`` the session is upgraded before anything else, with a
certificate verified against the system's CAs or ``smtp.cafile`` and the host name checked
(``ssl.create_default_context``); a server that does not offer STARTTLS, or whose certificate does not verify,
gets no message and no credentials. A password is never sent over a session that STARTTLS did not protect:
``smtp.username`` without ``smtp.starttls`` is refused when the settings are read and again here.

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
from abusedesk.domain.errors import ConfigError

log = logging.getLogger(__name__)

NOTICE_ACTION_KINDS = ("notify", "request-to-cease", "renotify")


class SmtpTransport:
    """Delivers RFC 5322 bytes through one SMTP relay: STARTTLS verified, then AUTH, then the message."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        cafile: str | None = None,
    ) -> None:
        self.host, self.port, self.starttls, self.timeout, self.cafile = host, port, starttls, timeout, cafile
        self.username, self.password = username, password

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> SmtpTransport:
        return cls(
            smtp.host,
            smtp.port,
            starttls=smtp.starttls,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password is not None else None,
            timeout=smtp.timeout,
            cafile=str(smtp.cafile) if smtp.cafile is not None else None,
        )

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)  # CERT_REQUIRED and the host name checked
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, tuple[int, bytes]]:
        """Send ``message``; returns the refused recipients. Raises smtplib's errors, OSError, or ConfigError."""
        if self.username and not self.starttls:
            raise ConfigError(
                f"smtp.username is set but smtp.starttls is off: abusedesk does not send a password to {self.where} "
                "over a connection that is not encrypted and verified; set smtp.starttls = true"
            )
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                # raises SMTPNotSupportedError when not offered, ssl.SSLCertVerificationError on a wrong certificate:
                # either way nothing below runs, so no credentials and no message go out
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            return smtp.sendmail(sender, recipients, message)


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
        transport = SmtpTransport(
            p.host,
            p.port,
            starttls=p.starttls,
            username=p.username,
            password=p.password,
            timeout=p.timeout,
            cafile=p.cafile,
        )
        try:
            refused = transport.send(sender, [to], message)
        except ConfigError as exc:
            return ActionResult(False, exc.message, retryable=False)
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
