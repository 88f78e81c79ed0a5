"""Run the benchmarks: every `bench/*.py` module that defines `main()`, or one by name.

    python -m bench                 # all of them, with their default arguments
    python -m bench store --tickets 10000000
    python -m bench --list

A module's `main` may take the remaining arguments (`main(argv)`) or none (`main()`);
it may return an exit code.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path


def bench_modules() -> list[str]:
    """The names of the bench modules that define a callable `main` (or fail to import)."""
    here = str(Path(__file__).resolve().parent)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))
    found = []
    for name in names:
        try:
            runnable = callable(getattr(_load(name), "main", None))
        except Exception:  # a broken module is still listed, so that running it reports why
            runnable = True
        if runnable:
            found.append(name)
    return found


def run(name: str, argv: Sequence[str]) -> int:
    entry = getattr(_load(name), "main", None)
    if not callable(entry):
        print(f"bench {name}: no main() to run", file=sys.stderr)
        return 2
    takes_args = bool(inspect.signature(entry).parameters)
    result = entry(list(argv)) if takes_args else entry()
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--list"]:
        print("\n".join(bench_modules()))
        return 0
    if args and not args[0].startswith("-"):
        return run(args[0], args[1:])
    if args:
        print("usage: python -m bench [--list | NAME [ARGS...]]", file=sys.stderr)
        return 2
    worst = 0
    for name in bench_modules():
        print(f"=== bench {name}", flush=True)
        started = time.perf_counter()
        try:
            code = run(name, [])
        except Exception:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            code = 1
        print(f"=== bench {name}: exit {code} in {time.perf_counter() - started:.1f} s\n")
        worst = max(worst, code)
    return worst


def _load(name: str) -> object:
    return importlib.import_module(f"{__package__ or 'bench'}.{name}")


if __name__ == "__main__":
    sys.exit(main())
