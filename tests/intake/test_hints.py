"""Format hints (issue 9): a channel that knows the format names the parser; sniffing is the fallback.

Each channel is the real one: the SMTP/LMTP listener over loopback, the IMAP poller against Dovecot, the drop
folder on disk. The hinted inputs are chosen so that sniffing would pick another parser (a free-text complaint
sent to the feedback-loop address), so a hint that was not honoured fails the test.
"""

from __future__ import annotations

import imaplib
import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from abusedesk.cli.intake import wire_all
from abusedesk.config import ParserHintSettings, load_settings
from abusedesk.domain.errors import ConfigError
from abusedesk.intake.folder import DropFolder
from abusedesk.intake.imap import ImapAccount, ImapPoller
from abusedesk.intake.service import IntakeService
from abusedesk.intake.smtp import SmtpIntakeServer
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.dovecot import Dovecot
from tests.intake.samples import complaint, xarf_bytes
from tests.parsers.test_arf import RFC_FIELDS, arf_mail
from tests.support.components import free_port

pytestmark = pytest.mark.integration

FBL = "fbl@desk.example"
# a free-text complaint: sniffing gives it to the free-text parser, which reads 192.0.2.20 from it
FREE_TEXT = complaint()


def _row(rt: Runtime, raw_id: str) -> RawInputRow:
    with rt.sessions() as s:
        row = s.get(RawInputRow, raw_id)
        assert row is not None
        s.expunge(row)
        return row


def _rows(rt: Runtime) -> list[RawInputRow]:
    with rt.sessions() as s:
        rows = list(s.scalars(select(RawInputRow).order_by(RawInputRow.received_at, RawInputRow.id)))
        s.expunge_all()
        return rows


# --- start-up ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "place"), [("recipients", FBL), ("mailboxes", "FBL"), ("folders", "/srv/abusedesk/drop")]
)
def test_an_unknown_parser_name_stops_start_up_naming_the_key(runtime: Runtime, group: str, place: str) -> None:
    runtime.settings.intake.parser_hints = ParserHintSettings(**{group: {place: "arff"}})
    with pytest.raises(ConfigError) as caught:
        wire_all(runtime)  # what `abusedesk serve` and the intake commands call first
    message = caught.value.message
    assert f"intake__parser_hints__{group}" in message
    assert f"ABUSEDESK_INTAKE__PARSER_HINTS__{group.upper()}" in message
    assert "'arff'" in message and repr(place) in message
    assert caught.value.field == f"intake__parser_hints__{group}"
    with pytest.raises(ConfigError):
        IntakeService(runtime)  # the API and the workers build the service directly


def test_known_names_start_and_no_hints_load_no_parsers(runtime: Runtime) -> None:
    assert not IntakeService(runtime).hints
    assert IntakeService(runtime)._parsers is None  # nothing to check: the parsers are still loaded lazily
    runtime.settings.intake.parser_hints = ParserHintSettings(recipients={"FBL@Desk.Example": "arf"})
    hints = IntakeService(runtime).hints
    assert hints.for_recipients(["<fbl@desk.example>"]) is not None  # addresses compare in lower case


def test_the_setting_is_read_from_the_environment_with_nested_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABUSEDESK_INTAKE__PARSER_HINTS__RECIPIENTS", json.dumps({FBL: "arf"}))
    monkeypatch.setenv("ABUSEDESK_INTAKE__PARSER_HINTS__FOLDERS", json.dumps({"/srv/feeds/ss": "shadowserver"}))
    settings = load_settings(data_dir=tmp_path)
    assert settings.intake.parser_hints.recipients == {FBL: "arf"}
    assert settings.intake.parser_hints.folders == {"/srv/feeds/ss": "shadowserver"}
    assert settings.intake.parser_hints.mailboxes == {}


def test_a_misspelt_group_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_INTAKE__PARSER_HINTS__RECIPIENT", json.dumps({FBL: "arf"}))
    with pytest.raises(ConfigError, match="intake__parser_hints__recipient"):
        load_settings(data_dir=tmp_path)


# --- SMTP / LMTP: envelope recipients -------------------------------------------------------------------------


@pytest.fixture
def smtp_server(runtime: Runtime) -> Iterator[SmtpIntakeServer]:
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.parser_hints = ParserHintSettings(recipients={FBL: "arf", "xarf@desk.example": "xarf"})
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port())
    srv.start()
    yield srv
    srv.stop()


def _send(server: SmtpIntakeServer, data: bytes, *rcpts: str) -> str:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.ehlo()
        c.mail("fbl-sender@mailbox.example.net")
        for rcpt in rcpts:
            c.rcpt(rcpt)
        code, reply = c.data(data.replace(b"\n", b"\r\n"))
    assert code == 250, reply
    return reply.decode().split("stored as ", 1)[1].split()[0]


def _settled(server: SmtpIntakeServer, raw_id: str) -> RawInputRow:
    server.handler.settle()  # the drain scheduled after the reply is done
    return _row(server.handler.door.rt, raw_id)


def test_mail_to_a_hinted_recipient_skips_sniffing(runtime: Runtime, smtp_server: SmtpIntakeServer) -> None:
    report = _settled(smtp_server, _send(smtp_server, arf_mail(RFC_FIELDS), FBL))
    assert (report.status, report.parser) == ("parsed", "arf")
    assert report.meta["parser"] == "arf" and report.meta["parser_hint"] == f"recipient {FBL}"
    # the free-text complaint sent to the feedback-loop address goes to the ARF parser, which cannot read it:
    # quarantined with the ARF parser's reason, as any input its parser refuses
    hinted = _settled(smtp_server, _send(smtp_server, FREE_TEXT, FBL.upper()))
    assert (hinted.status, hinted.parser) == ("quarantined", "arf")
    assert hinted.error is not None and hinted.error.startswith("parser arf: ")
    assert "feedback-report" in hinted.error


