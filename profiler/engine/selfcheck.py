"""The llama.cpp self-check: does this build decode on this CPU, with and without extra buffer types?

llama.cpp's CPU backend adds "extra buffer types" (weight repacking and, when compiled with ``-march=native`` on
a CPU that advertises them, AMX kernels). On some hosts (AMX in a VM) those kernels crash the process at the
first matrix multiply. The self-check runs a short decode of the default model in a worker
(``profiler.engine.worker``); if it crashes, it retries with ``use_extra_bufts = false``. The verdict is cached
per (llama-cpp-python build, CPU model and flags) under the user cache directory, so the check costs a few
seconds once; ``settings_for_host`` applies it to a run's settings (``extra_bufts: false`` with the reason).

``python -m profiler.engine.selfcheck`` (run at the end of ``make install``) prints one line and exits 0 (ok),
3 (crashes with extra buffer types and the build has AMX kernels: rebuild without AMX), 4 (crashes with extra
buffer types, no AMX in the build: hfp turns them off) or 1 (crashes either way).

This module must not measure anything it reports as a result.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from pydantic import BaseModel

from profiler.engine.llamacpp import system_info
from profiler.engine.worker import FORCE_SELFCHECK_CRASH_ENV, WorkerCrashed, open_engine
from profiler.errors import EngineError, HfpError
from profiler.files import cache_dir, write_atomic
from profiler.models import default_model_path
from profiler.record import Settings, now_iso
from profiler.workload_prompts import exact_prompt

SELFCHECK_TIMEOUT_S = 180.0
EXIT_OK, EXIT_BROKEN, EXIT_AMX_CRASH, EXIT_EXTRA_BUFTS_CRASH = 0, 1, 3, 4
FORCE_CRASH_ENV = FORCE_SELFCHECK_CRASH_ENV  # read by the worker child (profiler.engine.worker)
ASSUME_AMX_ENV = "HFP_TEST_SELFCHECK_ASSUME_AMX_BUILD"  # tests the Makefile's rebuild branch on a host without AMX

Notice = Callable[[str], None]


class Verdict(BaseModel):
    """What the self-check found for one build on one CPU."""

    key: str
    extra_bufts_ok: bool
    fallback_ok: bool | None = None  # None: not needed
    reason: str | None = None
    signal: str | None = None
    build_has_amx: bool = False
    cpu_amx_flags: list[str] = []
    llama_cpp_python: str | None = None
    checked_at: str
    seconds: float

    @property
    def usable(self) -> bool:
        """llama.cpp decodes here, with or without extra buffer types."""
        return self.extra_bufts_ok or bool(self.fallback_ok)

    def summary(self) -> str:
        """One line for ``hfp hardware`` and the install log."""
        if self.extra_bufts_ok:
            return f"ok (extra buffer types on; checked {self.checked_at})"
        if self.fallback_ok:
            return f"extra buffer types crash here ({self.signal}); hfp runs with use_extra_bufts = false"
        return f"llama.cpp crashes here even without extra buffer types ({self.signal})"


def cpu_flags(proc: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """The CPU's model name and feature flags (x86 ``flags``, Arm ``Features``)."""
    name, flags = "", list[str]()
    try:
        for line in proc.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" and not name:
                name = value.strip()
            if key in ("flags", "features") and not flags:
                flags = sorted(value.split())
    except OSError:
        pass
    return name, flags


def cpu_kernels(info: str | None) -> list[str]:
    """CPU features llama.cpp's build uses, from ``llama_print_system_info`` (``AVX2 = 1 | AMX_INT8 = 1 ...``)."""
    kernels = []
    for part in (info or "").replace("\n", "|").split("|"):
        key, _, value = part.rpartition("=")
        key = key.split(":")[-1].strip()
        if key and value.strip() == "1":
            kernels.append(key)
    return kernels


def build_identity() -> dict[str, object]:
    """What distinguishes one llama-cpp-python build from another: version and its shared libraries' stats."""
    spec = importlib.util.find_spec("llama_cpp")
    libs: list[list[object]] = []
    version = None
    if spec and spec.origin:
        root = Path(spec.origin).parent
        for lib in sorted((root / "lib").glob("*.so*")) + sorted(root.glob("*.so*")):
            st = lib.stat()
            libs.append([lib.name, st.st_size, st.st_mtime_ns])
        with open(root / "__init__.py", encoding="utf-8", errors="replace") as f:
            version = next((ln.split("=", 1)[1].strip().strip("\"'") for ln in f if ln.startswith("__version__")),
                           None)
    return {"llama_cpp_python": version, "libs": libs}


