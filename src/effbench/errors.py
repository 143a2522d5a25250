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
