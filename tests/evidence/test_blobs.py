"""Evidence blobs: content-addressed on disk, who/when/where recorded once, linked to cases, audited."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from abusedesk.cases.engine import CaseEngine
from abusedesk.domain.errors import NotFound
from abusedesk.evidence import audit
from abusedesk.evidence.blobs import EvidenceStore, check_blob, evidence_for_case, store_evidence
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow
from abusedesk.store.tables.evidence import AuditRow, EvidenceRow
from tests.cases.support import finding


def _case(rt: Runtime) -> str:
    CaseEngine(rt).ingest([finding(rt.policy, 0)])
    with rt.sessions() as s:
        return s.scalars(select(CaseRow.id)).one()


def test_store_link_and_read_back(runtime: Runtime) -> None:
    case_id = _case(runtime)
    store = EvidenceStore(runtime.settings.evidence_dir)
    data = b"sample of flow rows 192.0.2.7 -> 198.51.100.0/24\n"
    with runtime.sessions() as s, s.begin():
        first = store_evidence(
            s,
            store,
            data,
            media_type="text/csv",
            collected_by="detector:portscan",
            collected_at=runtime.clock.now(),
            origin="raw:abc",
            filename="sample.csv",
            case_id=case_id,
        )
    assert first.new
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    path = runtime.settings.evidence_dir / first.sha256[:2] / first.sha256
    assert path.read_bytes() == data
    assert check_blob(store, first.sha256)

    with runtime.sessions() as s, s.begin():
        again = store_evidence(
            s,
            store,
            data,
            media_type="text/plain",
            collected_by="analyst:bob",
            collected_at=runtime.clock.now(),
            origin="upload",
            case_id=case_id,
        )
    assert not again.new
    with runtime.sessions() as s:
        row = s.get(EvidenceRow, first.sha256)
        assert row is not None
        assert (row.collected_by, row.origin, row.media_type) == ("detector:portscan", "raw:abc", "text/csv")
        assert [r.sha256 for r in evidence_for_case(s, case_id)] == [first.sha256]
        actions = s.scalars(select(AuditRow.action).where(AuditRow.action.like("evidence.%")).order_by(AuditRow.seq))
        assert actions.all() == ["evidence.stored", "evidence.linked", "evidence.collected-again"]
        assert audit.verify(s).ok


def test_altered_blob_on_disk_is_detected(runtime: Runtime) -> None:
    store = EvidenceStore(runtime.settings.evidence_dir)
    sha, _ = store.put(b"original")
    store.path_for(sha).write_bytes(b"tampered")
    assert not check_blob(store, sha)
    with pytest.raises(NotFound, match="not in the evidence store"):
        store.get("0" * 64)
