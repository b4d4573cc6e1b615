"""The project's exception hierarchy.

Every error a user can cause (bad file, bad option, model too large) is an ``HfpError``; the CLI prints its
message on one line and exits with status 2. Vendor errors are translated where they enter the code.
"""

from __future__ import annotations

import signal


class HfpError(Exception):
    """A user-facing error: the message says what went wrong and, where possible, what to do next."""

    exit_code = 2


class ModelError(HfpError):
    """A model file is missing, not GGUF, truncated or otherwise unreadable."""


class ModelTooLargeError(HfpError):
    """The model and its KV cache will not fit in the memory available; raised before loading."""


class ConfigError(HfpError):
    """A scenario, hardware profile, probe set or option is invalid."""


class EngineError(HfpError):
    """llama.cpp failed to load a model, create a context or decode."""


class RecordError(HfpError):
    """A run record is unreadable, of another schema version, or incompatible with another record."""


class DiskFullError(HfpError):
    """A write ran out of space (or past a file-size limit); the previous file, if any, is left intact."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) turned into the interruption Ctrl-C raises.

    A ``KeyboardInterrupt`` subclass, so every ``except KeyboardInterrupt`` that keeps finished work handles all
    three signals alike; ``signame`` says which one arrived (the record's ``interrupted`` field names it).
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(self.signame)


def signal_name(error: BaseException) -> str:
    """The signal behind an interruption: ``SIGTERM`` for an ``Interrupted``, ``SIGINT`` for a plain Ctrl-C."""
    return getattr(error, "signame", "SIGINT")
