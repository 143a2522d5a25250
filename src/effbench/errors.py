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
