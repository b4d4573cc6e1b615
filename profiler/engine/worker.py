"""The llama.cpp worker: a child process that holds the loaded model, supervised by the parent.

A native crash in llama.cpp (a segfault in CPU kernels this CPU cannot run, an abort, the out-of-memory
killer) kills a process. Running llama.cpp in a child keeps hfp alive to say what happened and to save what was
measured. ``WorkerEngine`` (parent side, the ``Engine`` protocol) starts ``python -m profiler.engine.worker FD``
and talks to it over a socket pair with pickled requests; the child (``serve``) loads a ``LlamaCppEngine`` and
answers ``tokenize`` / ``run`` / ``close``. The per-token loop stays entirely inside the child; one
``PointTimings`` per engine call crosses the pipe. The parent keeps the record, the progress display and the
telemetry (it samples the child's RSS and CPU time by pid).

A child that dies by a signal, exits unexpectedly, or does not answer within a time limit (it is then killed)
becomes ``WorkerCrashed``, an ``EngineError`` whose one-line message names the signal and the likely cause.
Interrupting the parent (Ctrl-C, or SIGTERM turned into the same path) kills a busy child in ``close``; a
parent killed outright takes the child with it (``PR_SET_PDEATHSIG`` on Linux).

Test switches (environment, read by the child once at start): ``HFP_TEST_WORKER_SEGFAULT_AT=K`` makes the child
kill itself with SIGSEGV at the first measured repetition of point K (1-based; after its warm-up),
``HFP_TEST_WORKER_HANG_AT=K`` makes it sleep there instead, ``HFP_TEST_FORCE_SELFCHECK_CRASH=1`` makes the
self-check decode crash while llama.cpp's extra buffer types are on (``profiler.engine.selfcheck``).

This module must not compute metrics or read sensors.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from profiler.engine.common import PointTimings
from profiler.engine.llamacpp import LlamaCppEngine, backend_init
from profiler.errors import EngineError, HfpError
from profiler.record import Settings

START_TIMEOUT_S = 300.0  # importing llama_cpp and numpy on a loaded machine
CLOSE_TIMEOUT_S = 10.0
_POLL_S = 0.5
SEGFAULT_AT_ENV, HANG_AT_ENV = "HFP_TEST_WORKER_SEGFAULT_AT", "HFP_TEST_WORKER_HANG_AT"
FORCE_SELFCHECK_CRASH_ENV = "HFP_TEST_FORCE_SELFCHECK_CRASH"

SIGNAL_CAUSES = {
    "SIGSEGV": "a segmentation fault in llama.cpp's native code: a llama.cpp bug, or CPU kernels this CPU cannot "
               "run (e.g. AMX kernels in a VM; `python -m profiler.engine.selfcheck --force` checks this build)",
    "SIGILL": "an illegal instruction: this llama.cpp build uses CPU instructions this CPU lacks (built with "
              "-march=native on another machine?); rebuild llama-cpp-python on this host (`make clean install`)",
    "SIGBUS": "a bus error: the model file changed or was truncated while mapped, or memory ran out",
    "SIGABRT": "llama.cpp aborted (a failed GGML_ASSERT or C++ exception); rerun with --verbose to see its message",
    "SIGFPE": "an arithmetic fault in llama.cpp's native code",
    "SIGTERM": "it was terminated from outside hfp",
}


class WorkerCrashed(EngineError):
    """The llama.cpp worker died by a signal, exited, or hung past its time limit."""

    def __init__(self, message: str, signal_name: str | None = None, what: str = "", hung: bool = False) -> None:
        super().__init__(message)
        self.signal_name, self.what, self.hung = signal_name, what, hung


# --- parent side ---------------------------------------------------------------------------------------------


def _oom_kills() -> int | None:
    """The cgroup's OOM-kill counter (cgroup v2 ``memory.events``), to tell the OOM killer from other SIGKILLs."""
    try:
        for line in Path("/sys/fs/cgroup/memory.events").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(CLOSE_TIMEOUT_S)


