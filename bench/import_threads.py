"""CPU seconds of one ``vaultctl`` command, per thread: where an import's two cores go.

Runs vaultctl.py of this checkout in this process (as ``python vaultctl.py ARGS`` would) and
prints, when it exits, its wall seconds, the CPU seconds of its main thread (the writer: on a
2-core machine the import's critical path), of the whole process, of its child processes
(the text worker) and of each Python thread pool, summed by thread name:

    .venv/bin/python bench/import_threads.py [--checkout DIR] --home HOME import \\
        /var/tmp/trees/dedup/user* --mailbox 'user/{name}'

``--checkout DIR``: run the vaultctl.py of another checkout (e.g. main, to compare), its
directory first on the path.

CPU time is what to compare under load (other processes stretch wall time, not CPU time).
"""

from __future__ import annotations

import atexit
import re
import resource
import runpy
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STARTED = time.perf_counter()
THREADS: dict[str, float] = {}
_run = threading.Thread.run


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def _counted_run(self: threading.Thread) -> None:
    try:
        _run(self)
    finally:
        name = re.sub(r"-\d+(_\d+)?$", "", self.name)  # ThreadPoolExecutor-0_1: every pool
        THREADS[name] = THREADS.get(name, 0.0) + _cpu(resource.getrusage(resource.RUSAGE_THREAD))


def _report() -> None:
    main = _cpu(resource.getrusage(resource.RUSAGE_THREAD))
    process = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    children = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    wall = time.perf_counter() - STARTED
    print(
        f"wall {wall:.2f} s  cpu: main thread {main:.2f} s, process {process:.2f} s, children {children:.2f} s",
        file=sys.stderr,
    )
    for name, seconds in sorted(THREADS.items(), key=lambda kv: -kv[1]):
        print(f"  thread {name:<28}{seconds:6.2f} s", file=sys.stderr)


def main() -> None:
    threading.Thread.run = _counted_run  # type: ignore[method-assign]
    atexit.register(_report)
    args = sys.argv[1:]
    checkout = REPO
    if args[:1] == ["--checkout"]:
        checkout, args = Path(args[1]).resolve(), args[2:]
    sys.argv = [str(checkout / "vaultctl.py"), *args]
    sys.path.insert(0, str(checkout))
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
