"""The docs match the code: every `bench ...` command line in README.md and docs/*.md is parsed by the real
command tree (the command exists, every option exists, its value converts), and each one this machine can
run in seconds runs for real, on the tiny CNN, in a workspace of its own with its own store. Those that
cannot run here say why (their run case is skipped with the reason)."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from effbench.cli import _click_group
from effbench.errors import EffbenchError
from effbench.models.registry import resolve as resolve_model
from tests.conftest import TINY_CNN, bench, export_tiny_onnx
from tests.docs_commands import (
    DOCS,
    ROOT,
    DocCommand,
    declared_options,
    doc_commands,
    expand,
    is_command_path,
    is_usage_error,
    parse,
)

COMMANDS = doc_commands()
IDS = [c.id for c in COMMANDS]
IDS = [f"{i}#{IDS[:n].count(i) + 1}" if IDS.count(i) > 1 else i for n, i in enumerate(IDS)]

# appended to a measuring command for each option the doc's line does not give and its command declares
FAST = {
    "--duration": "0.2",
    "--warmup": "0.05",
    "--warmup-iters": "2",
    "--min-iters": "5",
    "--max-duration": "2",
    "--iters": "5",
}
MEASURING = {"run", "profile", "sweep", "ab", "max-qps"}


def _root() -> Any:
    return _click_group()  # the very group `bench` runs, which lazy commands load into


def _expanded(command: DocCommand) -> DocCommand:
    root = _root()
    return expand(command, lambda argv: is_command_path(root, argv))


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_doc_command_parses(command: DocCommand):
    command = _expanded(command)
    assert command.argvs, command.text
    for argv in command.argvs:
        try:
            parse(_root(), argv, command.fragment)
        except Exception as e:
            if not is_usage_error(e):
                raise
            message = getattr(e, "format_message", e.__str__)()
            pytest.fail(f"{command.id}: `{command.text}` is not a bench command line: {message}")
        for name in _model_names(argv):
            try:
                resolve_model(name)
            except EffbenchError as e:
                pytest.fail(f"{command.id}: `{command.text}`: {e}")


def _model_names(argv: list[str]) -> list[str]:
    """The card or timm names a line's --model options give (files and factories are the line's own)."""
    names = [word for before, word in zip(["", *argv], argv) if before in ("--model", "-m")]
    return [n for n in names if not n.endswith(".onnx") and ":" not in n.removeprefix("timm:") and n != "1"]


# --- running them -----------------------------------------------------------------------------------------


def why_not_here(argv: list[str]) -> str | None:
    """Why `bench ARGV` cannot run on this machine within seconds (None: it can)."""
    words = [w for w in argv if not w.startswith("-")][:2]
    values = dict(zip(argv, argv[1:]))
    device = values.get("--device", "cpu")
    backend = values.get("--backend", values.get("-b", ""))
    if "--farm" in argv or words[0] == "farm":
        return "a Ray farm across the lab's hosts (tests/farm run one in a loopback-only namespace)"
    if words[:2] == ["devices", "check"]:
        device = argv[2]
    if device not in ("cpu", "local-cpu") and not device.startswith("cuda") and words[:2] != ["devices", "stability"]:
        return f"device {device!r} is a remote board or phone reached over ssh (tests/devices run the agent)"
    if device.startswith("cuda") or backend in ("trt", "tensorrt") or "ep=cuda" in argv or "ep=tensorrt" in argv:
        return "needs an NVIDIA GPU (tests/gpu)"
    if backend == "coreml" or "compute_units=cpu_and_ne" in argv:
        return "Core ML runs on macOS only"
    if "onnxref" in argv or backend == "onnx-reference":
        return "the example plugin backend, installed and run by tests/backends/test_contract.py"
    if backend in ("tflite", "litert", "et", "executorch"):
        return "a mobile runtime's conversion takes tens of seconds here (tests/backends run LiteRT and ExecuTorch)"
    if words[:2] in (["devices", "tune"], ["devices", "reset"]):
        return "changes this machine's CPU settings for everyone on it (root)"
    if words[:2] == ["devices", "calibrate"]:
        return "GEMM and STREAM micro-benchmarks for tens of seconds"
    if words[:2] == ["site", "serve"]:
        return "serves until stopped (tests/site start it on 127.0.0.1)"
    if words[:2] == ["claims", "verify"]:
        return "measures two real timm models on each runtime, several rounds: minutes"
    if words[0] in ("predictor", "predict") and words[:2] != ["predictor", "list"]:
        return "needs a predictor built from a measured model zoo: minutes (tests/predict)"
    if words[0] == "max-qps":
        return "a search over up to 8 LoadGen Server runs of hundreds of queries each (tests/harness)"
    if "--eval-labels" in argv or "--weights" in argv:
        return "the user's own ImageNet folders or trained weights"
    for option in ("--duration", "--window"):
        if option in argv and values[option][-1:] in ("m", "h"):
            return f"the doc's own {option} {values[option]}"
    if "--compile" in argv:
        return "torch.compile takes tens of seconds here (tests/test_run_e2e.py compiles the tiny CNN)"
    # over this file's budget (about a minute of CPU for every line it runs): CPU seconds measured here
    if "," in values.get("--input-size", "") or "--dynamic" in argv:
        return "an export per size and a dynamic one, 14 s (tests/harness/test_resolutions.py, test_dynamic_shapes.py)"
    if values.get("--scenario") == "throughput":
        return "three batches in OpenVINO's throughput mode, 11 s (tests/harness/test_scenarios.py)"
    if words[0] == "profile" and backend == "torch":
        return "torch's profiler, 10 s (tests/analysis/test_profile.py)"
    if "--max-drop" in argv:
        return "a second int8 calibration and evaluation, 6 s (README's int8 line runs here; tests/accuracy)"
    return None


@dataclass
class Workspace:
    root: Path
    onnx: Path
    images: Path

    def localize(self, argv: list[str]) -> list[str]:
        """The doc's line made runnable here: models become the tiny CNN (or its ONNX file), data
        folders the workspace's images, paths outside the workspace land in it, and a measuring
        command gets short durations where the doc's line leaves them to the defaults."""
        out: list[str] = []
        for before, word in zip(["", *argv], argv):
            if before in ("--model", "-m"):
                word = str(self.onnx) if word.endswith(".onnx") else TINY_CNN[1]
            elif before in ("--a", "--b", "--run"):
                word = shlex.join(self.localize(["run", *shlex.split(word)])[1:])  # bench run options
            elif before == "--calib":
                word = str(self.images / "train")
            elif before == "--eval":
                word = str(self.images / "val")
            elif word.startswith(("~/", "/")):
                word = Path(word).name
            out.append(word)
        if out[:1] == ["sweep"]:
            out[1] = self.tiny_sweep(out[1])
        declared = declared_options(_root(), out) if out and out[0] in MEASURING else set()
        for option, value in FAST.items():
            if option in declared and option not in out:
                out += [option, value]
        if "--input-size" in declared and "--input-size" not in out and TINY_CNN[1] in out:
            out += ["--input-size", "32"]
        return out

    def tiny_sweep(self, name: str) -> str:
        """The sweep file the doc names, with the tiny CNN for its models and short durations."""
        source = ROOT / name
        assert source.is_file(), f"the docs run `bench sweep {name}`, which is not in the repository"
        sweep = yaml.safe_load(source.read_text())
        sweep.update(models=[TINY_CNN[1]], duration_s=0.2, warmup_s=0.05, warmup_iters=2, min_iters=5)
        if not sweep.get("resolutions"):
            sweep["input_size"] = 32
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(sweep))
        return name


