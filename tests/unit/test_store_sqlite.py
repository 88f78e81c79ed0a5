"""What only the SQLite store promises: persistence, atomicity, file hygiene, clear errors."""

from __future__ import annotations

import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import StateError, StoreCorruptError
from producer.model import Version
from producer.store_sqlite import SqliteStore, open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    updates = {2**63 - 1: Version(1_700_000_000, -(2**63)), 42: Version(1, -1)}
    with open_store(path) as store:
        store.apply(updates, {0: 11, 3: 2})
        store.apply({42: Version(2, 5)}, {0: 12})
    with open_store(path) as store:
        assert store.lookup(updates) == {**updates, 42: Version(2, 5)}
        assert store.changelog_positions() == {0: 12, 3: 2}
        assert store.entries() == 2


def test_a_failed_apply_writes_neither_updates_nor_positions(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(path) as store:
        store.apply({1: Version(1, 1)}, {0: 1})
        # Make the insert of ticket 666 fail inside the transaction, after ticket 5.
        sabotage = sqlite3.connect(path)
        sabotage.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON tickets WHEN NEW.id = 666"
            " BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        sabotage.commit()
        sabotage.close()
        with pytest.raises(StateError, match="boom"):
            store.apply({1: Version(9, 9), 5: Version(5, 5), 666: Version(6, 6)}, {0: 9})
        assert store.lookup([1, 5, 666]) == {1: Version(1, 1)}
        assert store.changelog_positions() == {0: 1}
        assert store.entries() == 1
        store.apply({5: Version(5, 5)}, {0: 2})  # still usable afterwards
        assert store.entries() == 2


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "store.db"
    with open_store(path) as store:
        store.apply({1: Version(1, 1)}, {})
        wal = Path(f"{path}-wal")
        shm = Path(f"{path}-shm")
        assert _mode(path) == 0o600
        assert _mode(wal) == 0o600
        assert _mode(shm) == 0o600


def test_the_file_is_in_wal_mode_with_our_identity(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    open_store(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x5A434443
    finally:
        db.close()


def test_a_garbage_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(StoreCorruptError, match="corrupt or not a database"):
        open_store(path)


def test_a_foreign_sqlite_database_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE tickets(id INTEGER PRIMARY KEY, ts INTEGER, fp INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StoreCorruptError, match="not a zendesk-cdc store"):
        open_store(path)


def test_another_schema_version_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    open_store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreCorruptError, match="schema version 99"):
        open_store(path)


def test_damaged_pages_surface_as_state_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(path) as store:
        store.apply({k: Version(k, k) for k in range(1, 5001)}, {0: 1})
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")  # the header records the page size
    # Keep page 1 (header and schema) intact; scribble over every b-tree page after it.
    data[page:] = bytes([0xA5]) * (len(data) - page)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError):
        _read_everything(path, 5000)


def _read_everything(path: Path, n: int) -> None:
    with open_store(path) as store:
        store.lookup(range(1, n + 1))


def test_a_failure_that_is_not_corruption_is_not_a_rebuild_signal(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.mkdir()  # something in the way: rebuilding would not help, so no StoreCorruptError
    with pytest.raises(StateError, match="cannot open") as raised:
        open_store(path)
    assert not isinstance(raised.value, StoreCorruptError)


def test_destroy_removes_every_file_and_allows_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = open_store(path)
    store.apply({1: Version(1, 1)}, {0: 1})
    store.close()
    SqliteStore.destroy(path)
    assert list(tmp_path.iterdir()) == []
    SqliteStore.destroy(path)  # nothing left to delete is fine
    with open_store(path) as fresh:
        assert fresh.entries() == 0
        assert fresh.changelog_positions() == {}


def test_size_is_reported_and_compact(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_store(path) as store:
        store.apply(
            {100_000_000 + 53 * k: Version(1_700_000_000 + k, -k) for k in range(20_000)}, {}
        )
        store.checkpoint()
        assert store.size_bytes() == path.stat().st_size
        # Fixed overhead (schema pages) aside, well under the 32 bytes per ticket target.
        assert store.size_bytes() < 20_000 * 32


batches = st.tuples(
    st.dictionaries(
        st.integers(1, 60), st.builds(Version, st.integers(0, 2**40), st.integers(-5, 5))
    ),
    st.dictionaries(st.integers(0, 3), st.integers(0, 1000), max_size=2),
    st.booleans(),  # reopen the store after this batch
)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(batches, max_size=10))
def test_reopening_at_any_point_loses_nothing(
    history: list[tuple[dict[int, Version], dict[int, int], bool]],
) -> None:
    model: dict[int, Version] = {}
    positions: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "store.db"
        store = open_store(path)
        try:
            for updates, advance, reopen in history:
                store.apply(updates, advance)
                model.update(updates)
                for partition, offset in advance.items():
                    positions[partition] = max(offset, positions.get(partition, offset))
                if reopen:
                    store.close()
                    store = open_store(path)
            assert store.lookup(range(1, 61)) == model
            assert store.changelog_positions() == positions
            assert store.entries() == len(model)
        finally:
            store.close()
