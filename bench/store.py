"""Compact-store benchmark: bytes per ticket, memory while loading, page latency.

    python -m bench store                       # 2M tickets, about a minute
    python -m bench store --tickets 10000000    # the 10M target

Targets (issue 3, §2): at most 32 bytes per ticket on disk (database + WAL after a
checkpoint); peak RSS that does not grow with the ticket count and fits a 256 MiB
container at 10M; a page of 1,000 lookups + 1,000 updates in a few milliseconds.
Ids are realistic: increasing integers with gaps, from 10^8 up to about 10^9 at 10M.
The load order is shuffled by default, as a changelog replay is in update order, not
in id order; that is the worst case for the b-tree's fill factor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from producer.model import Version
from producer.store_sqlite import SqliteStore, SqliteTuning

TARGET_BYTES_PER_TICKET = 32
TARGET_RSS_MIB = 256
DEFAULT_TUNING = SqliteTuning()
BASE_ID = 100_000_000
FIRST_TS = 1_300_000_000  # 2011
SPAN_TS = 460_000_000  # to late 2025
_MASK64 = (1 << 64) - 1


def ticket_id(k: int) -> int:
    """The k-th ticket's id: strictly increasing, with irregular gaps of 1 to 97."""
    return BASE_ID + 97 * k - _mix(k) % 89


def version(k: int, n: int, round_: int = 0) -> Version:
    ts = FIRST_TS + (k * SPAN_TS) // max(n, 1) + round_ * 60
    return Version(ts, _signed64(_mix(k * 1_000_003 + round_)))


def _mix(x: int) -> int:
    """splitmix64: a fingerprint-like, uniformly spread 64-bit value."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _signed64(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


def load_order(n: int, shuffled: bool) -> Iterator[int]:
    """0..n-1 in order, or permuted by an affine map: no n-sized list in memory."""
    if not shuffled:
        yield from range(n)
        return
    a = 0x9E3779B1
    while math.gcd(a, n) != 1:
        a += 2
    for i in range(n):
        yield (a * i + 12_345) % n


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def vm_peak_mib() -> float:
    """Peak address space: a stricter figure than RSS (it counts every mapping)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024
    return math.nan


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _files_size(path: Path) -> int:
    return sum(os.path.getsize(name) for name in (str(path), f"{path}-wal") if os.path.exists(name))


