"""The `bench ...` command lines of README.md and docs/*.md, and how to parse one with the real command tree.

A line in a shell block (no language, sh, bash, console, ini) is a whole command line; an inline
`bench ...` span in prose may be a fragment (`bench run --precision int8`), parsed with the required
parameters it leaves out filled in. The docs' synopsis notation: `[--opt X]` is parsed with the option
given, `a|b` as each alternative, `cmd1 | cmd2` (spaces) as sibling sub-commands, `NAME...` as NAME, and a
lone `...` marks the line as a fragment.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "sh", "bash", "console", "shell", "ini"}
DIAGRAM = re.compile("[\u2500-\u257f\u25b6\u25ba\u2192]")  # box drawing and arrows: the rest of the line is a picture
INLINE = re.compile(r"`((?:[A-Za-z_][A-Za-z0-9_]*=\S+ )*(?:sudo )?bench [^`]+)`")


@dataclass
class DocCommand:
    path: str  # relative to the repository
    line: int
    text: str  # as written, continuation lines joined
    words: list[str]  # after `bench`, shell-split
    fragment: bool  # an inline span or one with `...`: missing required parameters are filled in
    argvs: list[list[str]] = field(default_factory=list)  # after `bench`, one per alternative

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def doc_commands() -> list[DocCommand]:
    found: list[DocCommand] = []
    for doc in DOCS:
        found.extend(_commands_of(doc))
    return found


def _commands_of(doc: Path) -> Iterator[DocCommand]:
    rel = str(doc.relative_to(ROOT))
    lines = doc.read_text().splitlines()
    fence: str | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            i += 1
            continue
        if fence is None:
            start, text = i, lines[i]
            while text.count("`") % 2 and i + 1 < len(lines) and lines[i + 1].strip():  # a span across lines
                i += 1
                text += " " + lines[i].strip()
            i += 1
            for span in INLINE.findall(text):
                words = _bench_command(shlex.split(span))
                if words is not None:
                    yield DocCommand(rel, start + 1, span, words, fragment=True)
            continue
        start, text = i, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):  # a continued shell line
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if fence not in SHELL_FENCES:
            continue
        text = DIAGRAM.split(text)[0].strip()
        if text.startswith("$ "):
            text = text[2:]
        for words in _shell_commands(text):
            yield DocCommand(rel, start + 1, text, words, fragment=False)


def _shell_commands(text: str) -> Iterator[list[str]]:
    """The `bench` commands of one shell line: split at && and ;, comments and redirections dropped."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return
    current: list[str] = []
    for word in [*words, "&&"]:
        if word in ("&&", ";", "||"):
            command = _bench_command(current)
            if command is not None:
                yield command
            current = []
        else:
            current.append(word)


def _bench_command(words: list[str]) -> list[str] | None:
    """The arguments after `bench` of a shell command (env assignments and sudo before it), else None."""
    while words and (words[0] == "sudo" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0])):
        if words[0] != "sudo" and words[0].split("=", 1)[1].endswith("/bench"):  # ExecStart=/path/bin/bench
            words = ["bench", *words[1:]]
            break
        words = words[1:]
    if not words or Path(words[0]).name != "bench":
        return None
    for redirect in (">", ">>", "2>", "<"):
        if redirect in words:
            words = words[: words.index(redirect)]
    return words[1:]


# placeholders the docs use, and what stands in for them when a line is parsed
PLACEHOLDERS = {
    "M": "efficientvit_m0",
    "MODEL": "efficientvit_m0",
    "B": "onnxruntime",
    "D": "cpu",
    "T": "nightly",
    "Q": "50",
    "PCT": "5",
    "DATE": "2026-11-01",
    "URL": ".effbench/results.db",  # the default store: the test workspace's
    "FILE": "results.jsonl",
    "DIR": "site",
    "NAME": "cpu",
    "HEAD_IP": "10.0.0.2",
    "HEAD_IP:6379": "10.0.0.2:6379",
}


# a placeholder that means something else after this option
PLACEHOLDERS_AFTER = {("--options", "NAME"): "openvino", ("--device", "NAME"): "pi5", ("check", "NAME"): "local-cpu"}