def cache_key() -> str:
    """Hash of the build, the CPU and the test switch (so a forced crash never poisons the real cache)."""
    name, flags = cpu_flags()
    blob = json.dumps({"build": build_identity(), "cpu": name, "flags": flags,
                       "force_crash": os.environ.get(FORCE_CRASH_ENV) == "1",
                       "assume_amx": os.environ.get(ASSUME_AMX_ENV) == "1"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _cache_path(key: str) -> Path:
    return cache_dir() / "selfcheck" / f"{key}.json"


def cached_verdict() -> Verdict | None:
    """The cached verdict for this build and CPU, if the self-check ran before."""
    try:
        path = _cache_path(cache_key())
        return Verdict.model_validate_json(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _save(verdict: Verdict) -> Path:
    path = _cache_path(verdict.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, verdict.model_dump_json(indent=1))


def _model_path(hint: str | Path | None) -> Path:
    try:
        return Path(default_model_path())
    except HfpError:
        if hint is None:
            raise
        return Path(hint)


def decode_crash(model_path: Path, extra_bufts: bool) -> WorkerCrashed | None:
    """Run a short decode (32-token prompts, 2 sequences, 4 tokens) in a worker; the crash, or None."""
    cores = psutil.cpu_count(logical=False) or 1
    settings = Settings(threads=cores, threads_batch=cores, n_ctx=0, extra_bufts=extra_bufts, repetitions=1)
    try:
        with open_engine(model_path, settings, timeout_s=SELFCHECK_TIMEOUT_S, purpose="selfcheck") as engine:
            prompts = [exact_prompt(engine.tokenize, 32, s) for s in range(2)]
            engine.run(prompts, 4, timeout_s=SELFCHECK_TIMEOUT_S, what="the self-check decode", phase="selfcheck")
    except WorkerCrashed as e:
        return e
    return None


def _stderr_notice(message: str) -> None:
    print(message, file=sys.stderr)


def check(model_hint: str | Path | None = None, force: bool = False, notice: Notice | None = _stderr_notice) -> Verdict:
    """The verdict for this build and CPU: cached, or found now by one or two short decodes in workers.

    A crash with extra buffer types on is said once (through ``notice``) when found; a verdict where llama.cpp
    crashes either way is not cached, so the next run checks again.
    """
    key = cache_key()
    if not force:
        cached = cached_verdict()
        if cached is not None:
            return cached
    t0 = time.perf_counter()
    model = _model_path(model_hint)
    info = system_info()
    _, flags = cpu_flags()
    amx_build = any(k.startswith("AMX") for k in cpu_kernels(info)) or os.environ.get(ASSUME_AMX_ENV) == "1"
    common = {"key": key, "build_has_amx": amx_build,
              "cpu_amx_flags": [f for f in flags if f.startswith("amx")],
              "llama_cpp_python": build_identity()["llama_cpp_python"], "checked_at": now_iso()}
    crash = decode_crash(model, extra_bufts=True)
    if crash is None or crash.hung:  # a decode too slow for the limit (a loaded machine) proves nothing: not cached
        verdict = Verdict(extra_bufts_ok=True, seconds=round(time.perf_counter() - t0, 2), **common,  # type: ignore[arg-type]
                          reason="self-check timed out; not concluded" if crash else None)
        if crash is None:
            _save(verdict)
        return verdict
    second = decode_crash(model, extra_bufts=False)
    reason = (f"the self-check decode crashed with llama.cpp's extra buffer types on ({crash.signal_name or 'exit'}"
              f"{', AMX kernels in this build' if common['build_has_amx'] else ''})")
    verdict = Verdict(extra_bufts_ok=False, fallback_ok=second is None, reason=reason, signal=crash.signal_name,
                      seconds=round(time.perf_counter() - t0, 2), **common)  # type: ignore[arg-type]
    if verdict.fallback_ok:
        path = _save(verdict)
        if notice:
            notice(f"note: {reason}; it decodes with use_extra_bufts = false, so hfp runs llama.cpp that way on this "
                   f"build and CPU (recorded in each run's settings; verdict cached in {path})")
    return verdict


def settings_for_host(settings: Settings, model_hint: str | Path | None = None,
                      notice: Notice | None = _stderr_notice) -> Settings:
    """``settings`` with extra buffer types turned off (and the reason) where the self-check found they crash."""
    verdict = check(model_hint, notice=notice)
    if not verdict.usable:
        raise EngineError(
            f"llama.cpp crashes on this CPU even with extra buffer types off ({verdict.signal}); rebuild "
            "llama-cpp-python on this host (`make clean install`), or report the llama.cpp version and CPU"
        )
    if verdict.extra_bufts_ok or not settings.extra_bufts:
        return settings
    return settings.model_copy(update={"extra_bufts": False, "extra_bufts_reason": verdict.reason})


def main(argv: list[str] | None = None) -> int:
    """``python -m profiler.engine.selfcheck [--force]``: one line, and an exit status the Makefile acts on."""
    ap = argparse.ArgumentParser(prog="python -m profiler.engine.selfcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="ignore the cached verdict and check again")
    args = ap.parse_args(argv)
    try:
        cached = None if args.force else cached_verdict()
        verdict = cached or check(force=args.force, notice=None)
    except HfpError as e:
        print(f"error: llama.cpp self-check: {e}", file=sys.stderr)
        return EXIT_BROKEN
    print(f"llama.cpp self-check: {verdict.summary()} [{'cached' if cached else f'{verdict.seconds:.1f} s'}]")
    if verdict.extra_bufts_ok:
        return EXIT_OK
    if not verdict.fallback_ok:
        return EXIT_BROKEN
    return EXIT_AMX_CRASH if verdict.build_has_amx else EXIT_EXTRA_BUFTS_CRASH


if __name__ == "__main__":
    sys.exit(main())