def survey_layouts(n: int, workdir: Path) -> None:
    """Bytes per ticket of the candidate layouts on raw SQLite, shuffled load, no VACUUM."""
    print(f"-- layout survey: {n:,} tickets, shuffled load (bytes/ticket incl. WAL)")
    for table in ("rowid", "WITHOUT ROWID"):
        figures = []
        for page_size in (1024, 4096, 16384, 65536):
            path = workdir / f"survey-{page_size}.db"
            SqliteStore.destroy(path)
            db = sqlite3.connect(path, isolation_level=None)
            db.execute(f"PRAGMA page_size = {page_size}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            suffix = "" if table == "rowid" else " WITHOUT ROWID"
            db.execute(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
                f" fp INTEGER NOT NULL){suffix}"
            )
            order = load_order(n, shuffled=True)
            for start in range(0, n, 1000):
                batch = [_row(k, n) for k in itertools.islice(order, min(1000, n - start))]
                db.execute("BEGIN")
                db.executemany("INSERT INTO t VALUES (?, ?, ?)", batch)
                db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            figures.append(f"{page_size // 1024:>2} KiB {_files_size(path) / n:5.1f}")
            db.close()
            SqliteStore.destroy(path)
        print(f"   {table:<14} " + "   ".join(figures))


def _row(k: int, n: int) -> tuple[int, int, int]:
    v = version(k, n)
    return ticket_id(k), v.generated_timestamp, v.fingerprint


def load(store: SqliteStore, n: int, shuffled: bool, batch_size: int) -> None:
    """Fill the store as a changelog replay would: batches of records with positions."""
    order = "shuffled" if shuffled else "id"
    print(f"-- load {n:,} tickets ({order} order, batches of {batch_size:,})")
    started = time.perf_counter()
    batch: dict[int, Version] = {}
    offset = 0
    report_every = max(n // 5, 1)
    for done, k in enumerate(load_order(n, shuffled), start=1):
        batch[ticket_id(k)] = version(k, n)
        if len(batch) == batch_size or done == n:
            offset += len(batch)
            store.apply(batch, {offset % 6: offset})
            batch = {}
        if done % report_every == 0:
            elapsed = time.perf_counter() - started
            print(
                f"   {done:>12,} loaded  {done / elapsed:>9,.0f}/s  "
                f"RSS {rss_mib():6.1f} MiB  peak {peak_rss_mib():6.1f} MiB",
                flush=True,
            )


def _random_page(n: int, rng: random.Random, fresh: Iterator[int]) -> list[int]:
    """900 known tickets anywhere in the store, 100 new ones."""
    return [ticket_id(k) for k in rng.sample(range(n), 900)] + [
        ticket_id(next(fresh)) for _ in range(100)
    ]


def _clustered_page(n: int, rng: random.Random, fresh: Iterator[int]) -> list[int]:
    """1,000 known tickets within a window of 3,000 neighbouring ids."""
    start = rng.randrange(max(n - 3000, 1))
    return [ticket_id(k) for k in rng.sample(range(start, min(start + 3000, n)), 1000)]


def measure_pages(
    store: SqliteStore,
    n: int,
    pages: int,
    name: str,
    make_page: Callable[[int, random.Random, Iterator[int]], list[int]],
    fresh: Iterator[int],
) -> None:
    rng = random.Random(name)
    lookups: list[float] = []
    applies: list[float] = []
    offset = 1_000_000_000
    for round_ in range(1, pages + 1):
        ids = make_page(n, rng, fresh)
        t0 = time.perf_counter()
        known = store.lookup(ids)
        t1 = time.perf_counter()
        updates = {
            i: Version(FIRST_TS + SPAN_TS + round_, _signed64(_mix(i + round_))) for i in ids
        }
        offset += len(ids)
        store.apply(updates, {0: offset})
        t2 = time.perf_counter()
        if len(known) < 900:
            raise AssertionError(f"lookup found {len(known)} of the page's known tickets")
        lookups.append(t1 - t0)
        applies.append(t2 - t1)
    totals = [a + b for a, b in zip(lookups, applies, strict=True)]

    def ms(samples: list[float]) -> str:
        return (
            f"p50 {percentile(samples, 0.5) * 1e3:6.2f}  p99 {percentile(samples, 0.99) * 1e3:6.2f}"
            f"  mean {statistics.fmean(samples) * 1e3:6.2f} ms"
        )

    print(f"   {name:<9} lookup  {ms(lookups)}")
    print(f"   {'':<9} apply   {ms(applies)}")
    print(f"   {'':<9} page    {ms(totals)}")


def compare_lookups(path: Path, n: int, pages: int) -> None:
    """The ways to fetch a page of 1,000 ids from SQLite, on a second connection."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA cache_size = -8192")
    rng = random.Random("lookups")

    def in_list(ids: list[int]) -> int:
        marks = ",".join("?" * len(ids))
        return len(
            db.execute(f"SELECT id, ts, fp FROM tickets WHERE id IN ({marks})", ids).fetchall()
        )

    def json_each(ids: list[int]) -> int:
        sql = "SELECT id, ts, fp FROM tickets WHERE id IN (SELECT value FROM json_each(?))"
        return len(db.execute(sql, (json.dumps(ids),)).fetchall())

    def one_by_one(ids: list[int]) -> int:
        sql = "SELECT id, ts, fp FROM tickets WHERE id = ?"
        return sum(len(db.execute(sql, (i,)).fetchall()) for i in ids)

    print(f"-- lookup strategies, random pages of 1,000 known ids ({pages} pages each)")
    for name, fetch in (("IN (?,...)", in_list), ("json_each", json_each), ("per id", one_by_one)):
        samples = []
        for _ in range(pages):
            ids = sorted(ticket_id(k) for k in rng.sample(range(n), 1000))
            started = time.perf_counter()
            if fetch(ids) != 1000:
                raise AssertionError(f"{name} missed ids")
            samples.append(time.perf_counter() - started)
        print(
            f"   {name:<11} p50 {percentile(samples, 0.5) * 1e3:6.2f}"
            f"  p99 {percentile(samples, 0.99) * 1e3:6.2f} ms"
        )
    db.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__)
    parser.add_argument("--tickets", type=int, default=2_000_000)
    parser.add_argument("--pages", type=int, default=300, help="pages per id pattern")
    parser.add_argument("--order", choices=("shuffled", "id"), default="shuffled")
    parser.add_argument("--load-batch", type=int, default=1000, help="tickets per apply()")
    parser.add_argument("--survey-tickets", type=int, default=200_000, help="0 skips it")
    parser.add_argument("--page-size", type=int, default=DEFAULT_TUNING.page_size)
    parser.add_argument("--cache-mib", type=float, default=DEFAULT_TUNING.cache_bytes / 2**20)
    parser.add_argument(
        "--wal-mib",
        type=float,
        default=DEFAULT_TUNING.wal_checkpoint_bytes / 2**20,
        help="checkpoint when the WAL reaches this size",
    )
    parser.add_argument(
        "--limit-mib",
        type=int,
        help="cap this process's address space (RLIMIT_AS), e.g. 256 as a container would",
    )
    parser.add_argument("--dir", type=Path, help="where to put the files (default: a temp dir)")
    args = parser.parse_args(argv)
    n: int = args.tickets
    if args.limit_mib:
        # Stays for the rest of the process: use it with `python -m bench store` only.
        limit = args.limit_mib * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(f"address space capped at {args.limit_mib} MiB")

    print(f"SQLite {sqlite3.sqlite_version}; start RSS {rss_mib():.1f} MiB")
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        workdir = Path(directory)
        if args.survey_tickets:
            survey_layouts(args.survey_tickets, workdir)
        path = workdir / "store.db"
        tuning = SqliteTuning(
            page_size=args.page_size,
            cache_bytes=int(args.cache_mib * 2**20),
            wal_checkpoint_bytes=int(args.wal_mib * 2**20),
        )
        print(f"-- store tuning: {tuning}")
        with SqliteStore.open(path, tuning=tuning) as store:
            started = time.perf_counter()
            load(store, n, args.order == "shuffled", args.load_batch)
            print(f"   loaded in {time.perf_counter() - started:.1f} s")
            store.checkpoint()
            print(f"   after load: {store.size_bytes() / n:.2f} bytes/ticket")
            print(f"-- pages of 1,000 at {n:,} entries ({args.pages} pages each)")
            fresh = iter(range(n, n + 10**9))
            measure_pages(store, n, args.pages, "random", _random_page, fresh)
            measure_pages(store, n, args.pages, "clustered", _clustered_page, fresh)
            compare_lookups(path, n, min(args.pages, 100))
            entries = store.entries()
        on_disk = _files_size(path)  # close() checkpointed and removed the WAL
        started = time.perf_counter()
        with SqliteStore.open(path) as reopened:
            assert reopened.entries() == entries
        reopen_ms = (time.perf_counter() - started) * 1e3
    per_ticket = on_disk / entries
    peak = peak_rss_mib()
    print("-- result")
    print(
        f"   entries {entries:,}; on disk {on_disk / 2**20:.1f} MiB = {per_ticket:.2f} bytes/ticket"
    )
    print(
        f"   reopen {reopen_ms:.1f} ms; peak RSS {peak:.1f} MiB;"
        f" peak address space {vm_peak_mib():.1f} MiB"
    )
    size_ok = per_ticket <= TARGET_BYTES_PER_TICKET
    rss_ok = peak <= TARGET_RSS_MIB
    print(f"   bytes/ticket <= {TARGET_BYTES_PER_TICKET}: {'PASS' if size_ok else 'FAIL'}")
    print(f"   peak RSS <= {TARGET_RSS_MIB} MiB: {'PASS' if rss_ok else 'FAIL'}")
    return 0 if size_ok and rss_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
