"""`bench --help` lists every command without importing any of them (each is a LAZY module)."""

from __future__ import annotations

import subprocess
import sys

from effbench.cli import LAZY


def test_bench_help_imports_no_command_module_nor_the_harness():
    code = (
        "import sys; from effbench.cli import main; main(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith(('effbench.commands', 'effbench.harness', 'pydantic'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    listing, imported = r.stdout.rsplit("\n", 2)[0], r.stdout.strip().splitlines()[-1]
    assert imported == "[]"
    assert all(name in listing for name in LAZY)
