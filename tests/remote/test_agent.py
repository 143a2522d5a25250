"""The on-device agent on its own: self-contained, same statistics and timing rules as the harness."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from effbench import agent

AGENT = Path(agent.__file__)


def test_agent_imports_nothing_from_effbench_and_only_numpy_besides_the_stdlib():
    tree = ast.parse(AGENT.read_text())
    top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top_level |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert not any("effbench" in n for n in top_level)
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}  # numpy is imported lazily
    everywhere = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "effbench" not in everywhere


def test_agent_parses_as_python_3_8():
    ast.parse(AGENT.read_text(), feature_version=(3, 8))


def test_median_ci_matches_the_harness():
    from effbench.harness.stats import median_ci

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 31, 200, 5001):
        x = rng.lognormal(0, 0.3, n)
        assert agent.median_ci(x) == pytest.approx(median_ci(x), rel=0, abs=0)


class FakeSession(agent.Session):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def run(self):
        self.calls += 1


def test_measure_meets_duration_and_count_like_the_harness():
    s = FakeSession()
    samples, secs, reached, met = agent.measure(s, 0.05, 500)
    assert samples.size >= 500 and secs >= 0.05 and samples.dtype == np.int64
    assert reached is None and met is None
    samples, secs, reached, met = agent.measure(s, 0.01, 5, target_ci=0.5, max_duration_s=1)
    assert met is True and reached <= 0.5
    done, wsecs = agent.warmup(s, 0.02, 7)
    assert done >= 7 and wsecs >= 0.02


def test_local_run_of_an_onnx_file(tmp_path):
    """`python -m effbench.agent --run` here: one JSON result line, input from stdin."""
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), input_names=["input"], dynamo=False)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, x)
    r = subprocess.run([sys.executable, "-m", "effbench.agent", "--run", "--artifact", str(path), "--backend",
                        "onnxruntime", "--input-shape", "1,3,8,8", "--duration", "0.05", "--warmup", "0.01",
                        "--min-iters", "5", "--threads", "1"], input=buf.getvalue(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert all(ln["event"] == "progress" for ln in lines[:-1])
    res = lines[-1]
    assert res["event"] == "result" and len(res["samples_ns"]) >= 5
    assert res["runtime_info"]["intra_op_num_threads"] == 1
    out = np.load(io.BytesIO(__import__("base64").b64decode(res["outputs"][0])))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert res["env"]["python_executable"] == sys.executable


def test_bad_input_shape_is_an_error_line(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 3, 4, 4), np.float32))
    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    r = subprocess.run([sys.executable, str(AGENT), "--run", "--artifact", str(tmp_path / "m.onnx"),
                        "--input-shape", "1,3,8,8"], input=buf.getvalue(), capture_output=True, timeout=60)
    assert r.returncode == 3
    err = json.loads(r.stdout.decode().splitlines()[-1])
    assert err["event"] == "error" and err["kind"] == "bad_input" and "expected [1, 3, 8, 8]" in err["message"]


def test_ssh_argv_never_needs_a_local_shell_and_quotes_the_remote_command():
    import shlex

    from effbench.devices.remote import RemoteTarget

    t = RemoteTarget.from_spec({"host": "pi@pi5.local", "port": 2222, "identity_file": "~/.ssh/id_ed25519",
                                "workdir": "~/bench dir; rm -rf /tmp", "options": ["-o", "ConnectTimeout=3"]},
                               name="pi5")
    argv = t.ssh_argv(t.agent_command("agent-x.py", "use", ["--run", "--artifact", "a b'c"]))
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"]
    assert argv.index("ConnectTimeout=3") < argv.index("ConnectTimeout=10")  # the user's value wins in ssh
    assert argv[-3:-1] == ["--", "pi@pi5.local"] and "-p" in argv and "IdentitiesOnly=yes" in argv
    words = shlex.split(argv[-1])  # what the remote POSIX shell will see, word by word
    assert words[0] == "python3" and words[1] == "-c"
    assert words[3:] == ["~/bench dir; rm -rf /tmp", "agent-x.py", "use", "--run", "--artifact", "a b'c"]
