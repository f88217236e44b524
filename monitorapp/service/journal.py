"""The monitor's files and journals (spec §2, §7): ``--alerts-out`` (``AlertsFile``), the feed
journal of the messages received since the last engine checkpoint (``FeedJournal`` on disk beside
a SQLite store; ``RecordJournal`` in the centre's PostgreSQL record, where a standby decider on
another machine can replay it), and the quarantine list (``QuarantineList``).

Both journals have one interface: ``append(batch)`` (raises OSError when it cannot be written),
``sync()``, ``rotate()`` (returns the position a checkpoint taken now stands at),
``replay(position)`` (the deliveries after a checkpoint's position, oldest first),
``release(position)`` (what is before a committed checkpoint goes), ``open()``, ``close()``,
``broken`` and ``where()`` (what a fault message names).
"""
from __future__ import annotations

import hashlib
import os
import struct

import orjson

from monitorapp.feed.mqttfeed import OWNTRACKS, TRACCAR, V1
from monitorapp.service.replaystore import open_private


class AlertsFile:
    """``--alerts-out``: one replay-format line per raised alert, never twice for one id (the
    ids already in the file are read at start; a line cut short by a crash is removed)."""

    def __init__(self, path: str):
        self.path = path
        self.ids: set[str] = set()
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            keep = data[: data.rfind(b"\n") + 1]
            for line in keep.splitlines():
                try:
                    self.ids.add(orjson.loads(line)["alert_id"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise OSError(f"{path}: line {line[:60]!r} is not an alert line") from None
            if len(keep) != len(data):
                with open(path, "r+b") as f:
                    f.truncate(len(keep))
        self._f = os.fdopen(open_private(path), "ab")

    def write(self, alert) -> bool:
        if alert.alert_id in self.ids:
            return False
        self.ids.add(alert.alert_id)
        self._f.write(orjson.dumps(alert.to_json()) + b"\n")
        return True

    def flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


class FeedJournal:
    """The messages received since the last engine checkpoint, on disk next to the store.

    A message is acknowledged to the broker once it is in the journal and the journal is
    fsync'd (every commit interval, half a second by default); the engine's state is
    checkpointed in the store only every few minutes, because a checkpoint of a large caseload
    takes up to a second (20,000 tags: 14 MB of JSON). A restart loads the checkpoint and
    replays the journal after it, with the original arrival times, so the engine ends exactly
    where it was; the broker then delivers
    what was not acknowledged. Files ``{db}.journal.{generation}``; a record is
    ``<d arrival><B adapter><H topic length><I payload length>`` + topic + payload; a record
    cut short by a crash is dropped.
    """
    _HEAD = struct.Struct("<dBHI")
    _ADAPTERS = (V1, TRACCAR, OWNTRACKS)

    def __init__(self, db_path: str):
        self.base = str(db_path) + ".journal."
        gens = self.generations()
        self.generation = gens[-1] if gens else 1
        self._f: int | None = None     # the open file's descriptor (unbuffered: errors show at once)
        self.broken = False

    def generations(self) -> list[int]:
        d = os.path.dirname(os.path.abspath(self.base)) or "."
        prefix = os.path.basename(self.base)
        return sorted(int(n[len(prefix):]) for n in os.listdir(d)
                      if n.startswith(prefix) and n[len(prefix):].isdigit())

    def path(self, gen: int) -> str:
        return f"{self.base}{gen}"

    def replay(self, position: dict):
        """Yield the deliveries after the checkpoint's position, oldest first."""
        from monitorapp.feed.mqttfeed import Delivery
        start_gen, offset = int(position.get("journal", 1)), int(position.get("offset", 0))
        for gen in self.generations():
            if gen < start_gen:
                continue
            with open(self.path(gen), "rb") as f:
                data = f.read()
            pos = offset if gen == start_gen else 0
            head = self._HEAD
            while pos + head.size <= len(data):
                arrival, ad, tl, pl = head.unpack_from(data, pos)
                end = pos + head.size + tl + pl
                if end > len(data) or ad >= len(self._ADAPTERS):
                    break
                topic = data[pos + head.size: pos + head.size + tl].decode("utf-8", "replace")
                yield Delivery(topic, data[pos + head.size + tl: end], arrival, self._ADAPTERS[ad], None)
                pos = end
            if pos < len(data):                       # a record cut short by a crash
                with open(self.path(gen), "r+b") as f:
                    f.truncate(pos)

    def open(self) -> None:
        self._f = open_private(self.path(self.generation))
        self.broken = False

    def append(self, batch) -> None:
        """Append the batch's records. Raises OSError (disk full, I/O error) with the file cut
        back to where it was where possible, and the next append starts a new file, so a failed
        append never leaves a torn record in the middle of what is replayed."""
        if self.broken or self._f is None:
            self.rotate_fresh()
        pack, idx = self._HEAD.pack, self._ADAPTERS.index
        parts = []
        for d in batch:
            t = d.topic.encode()
            parts += (pack(d.arrival, idx(d.adapter), len(t), len(d.payload)), t, d.payload)
        data = b"".join(parts)
        fd = self._f
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            self.broken = True           # the next append starts a fresh file
            raise

    def sync(self) -> None:
        if self._f is None:
            raise OSError(f"{self.path(self.generation)}: the journal is not open")
        os.fsync(self._f)

    def rotate(self) -> dict:
        """Start a new file; returns the position a checkpoint taken now stands at."""
        self.sync()
        return self.rotate_fresh()

    def rotate_fresh(self) -> dict:
        """Close the current file (without syncing it) and start the next generation."""
        if self._f is not None:
            os.close(self._f)
            self._f = None
        self.generation += 1
        try:
            self.open()
        except OSError:
            self.broken = True
            raise
        return {"journal": self.generation, "offset": 0}

    def drop_before(self, gen: int) -> None:
        for g in self.generations():
            if g < gen:
                os.unlink(self.path(g))

    def release(self, position: dict) -> None:
        """A checkpoint at ``position`` is committed: the files before it go."""
        self.drop_before(int(position["journal"]))

    def where(self) -> str:
        return self.path(self.generation)

    def close(self) -> None:
        if self._f is not None:
            os.close(self._f)
            self._f = None


class RecordJournal:
    """The feed journal in the centre's PostgreSQL record (table ``feed_journal``, migration 6).

    The decider appends every batch there (in the store writer's transaction, after the fixes
    and alerts queued before it) before it acknowledges the batch to the broker, so what the
    broker has forgotten is in the record; a checkpoint's position is the id of the last
    journalled message. A standby that takes over on another machine restores the record's
    checkpoint and replays the record's journal after it, exactly as a restart replays the file
    journal; the broker hands it what the dead decider had not acknowledged (the same client
    id), and deterministic alert ids mean what is raised again updates the same rows.
    """

    def __init__(self, store):
        self.store = store
        self.last_id = 0               # the id of the last message this process journalled
        self.broken = False

    def where(self) -> str:
        return f"{self.store.path}: feed_journal"

    def open(self) -> None:
        self.broken = False

    def append(self, batch) -> None:
        from localdb.schema import StoreError
        try:
            last = self.store.journal_append(
                [(d.arrival, d.adapter, d.topic, d.payload) for d in batch])
        except StoreError as e:
            self.broken = True
            raise OSError(str(e)) from None
        self.broken = False
        if last is not None:
            self.last_id = max(self.last_id, last)

    def sync(self) -> None:
        """Nothing to do: ``append`` returns once the record has committed the batch."""

    def rotate(self) -> dict:
        return {"record_journal": self.last_id}

    rotate_fresh = rotate

    def replay(self, position: dict):
        """The deliveries the record holds after the checkpoint's position, oldest first."""
        from monitorapp.feed.mqttfeed import Delivery
        after = int(position.get("record_journal") or 0)
        for jid, arrival, adapter, topic, payload in self.store.journal_after(after):
            self.last_id = max(self.last_id, jid)
            yield Delivery(topic, bytes(payload), arrival, adapter if adapter in self._ADAPTERS else V1, None)

    _ADAPTERS = (V1, TRACCAR, OWNTRACKS)

    def release(self, position: dict) -> None:
        from localdb.schema import StoreError
        try:
            self.store.journal_release(int(position["record_journal"]))
        except StoreError as e:
            raise OSError(str(e)) from None

    def close(self) -> None:
        pass


class QuarantineList:
    """The messages this monitor has quarantined (``processing_error``), so that a restart that
    meets one again, from the journal or redelivered by the broker, skips it instead of
    evaluating it again: a SHA-256 of (adapter, topic, payload) a line in ``{db}.quarantine``
    (0600), appended and fsync'd as each is quarantined."""

    def __init__(self, db_path: str):
        self.path = str(db_path) + ".quarantine"
        self.ids: set[str] = set()
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                self.ids = {ln.strip().decode("ascii", "replace") for ln in f if len(ln.strip()) == 64}

    @staticmethod
    def fingerprint(d) -> str:
        h = hashlib.sha256(d.adapter.encode())
        h.update(b"\0" + d.topic.encode("utf-8", "replace") + b"\0")
        h.update(d.payload)
        return h.hexdigest()

    def __contains__(self, d) -> bool:
        return bool(self.ids) and self.fingerprint(d) in self.ids

    def add(self, d) -> None:
        """Record the delivery (in memory at once; on disk, or OSError if the disk refuses)."""
        fp = self.fingerprint(d)
        if fp in self.ids:
            return
        self.ids.add(fp)
        fd = open_private(self.path)
        try:
            os.write(fd, fp.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
