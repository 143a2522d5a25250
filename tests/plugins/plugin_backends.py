"""Test-only backends, registered through the effbench.backends entry-point group by the distribution
in tests/plugins/entrypoints (on PYTHONPATH only in the tests that use them: `conftest.PLUGIN_ENV`).

They stand in for what cannot be provoked on purpose with a real runtime: a runtime that is not
installed, one that aborts the process, one that hangs.
"""

import os
import time

from effbench.backends.null_backend import NullBackend, NullSession


class MissingRuntimeBackend(NullBackend):
    name = "missingrt"

    def version(self):
        return None


class _AbortSession(NullSession):
    def run(self):
        os.abort()


class AbortBackend(NullBackend):
    """Aborts (SIGABRT) on the first inference, like a runtime hitting a fatal assertion."""

    name = "abort"

    def open(self, artifact, settings):
        return _AbortSession(0)


class _HangSession(NullSession):
    def run(self):
        time.sleep(3600)


class HangBackend(NullBackend):
    name = "hang"

    def open(self, artifact, settings):
        return _HangSession(0)
