"""hfp, the harm-feasibility profiler: measured throughput, memory and energy of GGUF models on local hardware."""

__version__ = "0.1.0"
