"""The NATS JetStream bus: what ``abusedesk worker --stage STAGE`` reads from and writes to.

Layout on the server:

- one stream, ``ABUSEDESK``, holding every subject under ``abusedesk.>`` (limits retention, kept ``max_age``);
  both names are settings (``nats_stream``, ``nats_subject_prefix``), so deployments can share one server;
- a bus subject ``S`` (``raw.stored``, ``events.parsed`` ...) is published as ``abusedesk.S.<slot>``: the slot
  (0 .. ``slots``-1) is the CRC-32 of the message's partition key if it has one, else of its message id;
- messages reach the stream through the outbox (``bus/base.py``): a writer puts them in its transaction and
  ``relay_pending`` publishes them after the commit with ``Nats-Msg-Id`` = ``ob:<outbox seq>``, so a row
  relayed twice is de-duplicated by JetStream within ``duplicate_window``;
- each stage reads through its own durable pull consumer with explicit ack: ``parse`` (filter
  ``abusedesk.raw.stored.*``, all slots; any number of worker processes share it), or, for a partitioned stage,
  one durable per owned slot (``detect_s3``, filter ``abusedesk.events.attributed.3``), so a stateful detector
  always sees the same subjects on the same worker;
- a message is acked only after its handler returned; a failure is nak'ed with a backoff delay and redelivered;
  after ``max_attempts`` deliveries it is published to ``abusedesk.dlq.S`` with payload, error and traceback,
  and only then acked, so nothing is lost between the two.

All of nats-py is asyncio; this class runs one event loop in a daemon thread and offers the synchronous
``Bus`` interface on top, so the stages (plain synchronous code) run unchanged in the calling thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import zlib
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from sqlalchemy import delete, select

from abusedesk.bus.base import BATCH_KEYS, RELAY, Bus
from abusedesk.bus.deadletters import StoredDeadLetter, dead_letter_id
from abusedesk.domain.errors import ConfigError, NotFound, SourceUnavailable
from abusedesk.domain.ids import canonical_json, stable_id
from abusedesk.store.tables.bus import OutboxRow

log = logging.getLogger(__name__)
T = TypeVar("T")

DLQ_PREFIX = "dlq"


def message_id(subject: str, message: dict[str, Any]) -> str:
    """The ``Nats-Msg-Id`` of a message: the same subject and content always give the same id."""
    return stable_id("msg", subject, message)


def slot_of(message: dict[str, Any], msg_id: str, slots: int) -> int:
    """The partition slot: by ``partition_key`` when the message has one, else spread by message id."""
    key = message.get("partition_key")
    basis = str(key) if key is not None else msg_id
    return zlib.crc32(basis.encode()) % slots


def durable_name(subject: str, slot: int | None = None) -> str:
    base = subject.replace(".", "_")
    return base if slot is None else f"{base}_s{slot}"


@dataclass(frozen=True, slots=True)
class Partition:
    """Worker ``index`` of ``count`` owns the slots ``s`` with ``s % count == index``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``"2/4"`` → the third of four workers."""
        try:
            index_text, count_text = text.split("/", 1)
            part = cls(int(index_text), int(count_text))
        except ValueError:
            raise ConfigError(f"partition {text!r} is not INDEX/COUNT such as 0/4", field="partition") from None
        if part.count < 1 or not 0 <= part.index < part.count:
            raise ConfigError(f"partition {text!r}: INDEX must be in 0..COUNT-1", field="partition")
        return part

    def slots(self, total: int) -> list[int]:
        if self.count > total:
            raise ConfigError(
                f"partition {self.index}/{self.count}: more workers than the {total} slots of the bus",
                field="partition",
            )
        return [s for s in range(total) if s % self.count == self.index]


class Delivery:
    """One fetched message: the worker acks it, retries it later, or dead-letters it."""

    def __init__(self, bus: NatsBus, subject: str, msg: Msg) -> None:
        self.bus = bus
        self.subject = subject
        self._msg = msg
        self.message: dict[str, Any] = json.loads(msg.data)
        meta = msg.metadata
        self.attempt: int = meta.num_delivered
        self.stream_seq: int = meta.sequence.stream
        headers = msg.headers or {}
        #: the publisher's Nats-Msg-Id: what the stage ledger remembers as handled
        self.message_id: str = str(headers.get("Nats-Msg-Id") or f"seq:{self.stream_seq}")

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.bus.max_attempts

    def ack(self) -> None:
        self.bus._run(self._msg.ack_sync(timeout=self.bus.timeout))

    def retry(self) -> float:
        """Nak with the backoff delay for this attempt; returns the delay in seconds."""
        backoff = self.bus.backoff
        delay = backoff[min(self.attempt, len(backoff)) - 1] if backoff else 0.0
        self.bus._run(self._msg.nak(delay=delay))
        return delay

    def dead_letter(self, error: str, traceback_text: str) -> None:
        """Publish to ``abusedesk.dlq.<subject>`` first, then ack: a crash in between only duplicates."""
        self.bus.publish_dead_letter(self.subject, self.message, error, traceback_text, self.attempt, self.stream_seq)
        self.ack()

    @contextmanager
    def working(self) -> Iterator[None]:
        """While the block runs, tell JetStream every third of the ack wait that the message is in progress,
        so a long handler (a large feed file) is not redelivered to another worker half-way."""
        done = threading.Event()
        interval = max(self.bus.ack_wait / 3, 0.05)

        def beat() -> None:
            while not done.wait(interval):
                try:
                    self.bus._run(self._msg.in_progress())
                except SourceUnavailable as exc:
                    log.warning("in-progress signal for a message on %s failed: %s", self.subject, exc.message)

        thread = threading.Thread(target=beat, name="abusedesk-nats-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(self.bus.timeout)

    def in_progress(self) -> None:
        self.bus._run(self._msg.in_progress())

    def release(self) -> None:
        """Give the message back at once (the worker is stopping on a ConfigError)."""
        self.bus._run(self._msg.nak())


async def _shutdown(nc: Client | None) -> None:
    if nc is not None:
        await nc.close()
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class NatsBus(Bus):
    """JetStream stream ``stream`` over ``<prefix>.>``; see the module docstring for the layout."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "ABUSEDESK",
        prefix: str = "abusedesk",
        slots: int = 16,
        max_attempts: int = 5,
        backoff: Sequence[float] = (1.0, 5.0, 30.0, 120.0),
        ack_wait: float = 300.0,
        duplicate_window: float = 3600.0,
        max_age: float = 14 * 86400.0,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.slots = slots
        self.max_attempts = max_attempts
        self.backoff = tuple(backoff)
        self.ack_wait = ack_wait
        self.duplicate_window = duplicate_window
        self.max_age = max_age
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], *, expect_timeout: bool = False) -> T:
        """Run ``coro`` on the bus's loop; a lost connection becomes SourceUnavailable (retryable).

        ``NotFoundError`` passes through (callers handle it), and so does a timeout when ``expect_timeout``
        (a fetch that found nothing).
        """
        loop = self._ensure_loop()
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(self.timeout + 30)
        except nats.js.errors.NotFoundError:
            raise
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            if expect_timeout:
                raise
            raise SourceUnavailable(f"NATS at {self.url} did not answer in time ({type(exc).__name__})") from exc
        except (nats.errors.Error, OSError) as exc:
            raise SourceUnavailable(f"NATS at {self.url}: {type(exc).__name__}: {exc}") from exc

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="abusedesk-nats", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def connect(self) -> JetStreamContext:
        """Connect and make sure the stream exists (idempotent); called on first use."""
        if self._js is not None:
            return self._js
        self._run(self._connect())
        assert self._js is not None
        return self._js

    async def _connect(self) -> None:
        if self._js is not None:
            return
        try:
            nc = await nats.connect(
                self.url,
                connect_timeout=self.timeout,
                max_reconnect_attempts=2,  # for the first connect: fail fast with a clear error
                reconnect_time_wait=0.2,
                error_cb=self._on_error,
            )
        except (OSError, nats.errors.Error) as exc:
            raise SourceUnavailable(
                f"cannot connect to NATS at {self.url} (setting nats_url): {exc}; is nats-server -js running?"
            ) from None
        # once connected, a worker rides out a server restart: reconnect for ever
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 2
        js = nc.jetstream(timeout=self.timeout)
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
        )
        try:
            await js.stream_info(self.stream)
            await js.update_stream(config)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                # another worker created the stream between our look and our add: use it; anything else (another
                # stream already holds these subjects) is a setting to fix
                try:
                    await js.stream_info(self.stream)
                except nats.js.errors.NotFoundError:
                    await nc.close()
                    raise ConfigError(
                        f"NATS at {self.url}: cannot create stream {self.stream} for subjects {self.prefix}.> "
                        f"({exc.description}); another stream already takes them: give each deployment its own "
                        "nats_stream and nats_subject_prefix",
                        field="nats_subject_prefix",
                    ) from None
                await js.update_stream(config)
        except nats.js.errors.ServiceUnavailableError:
            await nc.close()
            raise ConfigError(
                f"NATS at {self.url} has JetStream disabled; start nats-server with -js", field="nats_url"
            ) from None
        self._nc, self._js = nc, js

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS connection to %s: %s: %s", self.url, type(exc).__name__, exc)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        nc = self._nc
        self._nc = self._js = None
        self._subs.clear()
        try:
            # close, not drain: every message this process took is acked or nak'ed already, and a drain waits
            # on the pull subscriptions' pending fetches
            asyncio.run_coroutine_threadsafe(_shutdown(nc), loop).result(self.timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("closing the NATS connection to %s: %s", self.url, exc)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(self.timeout)
        loop.close()

    # -- subjects ---------------------------------------------------------------------------------------------

    def wire_subject(self, subject: str, slot: int) -> str:
        return f"{self.prefix}.{subject}.{slot}"

    def dlq_subject(self, subject: str) -> str:
        return f"{self.prefix}.{DLQ_PREFIX}.{subject}"

    # -- Bus ----------------------------------------------------------------------------------------------------

    def consumers_of(self, subject: str) -> tuple[str, ...]:
        if subject.split(".", 1)[0] == DLQ_PREFIX:
            raise ConfigError(f"bus subject {subject!r}: the first token 'dlq' is reserved for dead letters")
        return (RELAY,)

    def flush(self) -> None:
        """Relay what this process's commits put into the outbox (see ``relay_pending``)."""
        self.relay_pending()

    def relay_pending(self, *, limit: int = 1000) -> int:
        """Publish outbox rows to JetStream, then delete them; returns how many were relayed.

        Each row's ``Nats-Msg-Id`` is ``ob:<seq>:<created µs>``: a row relayed twice (two processes, or a crash
        between the publish and the delete) is dropped by JetStream's duplicate window. Rows go in sequence order.
        """
        relayed = 0
        while True:
            with self.sessions() as s:
                rows = s.execute(
                    select(
                        OutboxRow.seq,
                        OutboxRow.subject,
                        OutboxRow.partition_key,
                        OutboxRow.payload,
                        OutboxRow.created_at,
                    )
                    .where(OutboxRow.consumer == RELAY)
                    .order_by(OutboxRow.seq)
                    .limit(limit)
                ).all()
            if not rows:
                return relayed
            self.connect()
            batch: list[tuple[str, dict[str, Any], str]] = []
            for seq, subject, key, payload, created in rows:
                parts = self._parts(subject, dict(payload))
                # the row's sequence and time: the same for every relay of this row, never for another row (a
                # database restored from a backup reuses sequence numbers, not their times)
                base = f"ob:{seq}:{int(created.timestamp() * 1e6)}"
                for i, part in enumerate(parts):
                    msg_id = base if len(parts) == 1 else f"{base}:{i}"
                    basis = key if key is not None else msg_id
                    slot = zlib.crc32(str(basis).encode()) % self.slots
                    batch.append((self.wire_subject(subject, slot), part, msg_id))
            self._run(self._publish_all(batch))
            with self.sessions.begin() as s:
                s.execute(delete(OutboxRow).where(OutboxRow.seq.in_([r[0] for r in rows])))
            relayed += len(rows)
            if len(rows) < limit:
                return relayed

    async def _publish_all(self, batch: list[tuple[str, dict[str, Any], str]]) -> None:
        """Publish many messages at once and wait for every ack (one round trip's latency, not one per message)."""
        js = self._js
        assert js is not None
        acks = await asyncio.gather(
            *(
                js.publish(wire, canonical_json(payload), stream=self.stream, headers={"Nats-Msg-Id": msg_id})
                for wire, payload, msg_id in batch
            )
        )
        del acks

    def _parts(self, subject: str, message: dict[str, Any]) -> list[dict[str, Any]]:
        """``message`` itself, or, when its JSON is over the payload limit, halves of its batch list.

        Every stage's batch (``events``, ``findings``) is a list of independent items, so a batch may be cut;
        the cut is deterministic, so a re-publish gives the same parts and the same message ids.
        """
        limit = self.max_payload - 4096  # headroom for the headers
        if len(canonical_json(message)) <= limit:
            return [message]
        key = next((k for k in BATCH_KEYS if isinstance(message.get(k), list) and len(message[k]) > 1), None)
        if key is None:
            raise ConfigError(
                f"a message on {subject} of {len(canonical_json(message))} bytes is over the NATS server's "
                f"max_payload of {self.max_payload} bytes and has no batch to split; raise max_payload in the "
                "nats-server configuration",
                field="nats_url",
            )
        items = message[key]
        half = len(items) // 2
        return [
            *self._parts(subject, {**message, key: items[:half]}),
            *self._parts(subject, {**message, key: items[half:]}),
        ]

    @property
    def max_payload(self) -> int:
        """The server's largest message (from its INFO; 1 MiB by default)."""
        self.connect()
        assert self._nc is not None
        return int(self._nc.max_payload)

    def _publish(self, wire: str, payload: dict[str, Any], msg_id: str) -> bool:
        """Publish and wait for the stream's ack; returns False when JetStream saw the id before (duplicate)."""
        js = self.connect()
        ack = self._run(js.publish(wire, canonical_json(payload), stream=self.stream, headers={"Nats-Msg-Id": msg_id}))
        return not ack.duplicate

    # -- consuming ----------------------------------------------------------------------------------------------

    def consumers(
        self, subject: str, partition: Partition | None = None, *, name: str | None = None
    ) -> list[tuple[str, str]]:
        """(durable name, filter subject) pairs the worker of stage ``name`` (default: named after the subject)
        reads ``subject`` through: each stage has its own consumers, so two stages of one subject both get it."""
        base = name or subject
        if partition is None:
            return [(durable_name(base), f"{self.prefix}.{subject}.*")]
        return [(durable_name(base, s), self.wire_subject(subject, s)) for s in partition.slots(self.slots)]

    def _subscription(self, durable: str, filter_subject: str) -> JetStreamContext.PullSubscription:
        sub = self._subs.get(durable)
        if sub is None:
            js = self.connect()
            config = ConsumerConfig(
                durable_name=durable,
                filter_subject=filter_subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_deliver=-1,  # the worker dead-letters after max_attempts itself, so nothing is dropped silently
                max_ack_pending=10_000,
            )
            sub = self._run(js.pull_subscribe(filter_subject, durable=durable, stream=self.stream, config=config))
            self._subs[durable] = sub
        return sub

    def fetch(
        self,
        subject: str,
        *,
        name: str | None = None,
        partition: Partition | None = None,
        batch: int = 10,
        wait: float = 1.0,
    ) -> list[Delivery]:
        """Pull up to ``batch`` messages of ``subject`` for stage ``name`` (waiting up to ``wait`` seconds);
        none is acked yet."""
        out: list[Delivery] = []
        pairs = self.consumers(subject, partition, name=name)
        for durable, filter_subject in pairs:
            sub = self._subscription(durable, filter_subject)
            try:
                msgs = self._run(sub.fetch(batch, timeout=wait / len(pairs)), expect_timeout=True)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing arrived within ``wait``
                continue
            out.extend(Delivery(self, subject, m) for m in msgs)
        return out

    def backlog(self, subject: str, partition: Partition | None = None, *, name: str | None = None) -> int:
        """Messages of ``subject`` not yet acked by stage ``name``'s workers (waiting + delivered, unacked)."""
        js = self.connect()
        total = 0
        for durable, filter_subject in self.consumers(subject, partition, name=name):
            self._subscription(durable, filter_subject)  # the consumer exists from here on
            info = self._run(js.consumer_info(self.stream, durable))
            total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return total

    def stage_backlog(self, subject: str, name: str) -> int:
        """What the consumers that exist for stage ``name`` — its shared one and any per-slot ones of partitioned
        workers — have not acked yet. Creates no consumer (one made by a look would hold messages no worker reads)."""
        js = self.connect()
        total = 0
        durables = [durable_name(name)] + [durable_name(name, s) for s in range(self.slots)]
        for durable in durables:
            try:
                info = self._run(js.consumer_info(self.stream, durable))
            except nats.js.errors.NotFoundError:
                continue
            total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return total

    # -- dead letters -------------------------------------------------------------------------------------------

    def publish_dead_letter(
        self, subject: str, message: dict[str, Any], error: str, traceback_text: str, attempts: int, stream_seq: int
    ) -> None:
        payload = {
            "id": dead_letter_id(subject, message),
            "subject": subject,
            "message": message,
            "error": error,
            "traceback": traceback_text,
            "attempts": attempts,
            "failed_at": datetime.now(UTC).isoformat(),
            "stream_seq": stream_seq,
        }
        limit = self.max_payload - 4096
        if len(canonical_json(payload)) > limit:
            payload["traceback"] = "...\n" + traceback_text[-4000:]
        if len(canonical_json(payload)) > limit:
            # the message stays in the stream at stream_seq (for max_age); the replay reads it from there
            payload["message"] = {}
            payload["message_in_stream"] = True
        # the original's stream sequence is in the id: a replayed message that fails again is a new dead letter
        self._publish(self.dlq_subject(subject), payload, f"dlq:{stream_seq}:{payload['id']}")
        log.error("dead-lettered message %s on %s after %d attempts: %s", payload["id"], subject, attempts, error)

    def dead_letters(self) -> list[StoredDeadLetter]:
        """Every dead letter in the stream, oldest first."""
        return [letter for _, letter in self._scan_dead_letters()]

    def _scan_dead_letters(self) -> list[tuple[int, StoredDeadLetter]]:
        js = self.connect()
        out: list[tuple[int, StoredDeadLetter]] = []
        seq = 1
        while True:
            try:
                raw = self._run(js.get_msg(self.stream, seq=seq, subject=f"{self.prefix}.{DLQ_PREFIX}.>", next=True))
            except nats.js.errors.NotFoundError:
                return out
            assert raw.seq is not None
            data = json.loads(raw.data or b"{}")
            out.append(
                (
                    raw.seq,
                    StoredDeadLetter(
                        id=str(data.get("id")),
                        subject=str(data.get("subject")),
                        message=dict(data.get("message") or {}),
                        error=str(data.get("error")),
                        traceback=str(data.get("traceback", "")),
                        attempts=int(data.get("attempts", 0)),
                        failed_at=datetime.fromisoformat(data["failed_at"]) if data.get("failed_at") else None,
                        location=f"nats:{raw.seq}",
                        extra={"original_stream_seq": data.get("stream_seq")}
                        | ({"message_in_stream": True} if data.get("message_in_stream") else {}),
                    ),
                )
            )
            seq = raw.seq + 1

    def replay_dead_letters(self, ids: list[str] | None = None) -> list[StoredDeadLetter]:
        """Publish dead letters again to their subject and remove them from the stream; ``None`` = all."""
        found = self._scan_dead_letters()
        if ids is not None:
            known = {letter.id for _, letter in found}
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise NotFound(f"no dead letter with id {', '.join(unknown)} in stream {self.stream}")
            found = [(seq, letter) for seq, letter in found if letter.id in ids]
        js = self.connect()
        for seq, letter in found:
            message = letter.message
            if letter.extra.get("message_in_stream"):
                original = self._run(js.get_msg(self.stream, seq=int(letter.extra["original_stream_seq"])))
                message = json.loads(original.data or b"{}")
            msg_id = message_id(letter.subject, message)
            wire = self.wire_subject(letter.subject, slot_of(message, msg_id, self.slots))
            # a new id, so JetStream's duplicate window does not swallow the replay of a recent message
            self._publish(wire, message, f"replay:{seq}:{msg_id}")
            self._run(js.delete_msg(self.stream, seq))
        return [letter for _, letter in found]
