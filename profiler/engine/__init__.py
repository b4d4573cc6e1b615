"""Engines run workload points and return raw timings; ``LlamaCppEngine`` is the real one, and hfp runs it
inside a supervised child process (``profiler.engine.worker.WorkerEngine``, imported from there: the child runs
that module as ``__main__``, so this package must not import it)."""

from profiler.engine.common import Engine, PhaseTimings, PointTimings
from profiler.engine.llamacpp import LlamaCppEngine, llama_cpp_version, quiet_llama_logs

__all__ = ["Engine", "LlamaCppEngine", "PhaseTimings", "PointTimings", "llama_cpp_version", "quiet_llama_logs"]
