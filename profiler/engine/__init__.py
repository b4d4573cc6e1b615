"""Engines run workload points and return raw timings; ``LlamaCppEngine`` is the real one."""

from profiler.engine.common import Engine, PhaseTimings, PointTimings
from profiler.engine.llamacpp import LlamaCppEngine, llama_cpp_version, quiet_llama_logs

__all__ = ["Engine", "LlamaCppEngine", "PhaseTimings", "PointTimings", "llama_cpp_version", "quiet_llama_logs"]
