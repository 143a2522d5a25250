"""Errors that the CLI turns into one line and an exit code, never a traceback."""


class EffbenchError(Exception):
    """A problem the user can fix. The message names the problem and the fix."""

    exit_code = 1


class UsageError(EffbenchError):
    """Bad input: unknown name, bad option value, missing file (exit code 2)."""

    exit_code = 2


class RunFailed(EffbenchError):
    """The run itself failed (export, load, inference)."""

    exit_code = 1


def close_matches(word: str, choices, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The distinct names among `choices` closest to `word`, for a "did you mean" hint."""
    import difflib

    return difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=n, cutoff=cutoff)


def safe_name(value: object, what: str, source: object) -> str:
    """`value`, when a file from outside may use it as a file name (effbench.paths.SAFE_NAME: letters,
    digits, '.', '_', '-', not starting with a dot); a path, '..' or an absolute path is a UsageError."""
    import re

    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", value):
        raise UsageError(
            f"{source}: {what} {str(value)[:60]!r} is not a plain name (letters, digits, '.', '_', '-'): "
            "a shared file never chooses where it is written; fix the file or export it again"
        )
    return value
