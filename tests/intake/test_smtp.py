"""The SMTP/LMTP listener against smtplib over loopback: 250 after storing, 552 over the limit, 451 on failure."""

from __future__ import annotations

import shutil
import signal
import smtplib
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from abusedesk.cli.intake import wire_all
from abusedesk.intake.smtp import SmtpIntakeServer, parse_listen
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.mailsink import Sink, point_smtp_at
from tests.intake.samples import complaint
from tests.support.components import free_port, wait_for_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(runtime: Runtime) -> Iterator[SmtpIntakeServer]:
    runtime.settings.intake.send_acks = False
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port())
    srv.start()
    yield srv
    srv.stop()


def crlf(data: bytes) -> bytes:
    """Mail on the wire has CRLF line ends (smtplib converts str messages only, not bytes)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _count(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(RawInputRow)) or 0)


def test_250_with_raw_id_after_store(runtime: Runtime, server: SmtpIntakeServer) -> None:
    data = crlf(complaint())
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        code, _ = c.ehlo()
        assert code == 250
        assert int(c.esmtp_features["size"]) == runtime.settings.intake.max_input_bytes
        c.mail("reporter@example.net")
        c.rcpt("abuse@provider.example")
        code, reply = c.data(data)
    assert code == 250
    raw_id = reply.decode().split("stored as ", 1)[1].split()[0]
    with runtime.sessions() as s:
        row = s.get(RawInputRow, raw_id)
        assert row is not None
        assert row.channel == "smtp"
        assert row.meta["mail_from"] == "reporter@example.net"
        assert row.meta["rcpt_to"] == ["abuse@provider.example"]
        assert row.reporter == "reporter@example.net"
    stored = runtime.raw_store.get(raw_id)
    assert b"Your host 192.0.2.20 sent us spam" in stored


def test_552_over_limit_and_not_stored(runtime: Runtime) -> None:
    runtime.settings.intake.max_input_bytes = 4000
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port())
    srv.start()
    try:
        big = crlf(complaint(body="x" * 70 + "\n" + ("y" * 76 + "\n") * 100))
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.ehlo()
            assert int(c.esmtp_features["size"]) == 4000
            # a client that ignores SIZE and sends anyway gets 552 after DATA
            c.mail("reporter@example.net")
            c.rcpt("abuse@provider.example")
            code, reply = c.data(big)
            assert code == 552, reply
            # a client that declares the size is refused at MAIL FROM
            code, reply = c.mail("reporter@example.net", options=[f"SIZE={len(big)}"])
            assert code == 552, reply
    finally:
        srv.stop()
    assert _count(runtime) == 0


def test_451_when_the_raw_store_cannot_be_written(runtime: Runtime, server: SmtpIntakeServer) -> None:
    root = runtime.raw_store.root
    shutil.rmtree(root)
    root.write_text("not a directory: the raw store is broken\n")  # even root cannot mkdir below a file
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
            c.ehlo()
            c.mail("reporter@example.net")
            c.rcpt("abuse@provider.example")
            code, reply = c.data(crlf(complaint()))
        assert code == 451, reply
        assert b"try again later" in reply
    finally:
        root.unlink()
        root.mkdir()
    assert _count(runtime) == 0
    # the sender retries later and is accepted
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.ehlo()
        c.mail("reporter@example.net")
        c.rcpt("abuse@provider.example")
        code, _ = c.data(crlf(complaint()))
    assert code == 250
    assert _count(runtime) == 1


def test_lmtp_answers_per_recipient(runtime: Runtime) -> None:
    runtime.settings.intake.send_acks = False
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port(), lmtp=True)
    srv.start()
    try:
        with smtplib.LMTP("127.0.0.1", srv.port, timeout=10) as c:
            code, _ = c.ehlo()  # LHLO on an LMTP connection
            assert code == 250
            c.mail("reporter@example.net")
            c.rcpt("abuse@provider.example")
            c.rcpt("noc@provider.example")
            first = c.data(crlf(complaint()))
            second = c.getreply()  # RFC 2033: one reply per accepted recipient
        assert first[0] == 250
        assert second[0] == 250
        assert first[1] == second[1]
    finally:
        srv.stop()
    with runtime.sessions() as s:
        (row,) = s.scalars(select(RawInputRow)).all()
        assert row.channel == "lmtp"
        assert sorted(row.meta["rcpt_to"]) == ["abuse@provider.example", "noc@provider.example"]


def test_ack_after_store_through_sink(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port())
    srv.start()
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("reporter@example.net", ["abuse@provider.example"], crlf(complaint()))
    finally:
        srv.stop()
    (ack,) = mail_sink.wait(1)
    with runtime.sessions() as s:
        (raw_id,) = s.scalars(select(RawInputRow.id)).all()
    assert raw_id[:16] in ack["Subject"]


def test_very_long_header_lines_and_nested_messages(runtime: Runtime, server: SmtpIntakeServer) -> None:
    inner = EmailMessage()
    inner["From"] = "spammer@example.com"
    inner["To"] = "victim@example.net"
    inner["Subject"] = "Cheap"
    inner["Received"] = "from host (unknown [192.0.2.30]) by mx.example.net"
    inner.set_content("buy now\n")
    middle = EmailMessage()
    middle["From"] = "forwarder@example.net"
    middle["Subject"] = "fwd"
    middle.set_content("see attached\n")
    middle.add_attachment(inner)
    outer = EmailMessage()
    outer["From"] = "reporter@example.net"
    outer["To"] = "abuse@provider.example"
    outer["Subject"] = "nested " + "s" * 5000  # one very long header line, folded by the policy
    outer["Message-ID"] = "<nested@example.net>"
    outer.set_content("report with a nested report inside\n")
    outer.add_attachment(middle)
    data = crlf(outer.as_bytes()).replace(b"\r\n\r\n", b"\r\nX-Long: " + b"v" * 20000 + b"\r\n\r\n", 1)
    assert max(len(line) for line in data.split(b"\r\n")) > 20000  # over RFC 5321's 1000
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.ehlo()
        c.mail("reporter@example.net")
        c.rcpt("abuse@provider.example")
        code, reply = c.data(data)
    assert code == 250, reply
    server.handler.settle()  # the drain scheduled after the reply is done
    with runtime.sessions() as s:
        (row,) = s.scalars(select(RawInputRow)).all()
        assert row.status in ("parsed", "quarantined")
        assert len(row.meta["subject"]) == 300
    assert runtime.raw_store.get(row.id).count(b"spammer@example.com") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:2525", ("127.0.0.1", 2525)), ("[::1]:25", ("::1", 25)), ("0.0.0.0", ("0.0.0.0", 2525))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def test_serve_forever_stops_on_an_interrupt_delivered_to_another_thread(runtime: Runtime) -> None:
    """Linux may hand a process's SIGINT to any of its threads; the listener must still stop (it once hung).

    Python runs the handler in the main thread only when that thread next executes bytecode, so a bare wait in
    ``serve_forever`` never woke for a SIGINT that another thread took. Here a helper thread takes it.
    """
    # a handler an earlier test in this process left behind (a command's stop handler) would swallow the SIGINT
    # and hang this test: fail with its name instead
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGINT)
    runtime.settings.intake.send_acks = False
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port())
    rescued = threading.Event()
    main = threading.get_ident()

    def interrupt_from_elsewhere() -> None:
        try:
            wait_for_port("127.0.0.1", srv.port, timeout=60)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # this thread, not the main one
        finally:  # whatever happened here (a slow start under load), the main thread must not wait for ever
            if not done.wait(10):  # the old bare wait: wake the main thread ourselves, so the suite goes on
                rescued.set()
                signal.pthread_kill(main, signal.SIGINT)

    done = threading.Event()
    helper = threading.Thread(target=interrupt_from_elsewhere, daemon=True)
    helper.start()
    started = time.monotonic()
    srv.serve_forever()
    done.set()
    helper.join(5)
    assert not rescued.is_set(), "serve_forever did not stop on a SIGINT taken by another thread"
    assert time.monotonic() - started < 10
