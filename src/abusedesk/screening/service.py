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
from abusedesk.domain.identity import Can, Principal
from abusedesk.domain.records import Finding
from abusedesk.domain.timeutil import as_utc
from abusedesk.intake.service import Accepted, IntakeService
from abusedesk.parsers.signup import signup_event
from abusedesk.runtime import Runtime
from abusedesk.screening.knowledge import DomainKnowledge, OperatorLists
from abusedesk.screening.mx import MxIntel, make_resolver
from abusedesk.screening.screen import AddressScreen, Verdict
from abusedesk.stages import FINDINGS_NEW
from abusedesk.store.db import transaction
from abusedesk.store.tables.bus import DetectorStateRow
from abusedesk.store.tables.inventory import AccountRow, CustomerRow
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

    def screen_for(self, by: Principal, address: str) -> Verdict:
        """``screen`` for a caller of the signup hook: its role must be allowed ``signup.screen``."""
        by.require(Can.SIGNUP_SCREEN)
        return self.screen(address)

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


#: the explicit state of re-screening: which (customer, address) was flagged under which knowledge
RESCREEN_DETECTOR = "screen-accounts"
RESCREEN_PARTITION = "accounts"


def rescreen_accounts(rt: Runtime) -> dict[str, Any]:
    """Re-check every customer contact and account address against the knowledge in force; a disposable one
    becomes a clause-2 finding for its customer (through ``findings.new`` to the case engine), once per address
    and knowledge version. Its state (``detector_state``, detector ``screen-accounts``) remembers what was
    flagged; an address that is ok again is forgotten, so it is flagged anew if it turns bad later."""
    screen = ScreeningService(rt).screen_
    policy = rt.policy
    now = rt.clock.now()
    clauses = policy.clauses_for_kind("disposable-email")
    checked = 0
    verdicts: dict[str, int] = {}
    new: list[Finding] = []
    with transaction(rt.sessions) as session:
        addresses: list[tuple[str, str, str]] = [
            (cid, email, "contact_email")
            for cid, email in session.execute(
                select(CustomerRow.id, CustomerRow.contact_email).where(CustomerRow.contact_email.is_not(None))
            )
            if email
        ]
        addresses += [
            (cid, email, f"account {aid}")
            for aid, cid, email in session.execute(select(AccountRow.id, AccountRow.customer_id, AccountRow.email))
        ]
        row = session.get(DetectorStateRow, (RESCREEN_DETECTOR, RESCREEN_PARTITION))
        flagged: dict[str, str] = dict((row.state if row is not None else {}).get("flagged", {}))
        seen: set[str] = set()
        for cid, email, where in sorted(addresses):
            checked += 1
            v = screen.screen(email)
            verdicts[v.verdict] = verdicts.get(v.verdict, 0) + 1
            key = f"{cid}|{email.lower()}"
            if v.verdict != "disposable":
                continue
            seen.add(key)
            if flagged.get(key) == v.knowledge:
                continue
            flagged[key] = v.knowledge
            new.append(
                Finding.create(
                    detector=RESCREEN_DETECTOR,
                    kind="disposable-email",
                    clauses=clauses,
                    group_key=f"account:{email.lower()}",
                    window_start=now,
                    window_end=now,
                    severity=policy.severity_for_kind("disposable-email"),
                    confidence=0.9,
                    summary=f"{where} of {cid} is {email}, a disposable address: {v.reason}; ask for another",
                    customer_id=cid,
                    evidence=({"address": email, "where": where, "screening": v.to_dict()},),
                )
            )
        flagged = {k: kn for k, kn in flagged.items() if k in seen}
        upsert(
            session,
            DetectorStateRow.__table__,
            [{"detector": RESCREEN_DETECTOR, "partition_key": RESCREEN_PARTITION, "state": {"flagged": flagged},
              "updated_at": now}],
            ["state", "updated_at"],
        )  # fmt: skip
        if new:
            payload = [f.to_dict() | {"policy_version": policy.version} for f in new]
            rt.bus.put(session, FINDINGS_NEW, {"findings": payload})
    rt.bus.flush()
    rt.drain()
    return {
        "checked": checked,
        "verdicts": verdicts,
        "findings": len(new),
        "flagged": [f.evidence[0]["address"] for f in new],
        "knowledge": screen.knowledge.version,
    }


def signup_outcome(rt: Runtime, raw_id: str) -> dict[str, Any]:
    """What became of one signup input: its status and issues, each signup's verdict, the findings it made."""
    from abusedesk.intake.reporters import reference_of
    from abusedesk.store.tables.cases import FindingRow
    from abusedesk.store.tables.intake import EventRow, RawInputRow

    with rt.sessions() as session:
        raw = session.get(RawInputRow, raw_id)
        events = list(session.scalars(select(EventRow).where(EventRow.raw_id == raw_id).order_by(EventRow.time)))
        ids = {e.id for e in events}
        found = [
            f for f in session.scalars(select(FindingRow).where(FindingRow.detector == "signup"))
            if ids & set(f.data.get("event_ids", []))
        ]  # fmt: skip
    return {
        "reference": reference_of(raw_id),
        "status": raw.status if raw is not None else "unknown",
        "issues": list((raw.issues if raw is not None else None) or []),
        "events": [
            {"email": e.data.get("source.account"), "verdict": "?", "rule": "?"} | _screened(e.data) for e in events
        ],
        "findings": [
            {"kind": f.kind, "clause": f.clauses[0], "customer": f.customer_id, "summary": f.summary} for f in found
        ],
    }


def _screened(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (data.get("extra") or {}).get("screening", {}).items() if k in ("verdict", "rule")}