class WorkerEngine:
    """The ``Engine`` protocol over a supervised child process that holds the llama.cpp model.

    ``WorkerEngine(verbose)`` starts the child (not yet loaded, so its baseline RSS can be read); ``load``
    loads the model; ``run`` measures one call. Every request has a time limit (``None``: wait for ever).
    """

    def __init__(self, verbose: bool = False, purpose: str = "run", start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.verbose, self.purpose = verbose, purpose
        self._stderr: IO[bytes] | None = None if verbose else tempfile.TemporaryFile()
        self._oom_before = _oom_kills()
        self._busy = False
        # the child imports hfp from where this process did, even when it runs from a source tree
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        parent, child = Pipe(duplex=True)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "profiler.engine.worker", str(child.fileno()), str(os.getpid())],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stderr=self._stderr, env=env,
                stdout=self._stderr if self._stderr is not None else 2,  # never into hfp's stdout (--json)
            )
        finally:
            child.close()
        self.conn: Connection = parent
        self.pid = self.proc.pid
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        self._call("ready", {}, start_timeout_s, "starting the llama.cpp worker")

    # --- requests --------------------------------------------------------------------------------------------

    def _call(self, op: str, args: dict[str, Any], timeout_s: float | None, what: str) -> Any:
        if self.proc is None:
            raise EngineError("the llama.cpp worker is closed")
        self._busy = True
        if op != "ready":
            try:
                self.conn.send((op, args))
            except OSError:
                raise self._died(what) from None
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
            if self.conn.poll(wait):
                try:
                    reply = self.conn.recv()
                except (EOFError, OSError):
                    raise self._died(what) from None
                break
            if self.proc.poll() is not None:
                raise self._died(what)
            if deadline is not None and time.monotonic() >= deadline:
                raise self._hung(what, timeout_s or 0.0)
        self._busy = False
        status, *rest = reply
        if status == "ok":
            return rest[0]
        kind, message = rest
        error = getattr(sys.modules["profiler.errors"], kind, None)
        if isinstance(error, type) and issubclass(error, HfpError):
            raise error(message)
        if kind in ("ValueError", "RuntimeError"):  # what llama-cpp-python raises for a model it cannot load
            raise {"ValueError": ValueError, "RuntimeError": RuntimeError}[kind](message)
        raise EngineError(f"the llama.cpp worker failed while {what}: {kind}: {message}")

    def call(self, fn: str, *args: Any, timeout_s: float | None = None, what: str = "") -> Any:
        """Call ``fn`` (``"package.module:function"``, picklable arguments and result) in the child."""
        return self._call("call", {"fn": fn, "args": list(args)}, timeout_s, what or f"running {fn}")

    def load(self, model_path: str | Path, settings: Any, timeout_s: float | None = None) -> None:
        """Load the model in the child with ``settings`` (a ``profiler.record.Settings``)."""
        self.settings = settings
        args = {"path": str(model_path), "settings": settings.model_dump(), "verbose": self.verbose,
                "purpose": self.purpose}
        self._call("load", args, timeout_s, f"loading {Path(model_path).name}")

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text`` (with BOS where the model adds one, if ``add_special``)."""
        return self._call("tokenize", {"text": text, "add_special": add_special}, 120.0, "tokenizing")  # type: ignore[no-any-return]

    def run(self, prompts: list[list[int]], output_tokens: int, timeout_s: float | None = None, what: str = "",
            point: int = 0, phase: str = "") -> PointTimings:
        """One engine call in the child (see ``LlamaCppEngine.run``); ``point``/``phase`` label it (1-based
        point index, ``"warm-up"`` or ``"repetition N"``) for messages and the test switches."""
        args = {"prompts": prompts, "output_tokens": output_tokens, "point": point, "phase": phase}
        return self._call("run", args, timeout_s, what or "decoding")  # type: ignore[no-any-return]

    # --- failures --------------------------------------------------------------------------------------------

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 2000))
            lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
            if lines:
                return lines[-1][:200]
        return ""

    def _died(self, what: str) -> WorkerCrashed:
        self._busy = False
        assert self.proc is not None
        try:
            rc = self.proc.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # the pipe broke but the process lingers: finish it
            _kill(self.proc)
            rc = self.proc.returncode
        said = self._stderr_tail()
        tail = f" (its last output: {said})" if said else ""
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            cause = self._kill_cause() if name == "SIGKILL" else SIGNAL_CAUSES.get(name, "an unexpected signal")
            return WorkerCrashed(f"the llama.cpp worker died by {name} while {what}: {cause}{tail}", name, what)
        return WorkerCrashed(f"the llama.cpp worker exited with status {rc} while {what}{tail}", None, what)

    def _kill_cause(self) -> str:
        after = _oom_kills()
        if after is not None and self._oom_before is not None and after > self._oom_before:
            return ("it was killed by the out-of-memory killer (the cgroup's oom_kill count rose); use fewer "
                    "--parallel sequences, shorter prompts/outputs or a smaller model")
        return ("it was killed from outside hfp, most likely by the out-of-memory killer; use fewer --parallel "
                "sequences, shorter prompts/outputs or a smaller model")

    def _hung(self, what: str, timeout_s: float) -> WorkerCrashed:
        self._busy = False
        assert self.proc is not None
        _kill(self.proc)
        return WorkerCrashed(
            f"the llama.cpp worker did not finish {what} within its time limit of {timeout_s:.0f} s and was "
            "killed (hung, or far slower than expected; raise the limit with --point-timeout)", "SIGKILL", what,
            hung=True,
        )

    # --- lifetime --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the child: ask it to free the model, or kill it when it is busy (an interrupted call) or stuck."""
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        try:
            if not self._busy and proc.poll() is None:
                with contextlib.suppress(OSError, EOFError):
                    self.conn.send(("close", {}))
                    if self.conn.poll(CLOSE_TIMEOUT_S):
                        self.conn.recv()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(CLOSE_TIMEOUT_S)
        finally:
            _kill(proc)
            self.conn.close()
            if self._stderr is not None:
                self._stderr.close()
            self._finalizer.detach()
            self.proc = None  # type: ignore[assignment]

    def __enter__(self) -> WorkerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessEngine:
    """``LlamaCppEngine`` in this process behind ``WorkerEngine``'s interface, unsupervised: a native crash takes
    hfp down with it. Only for measuring what the worker costs (``benchmarks/harness_overhead.py``)."""

    def __init__(self, verbose: bool = False, purpose: str = "run") -> None:
        self.verbose, self.purpose = verbose, purpose
        self.pid = os.getpid()
        self.engine: Any = None

    def load(self, model_path: str | Path, settings: Any, timeout_s: float | None = None) -> None:
        """Load the model here (no time limit)."""
        self.settings = settings
        self.engine = LlamaCppEngine(model_path, settings, self.verbose)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text``."""
        return self.engine.tokenize(text, add_special)  # type: ignore[no-any-return]

    def run(self, prompts: list[list[int]], output_tokens: int, timeout_s: float | None = None, what: str = "",
            point: int = 0, phase: str = "") -> PointTimings:
        """One engine call (no time limit)."""
        return self.engine.run(prompts, output_tokens)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Free the model."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class RemoteObject:
    """An object built and kept inside its own worker (e.g. llama-cpp-python's ``Llama``); its methods are called
    over the pipe, so a native crash in it is a ``WorkerCrashed`` here. Arguments and results must pickle."""

    def __init__(self, factory: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                 verbose: bool = False, timeout_s: float | None = None, what: str = "") -> None:
        self.worker = WorkerEngine(verbose=verbose, purpose="call")
        try:
            self.handle = self.worker._call("call", {"fn": factory, "args": list(args), "kwargs": kwargs or {},
                                                     "keep": True}, timeout_s, what or f"creating {factory}")
        except BaseException:
            self.worker.close()
            raise

    def call(self, name: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """``obj.name(*args, **kwargs)`` in the worker."""
        return self.worker._call("call", {"obj": self.handle, "name": name, "args": list(args), "kwargs": kwargs},
                                 timeout_s, f"calling {name}")

    def get(self, name: str) -> Any:
        """``getattr(obj, name, None)`` from the worker."""
        return self.worker._call("getattr", {"obj": self.handle, "name": name}, 120.0, f"reading {name}")

    def close(self) -> None:
        """Close the object (if it has ``close``) and stop its worker."""
        self.worker.close()


class LlamaProxy(RemoteObject):
    """llama-cpp-python's high-level ``Llama`` in a supervised worker (safety probes, the judge classifier)."""

    REPLY_TIMEOUT_S = 900.0  # one chat reply; a hang, not a slow reply, is what this catches

    def __init__(self, **kwargs: Any) -> None:  # ``Llama``'s own keyword arguments; ``verbose`` shows its log
        super().__init__("llama_cpp:Llama", kwargs=kwargs, verbose=bool(kwargs.get("verbose")),
                         what=f"loading {Path(kwargs['model_path']).name}")

    @property
    def chat_format(self) -> str | None:
        """The chat format llama-cpp-python chose."""
        return self.get("chat_format")  # type: ignore[no-any-return]

    def create_chat_completion(self, **kwargs: Any) -> Any:
        """``Llama.create_chat_completion`` in the worker."""
        return self.call("create_chat_completion", timeout_s=self.REPLY_TIMEOUT_S, **kwargs)


def call_in_worker(fn: str, *args: Any, timeout_s: float | None = None, what: str = "") -> Any:
    """Run one llama.cpp task (``"package.module:function"``) in a fresh supervised worker: a native crash
    becomes ``WorkerCrashed`` here instead of killing hfp."""
    with WorkerEngine(purpose="call") as worker:
        return worker.call(fn, *args, timeout_s=timeout_s, what=what)


def open_engine(model_path: str | Path, settings: Any, verbose: bool = False, timeout_s: float | None = None,
                purpose: str = "run") -> WorkerEngine:
    """A started worker with the model loaded (closed again if loading fails)."""
    engine = WorkerEngine(verbose=verbose, purpose=purpose)
    try:
        engine.load(model_path, settings, timeout_s)
    except BaseException:
        engine.close()
        raise
    return engine


# --- child side ----------------------------------------------------------------------------------------------


def kill_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``; elsewhere nothing), so a
    killed parent never leaves a child behind (also a ``preexec_fn`` for ``subprocess``)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _die_with_parent(parent_pid: int) -> None:
    """``kill_with_parent``, and exit now if hfp already died before the request took effect."""
    kill_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _env_point(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


class _TestSwitches:
    """Failures the test suite injects through the environment (see the module docstring)."""

    def __init__(self) -> None:
        self.segfault_at = _env_point(SEGFAULT_AT_ENV)
        self.hang_at = _env_point(HANG_AT_ENV)
        self.selfcheck_crash = os.environ.get(FORCE_SELFCHECK_CRASH_ENV) == "1"

    def before_run(self, point: int, phase: str, purpose: str, extra_bufts: bool) -> None:
        measured = phase != "warm-up"
        if self.selfcheck_crash and purpose == "selfcheck" and extra_bufts:
            os.kill(os.getpid(), signal.SIGSEGV)
        if measured and point == self.segfault_at:
            os.kill(os.getpid(), signal.SIGSEGV)
        if measured and point == self.hang_at:
            time.sleep(24 * 3600)


class _Child:
    """The child's state between requests: the loaded engine, the objects kept for ``RemoteObject``, the test
    switches, and what the model was loaded for."""

    def __init__(self) -> None:
        self.switches = _TestSwitches()
        self.engine: LlamaCppEngine | None = None
        self.objects: dict[int, Any] = {}  # kept by "call" with keep=True (RemoteObject)
        self.purpose = "run"

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        """The value of one request (an exception becomes an error reply)."""
        if op == "load":
            self.purpose = args["purpose"]
            self.engine = LlamaCppEngine(args["path"], Settings.model_validate(args["settings"]), args["verbose"])
            return None
        if op == "call":
            return self._call(args)
        if op == "getattr":
            return getattr(self.objects[args["obj"]], args["name"], None)
        engine = self.engine
        if engine is None:
            raise EngineError(f"the llama.cpp worker got {op!r} before a model was loaded")
        if op == "tokenize":
            return engine.tokenize(args["text"], args["add_special"])
        if op == "run":
            self.switches.before_run(args["point"], args["phase"], self.purpose, engine.settings.extra_bufts)
            return engine.run(args["prompts"], args["output_tokens"])
        raise EngineError(f"the llama.cpp worker does not know {op!r}")

    def _call(self, args: dict[str, Any]) -> Any:
        if "fn" in args:
            module, _, name = args["fn"].partition(":")
            target = getattr(importlib.import_module(module), name)
        else:
            target = getattr(self.objects[args["obj"]], args["name"])
        value = target(*args["args"], **args.get("kwargs", {}))
        if args.get("keep"):
            self.objects[len(self.objects) + 1] = value
            value = len(self.objects)
        return value

    def close(self) -> None:
        """Free the model and close every kept object."""
        if self.engine is not None:
            self.engine.close()
        for obj in self.objects.values():
            with contextlib.suppress(Exception):
                getattr(obj, "close", lambda: None)()


def serve(conn: Connection) -> None:
    """Answer the parent's requests until it says ``close`` or goes away."""
    # Load llama.cpp's libraries before saying ready, so the baseline RSS the parent reads next holds them and
    # the measured peak above it is the model's own memory, as profiler.memory predicts it.
    backend_init()
    child = _Child()
    conn.send(("ok", os.getpid()))
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            break
        if op == "close":
            break
        try:
            conn.send(("ok", child.answer(op, args)))
        except Exception as e:  # HfpError or anything else: reported to the parent, which raises it there
            conn.send(("error", type(e).__name__, str(e)))
    child.close()
    with contextlib.suppress(OSError):
        conn.send(("ok", None))  # closed: the parent's close() waits for this


def main(argv: list[str]) -> None:
    """Child entry point: ``python -m profiler.engine.worker FD PARENT_PID``."""
    # Ctrl-C and a closed terminal reach the whole process group; they are the parent's to handle (it saves the
    # finished points, then stops this child).
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    _die_with_parent(int(argv[1]))
    conn = Connection(int(argv[0]))
    try:
        serve(conn)
    except (pickle.PicklingError, BrokenPipeError):  # pragma: no cover - the parent went away mid-reply
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
