"""A model module whose import crashes the process (native code gone wrong at import time): only
`bench run --model crash_on_import:make` imports it, in the processes that build models."""

import os
import signal

os.kill(os.getpid(), signal.SIGSEGV)


def make():  # never reached
    raise AssertionError
