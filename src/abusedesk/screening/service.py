"""ScreeningService: the one place the CLI and the API screen addresses and learn disposable MX hosts.

The compiled knowledge (~66k domains) and the MX cache are built once per Runtime and kept: a check is then a few
dict look-ups (and, with ``screening.mx_check``, one cached MX query for a domain on no list).
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from sqlalchemy import select

from abusedesk.config import Settings
from abusedesk.domain.errors import InputRejected
from abusedesk.domain.timeutil import as_utc
from abusedesk.intake.service import Accepted, IntakeService
from abusedesk.parsers.signup import signup_event
from abusedesk.runtime import Runtime
from abusedesk.screening.knowledge import DomainKnowledge, OperatorLists
from abusedesk.screening.mx import MxIntel, make_resolver
from abusedesk.screening.screen import AddressScreen, Verdict
from abusedesk.store.db import transaction
from abusedesk.store.tables.screening import DisposableMxRow
from abusedesk.store.upsert import upsert

_screens: weakref.WeakKeyDictionary[Runtime, AddressScreen] = weakref.WeakKeyDictionary()
_lock = threading.Lock()

#: how many listed domains learn-mx samples for MX hosts by default
LEARN_SAMPLE = 2000


def build_knowledge(settings: Settings) -> DomainKnowledge:
    s = settings.screening
    return DomainKnowledge(
        OperatorLists.build(
            allow=s.allow_domains,
            deny=s.deny_domains,
            review=s.review_domains,
            allow_file=s.allow_file,
            deny_file=s.deny_file,
            review_file=s.review_file,
        )
    )


def build_screen(settings: Settings, known_mx_hosts: dict[str, list[str]] | None = None) -> AddressScreen:
    """The screen the settings describe; MX intelligence only with ``screening.mx_check``."""
    s = settings.screening
    knowledge = build_knowledge(settings)
    mx = None
    if s.mx_check:
        mx = MxIntel(knowledge, make_resolver(s.nameservers, s.dns_timeout), known_mx_hosts)
    return AddressScreen(knowledge, mx, s.mx_verdict)


class ScreeningService:
    """Screen addresses (verdict ok | disposable | invalid | review) and learn disposable providers' MX hosts."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @property
    def screen_(self) -> AddressScreen:
        with _lock:
            screen = _screens.get(self.rt)
            if screen is None:
                screen = self._build()
                _screens[self.rt] = screen
            return screen

    def reload(self) -> AddressScreen:
        """Compile the knowledge again (the operator's files or the learned MX hosts changed)."""
        with _lock:
            screen = _screens[self.rt] = self._build()
            return screen

    def _build(self) -> AddressScreen:
        s = self.rt.settings.screening
        return build_screen(self.rt.settings, self.known_mx_hosts() if s.mx_check else None)

    @property
    def knowledge(self) -> DomainKnowledge:
        return self.screen_.knowledge

    def screen(self, address: str) -> Verdict:
        return self.screen_.screen(address)

    def known_mx_hosts(self) -> dict[str, list[str]]:
        """The operator's disposable MX hosts and the learned ones (host → why)."""
        out: dict[str, list[str]] = {h: ["operator"] for h in self.rt.settings.screening.disposable_mx_hosts}
        with self.rt.sessions() as session:
            for row in session.scalars(select(DisposableMxRow)):
                out.setdefault(row.host, list(row.domains))
        return out

    def learn_mx(self, domains: list[str] | None = None, *, limit: int = LEARN_SAMPLE) -> dict[str, Any]:
        """Resolve the MX of listed domains (``domains``, else the first ``limit`` of the shipped walk list) and
        keep the hosts ``mx_min_domains`` or more of them share. Needs ``screening.nameservers`` or the system
        resolver; bounded by ``limit``."""
        s = self.rt.settings.screening
        knowledge = self.knowledge
        chosen = domains if domains is not None else sorted(knowledge.walk_keys)[:limit]
        intel = MxIntel(knowledge, make_resolver(s.nameservers, s.dns_timeout))
        learned = intel.learn(chosen[:limit], s.mx_min_domains)
        now = as_utc(self.rt.clock.now())
        rows = [
            {"host": host, "domains": ds[:20], "domain_count": len(ds), "knowledge": knowledge.version,
             "learned_at": now}
            for host, ds in sorted(learned.items())
        ]  # fmt: skip
        with transaction(self.rt.sessions) as session:
            upsert(session, DisposableMxRow.__table__, rows, ["domains", "domain_count", "knowledge", "learned_at"])
        self.reload()
        return {"resolved": len(chosen[:limit]), "hosts": {r["host"]: r["domain_count"] for r in rows}}


class SignupService:
    """Signup events into the pipeline: stored at the door (raw kept), parsed by the ``signup`` parser, screened
    and linked by the attribute stage, judged by the ``signup`` detector, cases by the case engine."""

    CHANNEL = "signup"

    def __init__(self, rt: Runtime, intake: IntakeService | None = None) -> None:
        self.rt = rt
        self.intake = intake or IntakeService(rt)

    def record(self, records: list[dict[str, Any]]) -> Accepted:
        """One input of JSON lines, one a signup (each checked first: a bad one is an InputRejected naming it)."""
        for number, record in enumerate(records, 1):
            try:
                signup_event(record)
            except ValueError as exc:
                raise InputRejected(f"signup {number}: {exc}") from None
        data = b"".join(json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n" for r in records)
        return self.record_bytes(data)

    def record_bytes(self, data: bytes, filename: str | None = None) -> Accepted:
        """JSON lines as they came (a file): stored first, parsed after; bad lines become the input's issues."""
        meta: dict[str, Any] = {"parser": "signup"}
        if filename:
            meta["filename"] = filename
        return self.intake.accept(data, channel=self.CHANNEL, meta=meta)
