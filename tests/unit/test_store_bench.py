"""Keep the store benchmark and the bench runner working (a smoke run, not a timing)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bench import __main__ as runner
from bench import store as store_bench


def test_the_runner_finds_the_store_bench() -> None:
    assert "store" in runner.bench_modules()


def test_a_small_store_bench_run_meets_its_size_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--tickets", "5000", "--pages", "3", "--survey-tickets", "2000", "--dir", str(tmp_path)]
    # the exit code also judges peak RSS, which in here is pytest's, not the store's
    runner.main(["store", *argv])
    out = capsys.readouterr().out
    assert "entries 5,300" in out  # 5,000 loaded + 100 new tickets on each of 3 random pages
    assert "bytes/ticket <= 32: PASS" in out
    assert list(tmp_path.iterdir()) == []  # its temporary files are gone


def test_ticket_ids_are_strictly_increasing_with_gaps() -> None:
    ids = [store_bench.ticket_id(k) for k in range(10_000)]
    gaps = {b - a for a, b in itertools.pairwise(ids)}
    assert min(gaps) > 0
    assert len(gaps) > 10


@pytest.mark.parametrize("n", [1, 7, 1000, 1024])
def test_the_shuffled_load_order_is_a_permutation(n: int) -> None:
    order = list(store_bench.load_order(n, shuffled=True))
    assert sorted(order) == list(range(n))
