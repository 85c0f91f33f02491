"""The abuse@ mailbox as an SMTP or LMTP listener (aiosmtpd).

Replies: ``250`` with the raw id and reference once ``IntakeService.accept`` returned (the bytes are on disk),
``552`` for a message over ``intake.max_input_bytes`` (also advertised as ``SIZE`` in the EHLO/LHLO reply, so a
well-behaved client does not even send it), ``451`` when storing failed (the sender keeps the message and tries
again later). LMTP answers once per recipient, as RFC 2033 asks. Messages are stored on a pool of threads, so
the messages of concurrent sessions share one flush and one commit (the door's group commit); the pipeline runs
after the reply, on one thread of its own (``drain=True``, the ``intake smtp`` command) or in ``serve``'s loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from abusedesk.domain.errors import InputRejected
from abusedesk.intake.channels import MailDoor, Receipt

log = logging.getLogger(__name__)

#: threads storing messages at once: concurrent sessions' messages share a commit (intake.service.GroupCommit)
STORE_THREADS = 8


class IntakeHandler:
    """aiosmtpd handler: every message through ``MailDoor.receive``, answered only after it returned."""

    def __init__(
        self, door: MailDoor, *, lmtp: bool = False, executor: ThreadPoolExecutor | None = None, drain: bool = True
    ) -> None:
        self.door = door
        self.lmtp = lmtp
        self.channel = "lmtp" if lmtp else "smtp"
        self.executor = executor or ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="intake-smtp")
        # one drainer, and at most one drain waiting behind the running one: a burst of mail is one drain
        self.drain = drain
        self._drainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-smtp-drain")
        self._drain_waiting = threading.Lock()
        self.receipts: list[Receipt] = []

    def _drain(self) -> None:
        self._drain_waiting.release()
        self.door.rt.drain()

    def schedule_drain(self) -> None:
        if self.drain and self._drain_waiting.acquire(blocking=False):
            self._drainer.submit(self._drain)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the drain scheduled after the last reply has run (tests, and a clean stop)."""
        self._drainer.submit(lambda: None).result(timeout=timeout)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)
        self._drainer.shutdown(wait=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        meta: dict[str, Any] = {
            "rcpt_to": list(envelope.rcpt_tos)[:20],
            "peer": str(session.peer[0]) if isinstance(session.peer, tuple) else str(session.peer),
            "helo": session.host_name,
        }
        mail_from = envelope.mail_from or ""
        try:
            receipt = await loop.run_in_executor(
                self.executor,
                lambda: self.door.receive(data, channel=self.channel, meta=meta, mail_from=mail_from),
            )
        except InputRejected as exc:
            return self._per_rcpt(envelope, f"552 5.3.4 {exc.message}")
        except Exception as exc:
            log.exception("a %d-byte message from %r could not be stored", len(data), mail_from)
            return self._per_rcpt(
                envelope, f"451 4.3.0 message not stored ({type(exc).__name__}); please try again later"
            )
        self.receipts.append(receipt)
        self.schedule_drain()
        note = " (duplicate)" if receipt.duplicate else ""
        return self._per_rcpt(envelope, f"250 2.0.0 stored as {receipt.raw_id} reference {receipt.reference}{note}")

    def _per_rcpt(self, envelope: Envelope, status: str) -> str:
        status = " ".join(status.split())[:500]
        if not self.lmtp:
            return status
        return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))


#: RFC 5321 allows 1000 octets per line, but forwarded spam and hand-made complaints break it; refusing them
#: would lose reports, so lines up to 64 KiB are taken (the whole message is still bounded by SIZE)
LINE_LENGTH_LIMIT = 64 * 1024


class _IntakeSMTP(SMTP):
    line_length_limit = LINE_LENGTH_LIMIT


class _IntakeLMTP(LMTP):
    line_length_limit = LINE_LENGTH_LIMIT


class _IntakeController(Controller):
    def __init__(self, handler: IntakeHandler, *, hostname: str, port: int, size_limit: int) -> None:
        self.lmtp = handler.lmtp
        super().__init__(handler, hostname=hostname, port=port, data_size_limit=size_limit)

    def factory(self) -> SMTP:
        cls = _IntakeLMTP if self.lmtp else _IntakeSMTP
        return cls(self.handler, **self.SMTP_kwargs)


class SmtpIntakeServer:
    """An SMTP (or LMTP) listener in a background thread; ``start``/``stop``, or ``serve_forever`` for the CLI."""

    def __init__(
        self, door: MailDoor, *, host: str = "127.0.0.1", port: int = 2525, lmtp: bool = False, drain: bool = True
    ) -> None:
        self.handler = IntakeHandler(door, lmtp=lmtp, drain=drain)
        self.host, self.port = host, port
        self.controller = _IntakeController(
            self.handler, hostname=host, port=port, size_limit=door.rt.settings.intake.max_input_bytes
        )

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
        self.handler.shutdown()

    def serve_forever(self) -> None:
        import threading

        try:  # an interrupt at any point, start() included, still stops the listener (its thread keeps us alive)
            self.start()
            log.info("%s intake listening on %s:%d", self.handler.channel.upper(), self.host, self.port)
            idle = threading.Event()
            # a timed wait, not a bare one: Linux may deliver SIGINT to another of our threads, and Python runs
            # its handler only when the main thread next executes bytecode; a bare wait would never wake to do so
            while not idle.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if getattr(self.controller, "_thread", None) is not None:  # aiosmtpd's: None until started
                self.controller.stop()
            self.handler.shutdown()


def parse_listen(text: str, default_port: int = 2525) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``HOST`` → (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host or "127.0.0.1", int(port)
    return text, default_port
