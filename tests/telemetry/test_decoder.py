"""The decoder on datagrams built by the RFCs: templates, withdrawal, options, variable-length and enterprise
fields, IPv6, v9 and v5, sequence gaps, and broken datagrams counted and dropped, never raised."""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest

from abusedesk.telemetry.decoder import FlowDecoder
from abusedesk.telemetry.schema import addr_text
from tests.telemetry.exports import (
    V4_FIELDS,
    data_set,
    ipfix,
    ipfix_template_set,
    v4_record,
    v5,
    v9,
    v9_template,
    withdrawal_set,
)

pytestmark = pytest.mark.unit
T = 1_795_814_900_000
REC = v4_record("192.0.2.1", "198.51.100.7", T, T + 250, 1200, 3, 40000, 443)


def _rows(dec: FlowDecoder) -> list[dict[str, object]]:
    rows = dec.take().to_pylist()
    for r in rows:
        r["src_addr"] = addr_text(r["src_addr"])
        r["dst_addr"] = addr_text(r["dst_addr"])
    return rows


def test_ipfix_template_then_data_in_one_message_and_padding() -> None:
    dec = FlowDecoder()
    msg = ipfix([ipfix_template_set(300, V4_FIELDS), data_set(300, [REC, REC], pad=3)])
    assert dec.feed(msg, "192.0.2.250") == 2
    rows = _rows(dec)
    assert len(rows) == 2
    r = rows[0]
    assert (r["src_addr"], r["dst_addr"], r["src_port"], r["dst_port"]) == ("192.0.2.1", "198.51.100.7", 40000, 443)
    assert (r["proto"], r["tcp_flags"], r["packets"], r["bytes"], r["exporter"]) == (6, 2, 3, 1200, "192.0.2.250")
    assert int(r["time_start"].timestamp() * 1000) == T  # type: ignore[attr-defined]
    assert int(r["time_end"].timestamp() * 1000) == T + 250  # type: ignore[attr-defined]


def test_data_before_its_template_is_counted_not_decoded() -> None:
    dec = FlowDecoder()
    assert dec.feed(ipfix([data_set(300, [REC])]), "e") == 0
    assert dec.stats.no_template_sets == 1
    assert dec.feed(ipfix([ipfix_template_set(300, V4_FIELDS)], seq=0), "e") == 0
    assert dec.feed(ipfix([data_set(300, [REC])], seq=0), "e") == 1


def test_templates_are_per_exporter_and_observation_domain() -> None:
    dec = FlowDecoder()
    dec.feed(ipfix([ipfix_template_set(300, V4_FIELDS)], domain=1), "a")
    assert dec.feed(ipfix([data_set(300, [REC])], domain=2), "a") == 0  # another domain: unknown
    assert dec.feed(ipfix([data_set(300, [REC])], domain=1), "b") == 0  # another exporter: unknown
    assert dec.feed(ipfix([data_set(300, [REC])], domain=1), "a") == 1


def test_withdrawal_of_one_template_and_of_all() -> None:
    dec = FlowDecoder()
    dec.feed(ipfix([ipfix_template_set(300, V4_FIELDS), ipfix_template_set(301, V4_FIELDS)]), "e")
    dec.feed(ipfix([withdrawal_set(300)]), "e")
    assert dec.feed(ipfix([data_set(300, [REC])]), "e") == 0
    assert dec.feed(ipfix([data_set(301, [REC])]), "e") == 1
    dec.feed(ipfix([withdrawal_set(2)]), "e")  # template id 2 in a template set: all of this domain's templates
    assert dec.feed(ipfix([data_set(301, [REC])]), "e") == 0
    assert dec.stats.withdrawals >= 2


def test_a_redefined_template_applies_to_later_data_only() -> None:
    dec = FlowDecoder()
    dec.feed(ipfix([ipfix_template_set(300, V4_FIELDS), data_set(300, [REC])]), "e")
    swapped = [(12, 4), (8, 4), *V4_FIELDS[2:]]  # source and destination exchanged
    dec.feed(ipfix([ipfix_template_set(300, swapped), data_set(300, [REC])]), "e")
    rows = _rows(dec)
    assert sorted((r["src_addr"], r["dst_addr"]) for r in rows) == [
        ("192.0.2.1", "198.51.100.7"),
        ("198.51.100.7", "192.0.2.1"),
    ]