def test_other_recipients_fall_back_to_sniffing(runtime: Runtime, smtp_server: SmtpIntakeServer) -> None:
    sniffed = _settled(smtp_server, _send(smtp_server, FREE_TEXT, "abuse@provider.example"))
    assert (sniffed.status, sniffed.parser) == ("parsed", "freetext")
    assert "parser" not in sniffed.meta
    # a hinted and an unhinted recipient: the hint holds
    both = complaint(message_id="<c2@example.net>")
    row = _settled(smtp_server, _send(smtp_server, both, "abuse@provider.example", FBL))
    assert (row.status, row.parser) == ("quarantined", "arf")
    # two hinted recipients with different parsers: the channel cannot tell which is meant, so it sniffs
    torn = complaint(message_id="<c3@example.net>")
    row = _settled(smtp_server, _send(smtp_server, torn, FBL, "xarf@desk.example"))
    assert (row.status, row.parser) == ("parsed", "freetext")
    assert "parser" not in row.meta


def test_lmtp_recipients_are_hinted_too(runtime: Runtime) -> None:
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.parser_hints = ParserHintSettings(recipients={FBL: "arf"})
    srv = SmtpIntakeServer(wire_all(runtime), host="127.0.0.1", port=free_port(), lmtp=True)
    srv.start()
    try:
        with smtplib.LMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.ehlo()
            c.mail("fbl-sender@mailbox.example.net")
            c.rcpt(FBL)
            code, reply = c.data(FREE_TEXT.replace(b"\n", b"\r\n"))
        assert code == 250, reply
        row = _settled(srv, reply.decode().split("stored as ", 1)[1].split()[0])
    finally:
        srv.stop()
    assert (row.channel, row.status, row.parser) == ("lmtp", "quarantined", "arf")


# --- IMAP: mailbox names --------------------------------------------------------------------------------------


def test_a_hinted_imap_mailbox_names_its_parser(runtime: Runtime, dovecot: Dovecot) -> None:
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.parser_hints = ParserHintSettings(mailboxes={"FBL": "arf"})
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(dovecot.user, dovecot.password)
    try:
        assert conn.create("FBL")[0] == "OK"
        for data in (arf_mail(RFC_FIELDS), FREE_TEXT):
            typ, resp = conn.append("FBL", None, None, data)
            assert typ == "OK", resp
    finally:
        conn.logout()
    account = ImapAccount(
        host=dovecot.host, port=dovecot.port, user=dovecot.user, password=dovecot.password, mailbox="FBL"
    )
    fbl = ImapPoller(wire_all(runtime), account).poll_once()
    assert len(fbl.receipts) == 2
    rows = [_row(runtime, r.raw_id) for r in fbl.receipts]
    assert [(r.status, r.parser) for r in rows] == [("parsed", "arf"), ("quarantined", "arf")]
    assert all(r.meta["parser_hint"] == "mailbox FBL" for r in rows)


def test_an_unhinted_imap_mailbox_is_sniffed(runtime: Runtime, dovecot: Dovecot) -> None:
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.parser_hints = ParserHintSettings(mailboxes={"FBL": "arf"})
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(dovecot.user, dovecot.password)
    try:
        typ, resp = conn.append("INBOX", None, None, FREE_TEXT)
        assert typ == "OK", resp
    finally:
        conn.logout()
    account = ImapAccount(host=dovecot.host, port=dovecot.port, user=dovecot.user, password=dovecot.password)
    (receipt,) = ImapPoller(wire_all(runtime), account).poll_once().receipts
    row = _row(runtime, receipt.raw_id)
    assert (row.status, row.parser) == ("parsed", "freetext")
    assert "parser" not in row.meta


# --- drop folders ---------------------------------------------------------------------------------------------


def test_a_hinted_drop_folder_names_its_parser(runtime: Runtime, tmp_path: Path) -> None:
    hinted, plain = tmp_path / "fbl", tmp_path / "any"
    hinted.mkdir()
    plain.mkdir()
    # the setting names the folder as an operator writes it; the channel compares resolved paths
    runtime.settings.intake.parser_hints = ParserHintSettings(folders={str(tmp_path / "." / "fbl"): "arf"})
    door = wire_all(runtime)
    (hinted / "report.eml").write_bytes(arf_mail(RFC_FIELDS))
    (hinted / "complaint.eml").write_bytes(FREE_TEXT)
    (plain / "report.json").write_bytes(xarf_bytes())
    assert sorted(DropFolder(door, hinted, settle=False).poll().accepted) == ["complaint.eml", "report.eml"]
    assert DropFolder(door, plain, settle=False).poll().accepted == ["report.json"]
    rows = {r.meta["filename"]: r for r in _rows(runtime)}
    assert (rows["report.eml"].status, rows["report.eml"].parser) == ("parsed", "arf")
    assert rows["report.eml"].meta["parser_hint"] == f"folder {hinted.resolve()}"
    assert (rows["complaint.eml"].status, rows["complaint.eml"].parser) == ("quarantined", "arf")
    assert (rows["report.json"].status, rows["report.json"].parser) == ("parsed", "xarf")  # sniffed
    assert "parser" not in rows["report.json"].meta
