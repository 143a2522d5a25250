"""A spawned worker: `python -m effbench.harness.worker FD` reads a PreparedCell payload (JSON) on
stdin and writes progress and its answer as JSON lines to file descriptor FD, a pipe of its own, so
whatever a runtime prints on stdout cannot corrupt the protocol. (Where fork is safe, the fork
server forks these workers from a process that has already imported the runtimes.)"""

from __future__ import annotations

import json
import sys


def _main(fd: int) -> int:
    from effbench.core.lifeline import die_with_parent

    die_with_parent()
    from effbench.core.protocol import Channel
    from effbench.harness.child import serve

    serve(json.loads(sys.stdin.read()), Channel(fd))
    return 0


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1])))
