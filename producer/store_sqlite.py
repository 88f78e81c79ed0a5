"""The embedded compact store: ticket id -> Version in one SQLite file, in WAL mode.

The layout was chosen by measurement (`python -m bench store`): a rowid table whose
rowid IS the ticket id (WITHOUT ROWID measured no smaller), 1 KiB pages, 26-27.5
bytes per ticket on disk. Memory is bounded by SQLite's page cache, not by the number
of tickets. Lookups bind the page's ids in one `IN (?, ...)` (measured as fast as
json_each, twice as fast as one query per id). For a bulk restore, apply large batches (10k-50k):
one commit per batch writes each dirty page once, about 4x faster than 1k batches.

Durability: `synchronous=NORMAL` in WAL mode keeps the file consistent after a crash
but may lose the last commits on power loss. That is enough because the changelog
topic in Kafka is the source of truth: the positions are committed in the same
SQLite transaction as the updates, so a lost tail only means replaying more of it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from producer.errors import StateError, StoreCorruptError
from producer.model import Version
from producer.store import INT64_MAX, INT64_MIN, check_int64

APPLICATION_ID = 0x5A434443  # "ZCDC": tells our files from any other SQLite database
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class SqliteTuning:
    """Knobs measured by `python -m bench store`; the defaults are the chosen ones."""

    # 1 KiB: a page of 1,000 random updates dirties ~1,000 pages, so small pages
    # halve the WAL bytes written (random page p50 7 ms vs 11 ms at 4 KiB, 58 ms at
    # 16 KiB, 3M tickets) for +0.6 bytes/ticket. Applies when the file is created only.
    page_size: int = 1024
    # The page cache is the only memory that could grow with the data: bound it.
    cache_bytes: int = 8 * 1024 * 1024
    # Checkpoint once the WAL holds this much: rarer checkpoints make most pages
    # cheap, while the WAL (and the wal-index beside it) stays bounded.
    wal_checkpoint_bytes: int = 16 * 1024 * 1024


# SQLite's bound on host parameters is 32766; a page above 1,000 tickets (a same-second
# expansion) is split into chunks well below it.
_CHUNK = 10_000
_SIDE_FILES = ("-wal", "-shm", "-journal")

_SCHEMA = (
    "CREATE TABLE tickets(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, fp INTEGER NOT NULL)",
    "CREATE TABLE positions(partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL)",
    # The entry count is kept, not computed: count(*) scans every leaf page.
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO meta(key, value) VALUES ('entries', 0)",
)
_UPSERT = (
    "INSERT INTO tickets(id, ts, fp) VALUES (?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET ts = excluded.ts, fp = excluded.fp"
)
# Positions only move forward: replaying the changelog yields increasing offsets per
# partition, so a smaller one was already applied.
_ADVANCE = (
    "INSERT INTO positions(partition, next_offset) VALUES (?, ?) "
    "ON CONFLICT(partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)"
)


class SqliteStore:
    """A `Store` in one SQLite file. One process, one user at a time (not thread-safe)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Use `SqliteStore.open` (or `open_store`), which validates the file."""
        self._db = connection
        self._path = path
        self._entries = self._meta_entries()

    @classmethod
    def open(cls, path: Path, *, tuning: SqliteTuning | None = None) -> SqliteStore:
        """Open the store at `path`, creating it (mode 0600) if it does not exist.

        Raises StoreCorruptError if the file is corrupt, belongs to something else, or
        has another schema version: `destroy` it and rebuild from the changelog. Other
        failures (I/O, out of memory, a directory in the way) are a plain StateError.
        """
        _create_private(path)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"store {path}: cannot open: {exc}") from exc
        try:
            _prepare(db, path, tuning or SqliteTuning())
            return cls(db, path)
        except sqlite3.Error as exc:
            db.close()
            raise _translate(exc, path, "open") from exc
        except BaseException:
            db.close()
            raise

    @staticmethod
    def destroy(path: Path) -> None:
        """Delete the store's files (database, WAL, shared memory); missing files are fine."""
        for name in (str(path), *(f"{path}{suffix}" for suffix in _SIDE_FILES)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)

    @property
    def path(self) -> Path:
        return self._path

    def lookup(self, ticket_ids: Iterable[int]) -> dict[int, Version]:
        found: dict[int, Version] = {}
        with self._errors("lookup"):
            # An id outside int64 cannot be stored, so it is simply not found.
            wanted = sorted({i for i in ticket_ids if INT64_MIN <= i <= INT64_MAX})
            for chunk in _chunks(wanted):
                sql = _where_id_in("SELECT id, ts, fp FROM tickets", len(chunk))
                for ticket_id, ts, fp in self._db.execute(sql, chunk):
                    found[ticket_id] = Version(ts, fp)
        return found

    def apply(self, updates: Mapping[int, Version], changelog_positions: Mapping[int, int]) -> None:
        """Write updates and positions in ONE transaction: both land or neither does."""
        if not updates and not changelog_positions:
            return
        check_int64(updates, changelog_positions)
        # Sorted ids touch each b-tree page once, in order.
        ids = sorted(updates)
        with self._errors("apply"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = sum(
                    self._db.execute(
                        _where_id_in("SELECT count(*) FROM tickets", len(chunk)), chunk
                    ).fetchone()[0]
                    for chunk in _chunks(ids)
                )
                added = len(ids) - known
                self._db.executemany(
                    _UPSERT,
                    ((i, updates[i].generated_timestamp, updates[i].fingerprint) for i in ids),
                )
                self._db.executemany(_ADVANCE, changelog_positions.items())
                if added:
                    self._db.execute(
                        "UPDATE meta SET value = value + ? WHERE key = 'entries'", (added,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (disk full, I/O error).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self._entries += added

    def changelog_positions(self) -> dict[int, int]:
        with self._errors("read positions"):
            rows = self._db.execute("SELECT partition, next_offset FROM positions").fetchall()
        return {int(p): int(o) for p, o in rows}

    def entries(self) -> int:
        return self._entries

    def size_bytes(self) -> int:
        """Bytes on disk: the database plus its WAL."""
        total = 0
        for name in (str(self._path), f"{self._path}-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(name).st_size
        return total

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it (done anyway on close)."""
        with self._errors("checkpoint"):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _meta_entries(self) -> int:
        with self._errors("open"):
            row = self._db.execute("SELECT value FROM meta WHERE key = 'entries'").fetchone()
        if row is None:
            raise StoreCorruptError(str(self._path), "entry count missing")
        return int(row[0])

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        # Corruption can surface on any read, not only at open; it is told apart from
        # I/O failures because only corruption calls for destroying the file.
        try:
            yield
        except sqlite3.Error as exc:
            raise _translate(exc, self._path, action) from exc


def open_store(path: Path) -> SqliteStore:
    """The default embedded store at `path` (see `SqliteStore.open`)."""
    return SqliteStore.open(path)


_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def _translate(exc: sqlite3.Error, path: Path, action: str) -> StateError:
    """Corruption calls for a rebuild; anything else (I/O, memory, disk full) does not."""
    primary = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep it low
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorruptError(str(path), f"corrupt or not a database ({exc})")
    return StateError(f"store {path}: {action} failed: {exc}")


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does; its WAL and -shm inherit that mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _prepare(db: sqlite3.Connection, path: Path, tuning: SqliteTuning) -> None:
    """Check the file is ours (or empty), set the pragmas, create the schema if new."""
    # page_count fails with "file is not a database" on a foreign or corrupt header.
    new = db.execute("PRAGMA page_count").fetchone()[0] == 0
    if new:
        db.execute(f"PRAGMA page_size = {int(tuning.page_size)}")
    else:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise StoreCorruptError(
                str(path), f"not a zendesk-cdc store (application_id {app_id:#x})"
            )
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StoreCorruptError(
                str(path), f"schema version {version}, expected {SCHEMA_VERSION}"
            )
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise StateError(f"store {path}: cannot use WAL mode (got {mode})")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA cache_size = -{max(int(tuning.cache_bytes) // 1024, 64)}")  # in KiB
    db.execute("PRAGMA mmap_size = 0")  # keep RSS to the bounded page cache
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    wal_pages = max(int(tuning.wal_checkpoint_bytes) // page_size, 1)
    db.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
    db.execute(f"PRAGMA journal_size_limit = {int(tuning.wal_checkpoint_bytes)}")
    db.execute("PRAGMA temp_store = MEMORY")
    if new:
        db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _where_id_in(select: str, n: int) -> str:
    # Only "?" placeholders are spliced in; the ids themselves are bound parameters.
    return f"{select} WHERE id IN ({','.join('?' * n)})"
