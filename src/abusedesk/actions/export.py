"""The evidence bundle for officials (AUP section 3): everything about one case, checkable with standard tools.

``export_case(rt, "AD-1234", Path("out.zip"))`` (or a directory) writes::

    README.txt          what the bundle is and how to check it
    case.json           the case record and its findings
    timeline.json       transitions, actions, notices, notes in time order
    audit.json          the audit-log entries about the case, its actions, notices and evidence, with their
                        hashes, and the head of the whole chain at export time
    policy/<version>.txt          the policy file in force when the case opened (from policy_versions)
    policy/clause-<id>.txt        the verbatim text of every clause the case cites
    raw/<sha256>        the raw inputs (complaints, feed files) the case's events came from
    evidence/<sha256>   evidence blobs linked to the case (e.g. every notice exactly as sent)
    SHA256SUMS          one line per file: ``sha256sum -c SHA256SUMS`` checks them all

Raw inputs and evidence are content-addressed, so their file names are their SHA-256 too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from abusedesk.actions.base import ActionRequest, ActionResult, Adapter
from abusedesk.domain.actions import AdapterFamily, kinds_of
from abusedesk.domain.errors import ConfigError, NotFound
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import audit
from abusedesk.evidence.blobs import EvidenceStore, evidence_for_case
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import (
    ActionRow,
    CaseNoteRow,
    CaseRow,
    CaseTransitionRow,
    FindingRow,
    NoticeRow,
)
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.tables.policy import PolicyVersionRow

_README = """\
Evidence bundle for case {ref}
===============================

Exported {at} by the abuse desk of {provider} ({who}).

This bundle documents a suspected breach of the Acceptable Use Policy (clause {clause}: {clause_title}),
for disclosure to officials, regulators or other appropriate third parties as section 3 of the policy allows.

Contents
  case.json         the case: customer, service, clause, state, dates, and its {findings} finding(s)
  timeline.json     what happened and who did it: state changes, actions, notices sent, analyst notes
  audit.json        the matching entries of our append-only, hash-chained audit log, and the chain head
                    at export time ({head})
  policy/           the policy text in force when the case opened ({version}), and each cited clause
  raw/              {raw} raw input(s) as received (complaints, feed files), named by their SHA-256
  evidence/         {evidence} evidence file(s) (e.g. each notice exactly as sent), named by their SHA-256
  SHA256SUMS        the SHA-256 of every other file in this bundle

How to check it
  In the bundle's directory (unzip it first if you received a .zip), run:

      sha256sum -c SHA256SUMS

  Every line must say OK. Files under raw/ and evidence/ are also named by their own SHA-256, so
  `sha256sum raw/* evidence/*` shows each name next to its matching hash.