def test_enterprise_fields_are_skipped_by_their_length() -> None:
    dec = FlowDecoder()
    fields = [(8, 4), (100, 6, 29305), (12, 4), *V4_FIELDS[2:]]
    rec = REC[:4] + b"ENTPRS" + REC[4:]
    dec.feed(ipfix([ipfix_template_set(300, fields), data_set(300, [rec])]), "e")
    (row,) = _rows(dec)
    assert (row["src_addr"], row["dst_addr"], row["dst_port"]) == ("192.0.2.1", "198.51.100.7", 443)


def test_variable_length_fields() -> None:
    dec = FlowDecoder()
    fields = [(8, 4), (82, 0xFFFF), (12, 4), *V4_FIELDS[2:]]  # interfaceName, variable length
    short = REC[:4] + b"\x04eth0" + REC[4:]
    long_name = b"x" * 300
    long = REC[:4] + b"\xff" + struct.pack("!H", len(long_name)) + long_name + REC[4:]
    assert dec.feed(ipfix([ipfix_template_set(300, fields), data_set(300, [short, long])]), "e") == 2
    rows = _rows(dec)
    assert [(r["src_addr"], r["dst_addr"], r["bytes"]) for r in rows] == [("192.0.2.1", "198.51.100.7", 1200)] * 2
    assert dec.stats.varlen_records == 2


def test_options_template_gives_uptime_base() -> None:
    dec = FlowDecoder()
    boot = T - 3_600_000
    opts = ipfix_template_set(256, [(149, 4), (160, 8)], set_id=3, scope=1)
    orec = struct.pack("!IQ", 1, boot)
    fields = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)]
    rec = REC[:8] + struct.pack("!II", 5000, 6000) + REC[24:]
    dec.feed(ipfix([opts, data_set(256, [orec]), ipfix_template_set(300, fields)]), "e")
    dec.feed(ipfix([data_set(300, [rec])]), "e")
    (row,) = _rows(dec)
    assert int(row["time_start"].timestamp() * 1000) == boot + 5000  # type: ignore[attr-defined]
    assert dec.stats.options_records == 1


def test_ipv6_flows() -> None:
    dec = FlowDecoder()
    fields = [(27, 16), (28, 16), (152, 8), (153, 8), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)]
    rec = (ipaddress.IPv6Address("2001:db8::1").packed + ipaddress.IPv6Address("2001:db8:1::9").packed
           + REC[8:])  # fmt: skip
    dec.feed(ipfix([ipfix_template_set(400, fields), data_set(400, [rec])]), "e")
    (row,) = _rows(dec)
    assert (row["src_addr"], row["dst_addr"]) == ("2001:db8::1", "2001:db8:1::9")


def test_sequence_gaps_rfc_and_inclusive_numbering() -> None:
    rfc = FlowDecoder()
    tmpl = ipfix_template_set(300, V4_FIELDS)
    rfc.feed(ipfix([tmpl, data_set(300, [REC] * 3)], seq=0), "e")
    rfc.feed(ipfix([data_set(300, [REC] * 2)], seq=3), "e")
    rfc.feed(ipfix([data_set(300, [REC])], seq=5 + 4), "e")  # 4 records lost
    assert rfc.stats.lost_records == 4
    incl = FlowDecoder()  # softflowd: the number counts this message's records too
    incl.feed(ipfix([tmpl, data_set(300, [REC] * 3)], seq=3), "e")
    incl.feed(ipfix([data_set(300, [REC] * 2)], seq=5), "e")
    incl.feed(ipfix([data_set(300, [REC])], seq=6), "e")
    assert incl.stats.lost_records == 0
    v9dec = FlowDecoder()
    t9 = v9_template(256, [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)])
    v9dec.feed(v9([t9], seq=10), "e")
    v9dec.feed(v9([t9], seq=13), "e")
    assert v9dec.stats.lost_datagrams == 2


