"""Flow files: AWS VPC flow logs (v2 default, custom field order, later versions' fields), nfdump CSV, CSV,
Parquet; bad records named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.telemetry.files import read_flow_file, sniff
from abusedesk.telemetry.schema import FLOW_SCHEMA, addr_text

pytestmark = pytest.mark.unit

# the shape of AWS's documented examples, on documentation addresses
VPC_V2 = """\
2 123456789010 eni-1235b8ca123456789 192.0.2.10 198.51.100.7 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK
2 123456789010 eni-1235b8ca123456789 192.0.2.10 198.51.100.8 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK
2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA
2 123456789010 eni-11111111111111111 2001:db8::1 2001:db8:1::2 1 2 17 1 60 1418530010 1418530010 ACCEPT OK
"""
VPC_V5 = """\
version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr \
pkt-dstaddr protocol bytes packets start end action tcp-flags log-status
5 vpc-1 subnet-1 i-1 eni-1 123 IPv4 192.0.2.10 198.51.100.7 40000 443 192.0.2.10 198.51.100.7 6 52 1 1620000000 \
1620000060 ACCEPT 2 OK
5 vpc-1 subnet-1 i-1 eni-1 123 IPv4 192.0.2.10 198.51.100.7 40001 443 192.0.2.10 198.51.100.7 6 1500 12 1620000000 \
1620000060 ACCEPT 19 OK
"""


def _rows(path: Path, fmt: str | None = None) -> list[dict[str, object]]:
    t = read_flow_file(path, fmt)
    assert t.schema == FLOW_SCHEMA
    out = t.to_pylist()
    for r in out:
        r["src_addr"], r["dst_addr"] = addr_text(r["src_addr"]), addr_text(r["dst_addr"])  # type: ignore[arg-type]
    return out


def test_vpc_v2_default_fields(tmp_path: Path) -> None:
    p = tmp_path / "vpc.log"
    p.write_text(VPC_V2)
    assert sniff(p) == "vpc"
    rows = _rows(p)
    assert len(rows) == 3  # NODATA carries no flow
    assert (rows[0]["src_addr"], rows[0]["dst_addr"], rows[0]["dst_port"], rows[0]["packets"], rows[0]["bytes"]) == (
        "192.0.2.10", "198.51.100.7", 22, 20, 4249,
    )  # fmt: skip
    assert int(rows[0]["time_start"].timestamp()) == 1418530010  # type: ignore[attr-defined]
    assert rows[2]["src_addr"] == "2001:db8::1" and rows[2]["proto"] == 17


def test_vpc_custom_order_and_later_fields(tmp_path: Path) -> None:
    p = tmp_path / "vpc5.log"
    p.write_text(VPC_V5)
    rows = _rows(p, "vpc")
    assert [(r["src_port"], r["packets"], r["bytes"], r["tcp_flags"]) for r in rows] == [
        (40000, 1, 52, 2), (40001, 12, 1500, 19),
    ]  # fmt: skip


def test_vpc_bad_record_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.log"
    p.write_text(VPC_V2.replace("198.51.100.8", "198.51.100.999"))
    with pytest.raises(ParseError) as e:
        read_flow_file(p, "vpc")
    assert "198.51.100.999" in e.value.message and e.value.line == 2
    p.write_text(VPC_V2.replace(" 20641 ", " 20641 x "))
    with pytest.raises(ParseError, match="15 fields"):
        read_flow_file(p, "vpc")


def test_our_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "flows.csv"
    p.write_text(
        "time_start,time_end,proto,src_addr,dst_addr,src_port,dst_port,tcp_flags,packets,bytes\n"
        "2026-11-27T21:29:05.022Z,1795814945029,6,192.0.2.1,198.51.100.7,5,80,2,1,60\n"
    )
    assert sniff(p) == "csv"
    (row,) = _rows(p)
    assert int(row["time_end"].timestamp() * 1000) == 1795814945029  # type: ignore[attr-defined]
    pq.write_table(read_flow_file(p), tmp_path / "flows.parquet")
    assert _rows(tmp_path / "flows.parquet") == [row]
    p.write_text("time_start,time_end,proto\n1,2,6\n")
    with pytest.raises(ParseError, match="lacks the columns"):
        read_flow_file(p)
    p.write_text("time_start,time_end,proto,src_addr,dst_addr,src_port,dst_port,tcp_flags,packets,bytes\n"
                 "yesterday,1,6,192.0.2.1,198.51.100.7,5,80,2,1,60\n")  # fmt: skip
    with pytest.raises(ParseError, match="time_start 'yesterday'") as e:
        read_flow_file(p)
    assert e.value.line == 2


def test_not_parquet(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 but not really")
    with pytest.raises(ParseError, match="not a readable Parquet"):
        read_flow_file(p)


@pytest.mark.corpus
def test_nfdump_csv_of_the_corpus(corpus: Path) -> None:
    t = read_flow_file(corpus / "flows" / "flows_v5.csv.gz")
    assert t.num_rows == 52026
    assert (t.schema.metadata or {}).get(b"skipped") is None
    t6 = read_flow_file(corpus / "flows" / "flows_ipfix.csv.gz")
    assert t6.num_rows == 52026 and t6.schema.metadata[b"skipped"] == b"8"  # nfdump abbreviated their IPv6
