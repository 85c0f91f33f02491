"""The one SMTP transport against a real STARTTLS server on loopback, with a test CA made here (issue 10 item 6).

The server accepts AUTH even on a plain session (``auth_require_tls=False``), so a client that logged in before or
without a verified TLS session would be seen doing it: every refusal below also checks that no credentials arrived.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from abusedesk.actions.base import ActionRequest
from abusedesk.actions.smtp import EmailNotifyAction, SmtpTransport
from abusedesk.config import load_settings
from abusedesk.domain.errors import ActionError, ConfigError
from abusedesk.intake.reporters import SmtpMailer
from tests.support.components import free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "desk", "s3cret-password"


@dataclass
class Relay:
    port: int
    messages: list[bytes] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, over TLS)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), session.ssl is not None))
        return AuthResult(success=data.login.decode() == USER and data.password.decode() == PASSWORD)


@contextmanager
def relay(ca: trustme.CA | None, host_name: str = "127.0.0.1") -> Iterator[Relay]:
    """aiosmtpd on loopback offering STARTTLS with a certificate ``ca`` issued for ``host_name`` (None: no TLS)."""
    sink = Relay(free_port())
    kwargs: dict[str, Any] = {"authenticator": sink.authenticate, "auth_require_tls": False}
    if ca is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host_name).configure_cert(context)
        kwargs |= {"tls_context": context, "require_starttls": False}
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def _ca_file(ca: trustme.CA, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _transport(port: int, cafile: str | None, *, starttls: bool = True, user: str | None = USER) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1", port, starttls=starttls, username=user, password=PASSWORD, timeout=5, cafile=cafile
    )


def _message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "abuse@provider.example", "noc@example.net", "notice"
    m.set_content("hello\n")
    return m


def test_verified_starttls_then_login_then_send(tmp_path: Path) -> None:
    ca = trustme.CA()
    with relay(ca) as r:
        refused = _transport(r.port, _ca_file(ca, tmp_path, "ca")).send(
            "abuse@provider.example", ["noc@example.net"], _message().as_bytes()
        )
    assert refused == {}
    assert r.logins == [(USER, True)]  # the password went only over the verified session
    assert len(r.messages) == 1


@pytest.mark.parametrize("case", ["other CA", "system CAs only", "wrong host name"])
def test_a_wrong_certificate_sends_nothing_and_no_credentials(tmp_path: Path, case: str) -> None:
    ours, other = trustme.CA(), trustme.CA()
    cafile = {"other CA": _ca_file(other, tmp_path, "other"), "system CAs only": None}.get(
        case, _ca_file(ours, tmp_path, "ours")
    )
    with relay(ours, "mail.example.net" if case == "wrong host name" else "127.0.0.1") as r:
        with pytest.raises(ssl.SSLCertVerificationError):
            _transport(r.port, cafile).send("abuse@provider.example", ["noc@example.net"], _message().as_bytes())
        # the notice adapter and the reporter replies go through the same transport and refuse the same way
        settings = load_settings(
            data_dir=tmp_path,
            smtp={"host": "127.0.0.1", "port": r.port, "starttls": True, "username": USER, "password": PASSWORD}
            | ({"cafile": cafile} if cafile else {}),
        )
        request = ActionRequest(
            action_id="a1",
            case_id="c1",
            kind="notify",
            idempotency_key="k1",
            payload={"to": "noc@example.net", "from": "abuse@provider.example", "message": _message().as_bytes()},
        )
        result = EmailNotifyAction.from_settings(settings.smtp).apply(request)
        assert not result.ok
        assert "CERTIFICATE_VERIFY_FAILED" in result.detail
        with pytest.raises(ActionError, match="CERTIFICATE_VERIFY_FAILED"):
            SmtpMailer(settings).send(_message())
    assert r.logins == []
    assert r.messages == []


def test_a_server_without_starttls_gets_no_credentials(tmp_path: Path) -> None:
    import smtplib

    with relay(None) as r, pytest.raises(smtplib.SMTPNotSupportedError):
        _transport(r.port, None).send("abuse@provider.example", ["noc@example.net"], _message().as_bytes())
    assert r.logins == [] and r.messages == []


def test_login_without_starttls_is_refused_before_connecting(tmp_path: Path) -> None:
    with relay(trustme.CA()) as r:
        with pytest.raises(ConfigError, match="starttls"):
            _transport(r.port, None, starttls=False).send("a@provider.example", ["b@example.net"], b"x")
        with pytest.raises(ConfigError, match="starttls"):
            load_settings(data_dir=tmp_path, smtp={"username": USER, "password": PASSWORD})
    assert r.logins == [] and r.messages == []
