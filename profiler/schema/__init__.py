"""The schema layer: pydantic models and units that every other layer shares (docs/architecture.md).

Modules here import nothing of hfp but ``profiler.errors`` (and each other): the model file's shape
(``model.py``), the host (``host.py``), the memory plan (``memory.py``), energy over a window (``energy.py``) and
units, KV cache types and byte formatting (``units.py``). The run record (``profiler.record``) is built from them.
"""