def test_v9_times_from_uptime_and_header() -> None:
    dec = FlowDecoder()
    t9 = v9_template(256, [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)])
    rec = REC[:8] + struct.pack("!II", 95_000, 99_000) + REC[24:]
    dec.feed(v9([t9, data_set(256, [rec], pad=2)], uptime=100_000, secs=1_795_814_900), "e")
    (row,) = _rows(dec)
    assert int(row["time_start"].timestamp() * 1000) == 1_795_814_900_000 - 5_000  # type: ignore[attr-defined]
    assert int(row["time_end"].timestamp() * 1000) == 1_795_814_900_000 - 1_000  # type: ignore[attr-defined]


def test_v5() -> None:
    dec = FlowDecoder()
    dec.feed(v5([("192.0.2.1", "198.51.100.7", 1234, 22, 4, 240)] * 2, seq=0), "e")
    dec.feed(v5([("192.0.2.1", "198.51.100.7", 1235, 22, 4, 240)], seq=7), "e")  # 5 flows lost
    rows = _rows(dec)
    assert len(rows) == 3
    assert rows[0]["dst_port"] == 22 and rows[0]["packets"] == 4 and rows[0]["tcp_flags"] == 0x12
    assert rows[0]["input_if"] == 3
    assert dec.stats.lost_records == 5


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\x00", "short header"),
        (b"\x00\x07" + bytes(30), "unknown version"),
        (ipfix([ipfix_template_set(300, V4_FIELDS)])[:-3], "message length mismatch"),
        (struct.pack("!HHIII", 10, 24, 0, 0, 1) + struct.pack("!HH", 300, 2) + bytes(4), "set length out of bounds"),
        (ipfix([struct.pack("!HH", 300, 40) + bytes(20)]), "set length out of bounds"),
        (ipfix([ipfix_template_set(300, [(8, 4)])[:-2]]), "set length out of bounds"),
        (ipfix([struct.pack("!HHHH", 2, 12, 300, 3) + struct.pack("!HH", 8, 4)]), "truncated template"),
        (ipfix([struct.pack("!HHHHHH", 2, 12, 300, 1, 8, 0)]), "zero-length template field"),
        (ipfix([struct.pack("!HHHHHH", 2, 12, 7, 1, 8, 4)]), "template id below 256"),
        (v5([("192.0.2.1", "198.51.100.7", 1, 2, 3, 4)])[:-10], "v5 datagram shorter than its count"),
        (v9([struct.pack("!HH", 0, 8) + struct.pack("!HH", 12, 1)]), "bad v9 template header"),
    ],
)
def test_broken_datagrams_are_dropped_with_a_reason(datagram: bytes, reason: str) -> None:
    dec = FlowDecoder()
    assert dec.feed(datagram, "e") == 0
    assert dec.stats.dropped == {reason: 1}
    assert dec.take().num_rows == 0


def test_a_broken_datagram_teaches_no_template() -> None:
    dec = FlowDecoder()
    good = ipfix_template_set(300, V4_FIELDS)
    dec.feed(ipfix([good, struct.pack("!HH", 300, 99)]), "e")  # the second set overruns: all dropped
    assert dec.feed(ipfix([data_set(300, [REC])]), "e") == 0


def test_random_mutations_never_raise() -> None:
    rnd = random.Random(12)
    base = [
        ipfix([ipfix_template_set(300, V4_FIELDS), data_set(300, [REC] * 3)]),
        ipfix([ipfix_template_set(300, [(8, 4), (82, 0xFFFF), (12, 4)], set_id=2), data_set(300, [b"1234\x02ab5678"])]),
        v9([v9_template(256, [(8, 4), (12, 4)]), data_set(256, [bytes(8)])]),
        v5([("192.0.2.1", "198.51.100.7", 1, 2, 3, 4)]),
    ]
    dec = FlowDecoder()
    for _ in range(3000):
        b = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            i = rnd.randrange(len(b))
            if op < 0.6:
                b[i] = rnd.randrange(256)
            elif op < 0.8:
                del b[i:]
                if not b:
                    b = bytearray(b"\x00")
            else:
                b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        dec.feed(bytes(b), rnd.choice(["a", "b"]))
        if rnd.random() < 0.05:
            dec.take()
    dec.take()
    assert dec.stats.datagrams == 3000