def _tags_the_docs_read() -> set[str]:
    tags = set()
    for c in COMMANDS:
        for before, word in zip(["", *c.words], c.words):
            if before == "--tag" and not word.isupper():
                tags.add(word)
            tags.update(re.findall(r"db:tag=([\w:.-]+)", word))
    return tags


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """A store with one real tiny-CNN result under every tag the docs read, the spool file and the
    baselines the docs' gate lines name, a tiny ONNX file and class folders of images."""
    import torch
    from PIL import Image

    root = tmp_path_factory.mktemp("docs")
    env = _env(root)
    onnx = export_tiny_onnx(root / "tiny.onnx")
    images = root / "images"
    rng = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label in range(10):  # the tiny CNN's ten outputs: ten class folders
            (images / split / str(label)).mkdir(parents=True)
            for n in range(2):
                pixels = (torch.rand(24, 24, 3, generator=rng) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(images / split / str(label) / f"{n}.png")
    fast = [a for pair in FAST.items() for a in pair if pair[0] != "--iters"]
    r = bench(
        "run", *TINY_CNN, "--backend", "ort", *fast, "--out", "results.json", "--tag", "nightly", env=env, cwd=root
    )
    assert r.returncode == 0, r.output
    (record,) = json.loads((root / "results.json").read_text())
    (root / "pr.json").write_text(json.dumps([record]))
    copies = [dict(record, id=uuid.uuid4().hex, tag=tag) for tag in sorted(_tags_the_docs_read() - {"nightly"})]
    (root / "results.jsonl").write_text("".join(json.dumps(c) + "\n" for c in copies))
    for args in (
        ["results", "import", "results.jsonl"],
        ["baseline", "save", "main", "--from-db", "--tag", "nightly"],
        ["baseline", "save", "main", "--from", "results.json", "--dir", "bench/baselines"],
    ):
        r = bench(*args, env=env, cwd=root)
        assert r.returncode == 0, (args, r.output)
    return Workspace(root, onnx, images)


def _env(root: Path) -> dict[str, str]:
    """The workspace's spool and LoadGen logs; its store is the default one, .effbench/results.db in the
    workspace (a doc line run here gets no --db it does not give: a set EFFBENCH_DB would count as one)."""
    return {"EFFBENCH_STATE": str(root / "state"), "EFFBENCH_DB": ""}


def _measures(command: DocCommand) -> bool:
    return bool(command.words) and command.words[0] in MEASURING


@pytest.mark.parametrize(
    "command",
    [pytest.param(c, marks=[pytest.mark.slow] if _measures(c) else []) for c in COMMANDS],
    ids=IDS,
)
def test_doc_command_runs(command: DocCommand, workspace: Workspace, cli, monkeypatch):
    command = _expanded(command)
    runnable, reasons = [], []
    for argv in command.argvs:
        stand_ins = parse(_root(), argv, command.fragment)
        reason = f"a fragment in prose, parsed with stand-ins {stand_ins}" if stand_ins else why_not_here(argv)
        if reason:
            reasons.append(reason)
        else:
            runnable.append(argv)
    if not runnable:
        pytest.skip(f"parsed only: {'; '.join(sorted(set(reasons)))}")
    monkeypatch.chdir(workspace.root)
    env = _env(workspace.root)
    for argv in runnable:
        argv = workspace.localize(argv)
        r = cli(*argv, env=env)
        assert r.returncode == 0, f"{command.id}: bench {shlex.join(argv)}\n{r.output}"
        assert "Traceback" not in r.output


# --- copies of files ------------------------------------------------------------------------------------


def _copies() -> list[tuple[str, str, str]]:
    """(doc:line, path, block) for each yaml or python block whose first line names a repository file."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for n, line in enumerate(lines):
            if line.strip() in ("```yaml", "```python") and n + 1 < len(lines):
                first = lines[n + 1].strip()
                path = first[2:].strip() if first.startswith("# ") else ""
                if path and "/" in path and " " not in path and (ROOT / path).is_file():
                    end = next(i for i in range(n + 1, len(lines)) if lines[i].strip() == "```")
                    found.append((f"{doc.relative_to(ROOT)}:{n + 2}", path, "\n".join(lines[n + 2 : end])))
    return found


def _code(text: str) -> str:
    """A module's code, without its docstring, `from __future__` imports and comments."""
    import ast

    body = [
        node
        for n, node in enumerate(ast.parse(text).body)
        if not (n == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    return "\n".join(ast.dump(node) for node in body)


@pytest.mark.parametrize("where,path,block", _copies(), ids=[c[0] for c in _copies()])
def test_a_file_shown_in_the_docs_is_the_file(where, path, block):
    text = (ROOT / path).read_text()
    if path.endswith(".py"):
        assert _code(block) == _code(text), f"{where} no longer shows {path}'s code"
    else:
        assert yaml.safe_load(block) == yaml.safe_load(text), f"{where} no longer shows {path}"


def test_the_copies_checked_include_the_readme_sweep_and_the_example_backend():
    assert {path for _, path, _ in _copies()} >= {"examples/sweep.yaml", "examples/extending/onnx_reference.py"}


# --- paths ------------------------------------------------------------------------------------------------

PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)+/?)`")  # `harness/assemble.py`, `core/probes/`, `tests/gpu`


def _paths() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            found += [(f"{doc.relative_to(ROOT)}:{n}", p) for p in PATH.findall(line)]
    return found


FILE_TYPES = (".py", ".sh", ".yaml", ".yml", ".toml", ".md", ".txt", ".json", ".css", ".js", ".log", ".service")
GENERATED = ("reports/", "site/", "data/", "calib/", "val/", "bench/baselines", ".effbench/", "tensorrt/")
NOT_PATHS = {"model/backend/device/bsN/precision/scenario", "cpufreq/cpuinfo_max_freq"}  # a label; sysfs


def _missing(path: str) -> str | None:
    """Why a path a doc names is not in the repository (None: it is). `harness/prepare.check_cell` is a
    module and a name it must define at its top level."""
    package = ROOT / "src" / "effbench"
    bases = [ROOT, package, ROOT / "src", *(d for d in package.iterdir() if d.is_dir())]
    head, _, last = path.rpartition("/")
    name = ""
    if "." in last and not last.endswith(FILE_TYPES):
        last, name = last.split(".", 1)
        path = f"{head}/{last}"  # a module or a package
    found = next(
        (f for base in bases for f in (base / f"{path}.py", base / path / "__init__.py", base / path) if f.exists()),
        None,
    )
    if found is not None and found.is_dir() and name:
        found = None
    if found is None:
        return "no such file or folder"
    if name:  # `Store.results`: Store at the top level, then a `results` inside it
        text, top, *inner = found.read_text(), *name.split(".")
        defined = [re.search(rf"^(def |class )?{re.escape(top)}\b", text, re.M)]
        defined += [re.search(rf"^[ \t]+(def )?{re.escape(part)}\b", text, re.M) for part in inner]
        if not all(defined):
            return f"{found.relative_to(ROOT)} defines no {name}"
    return None


def test_the_files_folders_and_names_the_docs_point_at_exist():
    problems = [
        f"{where}: {path}: {why}"
        for where, path in _paths()
        if not path.startswith(GENERATED) and path not in NOT_PATHS and (why := _missing(path))
    ]
    assert not problems, "\n".join(problems)