"""


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    case_ref: str
    files: int
    sha256sums: str  # the SHA-256 of the SHA256SUMS file, a single value to quote in correspondence

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "case_ref": self.case_ref, "files": self.files, "sha256sums": self.sha256sums}


def find_case(session: Session, case: str) -> CaseRow:
    row = session.scalar(select(CaseRow).where(or_(CaseRow.id == case, CaseRow.ref == case.upper())))
    if row is None:
        raise NotFound(f"case {case!r} does not exist (give its id or its AD-... reference; `abusedesk case list`)")
    return row


def _t(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _row(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        value = getattr(obj, col.key)
        out[col.key] = iso(value) if isinstance(value, datetime) else value
    return out


def export_case(rt: Runtime, case: str, out: Path, *, exported_by: str = "svc:actions") -> ExportResult:
    """Write the bundle of ``case`` to ``out`` (a directory, or a file ending in ``.zip``)."""
    as_zip = out.suffix.lower() == ".zip"
    if not as_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty directory; give a new directory or a .zip file")
    now = rt.clock.now()
    files: dict[str, bytes] = {}
    with rt.sessions() as s:
        c = find_case(s, case)
        findings = list(s.scalars(select(FindingRow).where(FindingRow.case_id == c.id).order_by(FindingRow.window_end)))
        transitions = list(
            s.scalars(select(CaseTransitionRow).where(CaseTransitionRow.case_id == c.id).order_by(CaseTransitionRow.id))
        )
        actions = list(s.scalars(select(ActionRow).where(ActionRow.case_id == c.id).order_by(ActionRow.created_at)))
        notes = list(s.scalars(select(CaseNoteRow).where(CaseNoteRow.case_id == c.id).order_by(CaseNoteRow.id)))
        notices = [
            n
            for n in s.scalars(
                select(NoticeRow).where(NoticeRow.customer_id == c.customer_id).order_by(NoticeRow.due_at)
            )
            if c.id in (n.case_ids or [])
        ]
        evidence = evidence_for_case(s, c.id)
        event_ids = sorted({e for f in findings for e in (f.data or {}).get("event_ids", [])})
        raw_ids: list[str] = []
        for i in range(0, len(event_ids), 500):
            raw_ids += [
                r for r in s.scalars(select(EventRow.raw_id).where(EventRow.id.in_(event_ids[i : i + 500]))) if r
            ]
        raw_rows = list(s.scalars(select(RawInputRow).where(RawInputRow.id.in_(sorted(set(raw_ids))))))
        subjects = {c.id, *(a.id for a in actions), *(n.id for n in notices), *(e.sha256 for e in evidence)}
        entries = [
            _row(r)
            for r in s.scalars(select(AuditRow).where(AuditRow.subject_id.in_(sorted(subjects))).order_by(AuditRow.seq))
        ]
        head = s.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
        pv = s.get(PolicyVersionRow, c.policy_version)

        case_doc = _row(c) | {
            "findings": [_row(f) for f in findings],
            "evidence": [_row(e) for e in evidence],
            "raw_inputs": [_row(r) for r in raw_rows],
        }
        timeline: list[dict[str, Any]] = []
        timeline += [
            {
                "at": _t(t.at),
                "type": "transition",
                "from": t.from_state,
                "to": t.to_state,
                "actor": t.actor,
                "reason": t.reason,
            }
            for t in transitions
        ]
        timeline += [
            {
                "at": _t(a.created_at),
                "type": "action",
                "id": a.id,
                "kind": a.kind,
                "status": a.status,
                "proposed_by": a.proposed_by,
                "approved_by": a.approved_by,
                "attempts": a.attempts,
                "error": a.error,
                "updated_at": _t(a.updated_at),
                "result": a.result,
                "dry_run": a.dry_run,
            }
            for a in actions
        ]
        timeline += [
            {
                "at": _t(n.sent_at or n.due_at),
                "type": "notice",
                "id": n.id,
                "kind": n.kind,
                "to": n.contact,
                "status": n.status,
                "message_id": n.message_id,
                "subject": n.subject,
                "attempts": n.attempts,
                "error": n.error,
            }
            for n in notices
        ]
        timeline += [{"at": _t(n.at), "type": "note", "author": n.author, "text": n.text} for n in notes]
        timeline.sort(key=lambda e: (e["at"] or "", e["type"]))

    cites = list(dict.fromkeys([c.clause, *(x for a in actions for x in (a.payload or {}).get("cites", []))]))
    clause_title = c.clause
    if pv is not None:
        files[f"policy/{_safe(pv.version)}.txt"] = pv.text.encode("utf-8")
        from abusedesk.policy.versions import get_version

        try:
            policy = get_version(rt, pv.version)
        except (NotFound, ConfigError) as exc:
            files["policy/CLAUSES-UNAVAILABLE.txt"] = f"{exc}\n".encode()
        else:
            for cid in cites:
                try:
                    clause = policy.clause(cid)
                except NotFound:
                    continue
                if cid == c.clause:
                    clause_title = clause.title
                files[f"policy/clause-{_safe(cid)}.txt"] = (
                    f"Clause {clause.id}: {clause.title}\n(policy {pv.version})\n\n{clause.text.strip()}\n"
                ).encode()
    else:
        files["policy/VERSION-MISSING.txt"] = (
            f"policy version {c.policy_version} is not in the policy_versions table of this abuse desk\n".encode()
        )

    for r in raw_rows:
        files[f"raw/{r.id}"] = rt.raw_store.get(r.blob)
    store = EvidenceStore(rt.settings.evidence_dir)
    for e in evidence:
        files[f"evidence/{e.sha256}"] = store.get(e.sha256)
    head_text = f"{head[0]}:{head[1]}" if head else f"0:{audit.GENESIS}"
    files["case.json"] = _json(case_doc)
    files["timeline.json"] = _json(timeline)
    files["audit.json"] = _json({"head_at_export": head_text, "entries": entries})
    provider = rt.settings.notify_from.rpartition("@")[2] or "the provider"
    files["README.txt"] = _README.format(
        ref=c.ref,
        at=iso(now),
        provider=provider,
        who=exported_by,
        clause=c.clause,
        clause_title=clause_title,
        findings=len(findings),
        head=head_text,
        version=c.policy_version,
        raw=len(raw_rows),
        evidence=len(evidence),
    ).encode()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode()
    _write(files, out, as_zip)
    with rt.sessions() as s, s.begin():
        audit.append(
            s,
            at=now,
            actor=exported_by,
            action="case.exported",
            subject_type="case",
            subject_id=c.id,
            payload={"ref": c.ref, "to": str(out), "files": len(files), "sha256sums": _sha(files["SHA256SUMS"])},
        )
    return ExportResult(out, c.ref, len(files), _sha(files["SHA256SUMS"]))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8")


def _write(files: dict[str, bytes], out: Path, as_zip: bool) -> None:
    """Write into a temporary sibling, then rename: a reader never sees half a bundle."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if as_zip:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-export-", suffix=".zip")
        try:
            with open(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in sorted(files):
                    zf.writestr(name, files[name])
            Path(tmp).replace(out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    tmpdir = Path(tempfile.mkdtemp(dir=out.parent, prefix=".tmp-export-"))
    try:
        for name, data in files.items():
            path = tmpdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmpdir.replace(out)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise


class ReportOfficialsAction(Adapter):
    """Carries out an approved ``report-officials`` action by writing the case's evidence bundle.

    The bundle goes to ``<data_dir>/exports/<case ref>-<action id>.zip``; the result names the file and the
    SHA-256 of its SHA256SUMS, which the analyst quotes when handing the bundle to the authority. Delivery itself
    is left to a person: who the right official is differs per case and country.
    """

    name = "report_officials_bundle"
    kinds: ClassVar[tuple[str, ...]] = kinds_of(AdapterFamily.OFFICIALS)

    def __init__(self, params: BaseModel | None = None, *, runtime: Runtime | None = None) -> None:
        super().__init__(params)
        self.rt = runtime

    def apply(self, request: ActionRequest, *, dry_run: bool = False) -> ActionResult:
        if self.rt is None:
            return ActionResult(False, "report_officials_bundle needs the runtime (built by the action runner)")
        ref = str(request.payload.get("case_ref") or request.case_id)
        out = self.rt.settings.data_dir / "exports" / f"{_safe(ref)}-{_safe(request.action_id)}.zip"
        if dry_run:
            return ActionResult(
                True,
                f"dry run: would write the evidence bundle of {ref} to {out}",
                response={"dry_run": True, "path": str(out)},
            )
        result = export_case(self.rt, request.case_id, out, exported_by=f"action:{request.action_id}")
        return ActionResult(
            True,
            f"evidence bundle of {ref} written to {out} ({result.files} files); hand it to the authority",
            external_ref=result.sha256sums,
            response=result.to_dict(),
        )