def _placeholder(word: str, before: str = "") -> str:
    if (before, word) in PLACEHOLDERS_AFTER:
        return PLACEHOLDERS_AFTER[before, word]
    if word in PLACEHOLDERS:
        return PLACEHOLDERS[word]
    if word.endswith("...") and word != "...":  # NAME... (repeatable) or a,b,... (a list)
        return _placeholder(word[:-3].rstrip(","), before)
    return word


def expand(command: DocCommand, resolves: Any) -> DocCommand:
    """Fill command.argvs: the synopsis notation expanded; `resolves(argv)` says whether a word path is
    a command (to place `a | b` alternatives)."""
    words = [w.strip("[]") for w in command.words if w.strip("[]")]
    if "..." in words:
        command.fragment = True
    alternatives = _split_bars(words)
    heads = [alternatives[0]]
    for alt in alternatives[1:]:
        base = alternatives[0]
        for cut in range(len(base), -1, -1):  # the deepest place where the alternative is a sub-command
            if alt and resolves([*base[:cut], alt[0]]):
                heads.append([*base[:cut], *alt])
                break
        # else: a real shell pipe (`bench results --format csv | head`): the rest is not bench's
    argvs: list[list[str]] = []
    for head in heads:
        head = [_placeholder(w, before) for before, w in zip(["", *head], head) if w != "..."]
        options = [w.split("|") if "|" in w and not w.startswith("|") else [w] for w in head]
        argvs.extend(list(p) for p in itertools.product(*options))
    command.argvs = argvs
    return command


def _split_bars(words: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for w in words:
        if w == "|":
            groups.append([])
        else:
            groups[-1].append(w)
    return groups


def resolve(root: Any, argv: list[str]) -> tuple[Any, list[str]]:
    """The command `bench ARGV` runs and the arguments left for it (lazy commands load here, as in `bench`)."""
    command, rest = root, list(argv)
    while rest and not rest[0].startswith("-") and hasattr(command, "resolve_command"):
        ctx = command.make_context(command.name, [], resilient_parsing=True)
        _, sub, remaining = command.resolve_command(ctx, rest)
        if sub is None:
            break
        command, rest = sub, remaining
    return command, rest


def is_command_path(root: Any, argv: list[str]) -> bool:
    try:
        command, rest = resolve(root, argv)
    except Exception as e:  # click's UsageError (typer may vendor its own click)
        if not is_usage_error(e):
            raise
        return False
    return not rest and command is not root


def parse(root: Any, argv: list[str], fragment: bool) -> list[str]:
    """Parse `bench ARGV` as `bench` would, without invoking it: the command exists, every option exists
    and its value converts (click's UsageError otherwise). A fragment gets a stand-in for each required
    parameter it leaves out: those are returned (empty for a whole command line)."""
    command, rest = resolve(root, argv)
    if command is root:
        raise AssertionError(f"no bench command in {argv}")
    if fragment and not rest and hasattr(command, "resolve_command"):
        return ["COMMAND"]  # a group named in prose (`bench site`): that it resolves is the check
    added: list[str] = []
    for _ in range(len(command.params) + 1):
        try:
            command.make_context(command.name or "", [*rest, *added])
            return added
        except Exception as e:
            param = getattr(e, "param", None)
            if not (fragment and type(e).__name__ == "MissingParameter" and param is not None):
                raise
            added += _stand_in(param)
    raise AssertionError(f"{argv}: parameters still missing after {added}")


def declared_options(root: Any, argv: list[str]) -> set[str]:
    command, _ = resolve(root, argv)
    return {opt for p in command.params for opt in p.opts}


def _stand_in(param: Any) -> list[str]:
    """A value for a parameter a fragment leaves out: a number parses as a str, an int or a float."""
    choices = getattr(getattr(param, "type", None), "choices", None)
    value = str(choices[0]) if choices else "1"
    return [param.opts[0], value] if param.opts[0].startswith("-") else [value]


def is_usage_error(e: BaseException) -> bool:
    """click's UsageError and its kinds (no such command or option, a bad value, a missing parameter)."""
    return any(cls.__name__ == "UsageError" for cls in type(e).__mro__)
