"""Quantization ladders: one model written at several GGUF weight types by llama.cpp's own quantizer.

Owns building a ladder offline (``llama_model_quantize``) into a cache folder, the ``Ladder`` manifest beside
the files (which levels were requantized from an already-quantized source, which tensors fell back to another
type than the level intends) and reusing outputs already built from the same source. It must not download
anything, load models for inference or measure them: ``profiler.sweep`` and ``profiler.safety`` do that.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from profiler import __version__
from profiler.engine.backends import llama_module
from profiler.engine.llamacpp import quiet_llama_logs, set_params
from profiler.engine.worker import WorkerCrashed, call_in_worker
from profiler.errors import ConfigError, EngineError
from profiler.files import cache_dir, write_atomic
from profiler.gguf import FILE_TYPE_IDS, read_header
from profiler.models import describe, inspect, resolve_path, sha256_of
from profiler.record import read_json_object, validate_document
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile

LADDER_SCHEMA_VERSION = 1
MANIFEST_NAME = "ladder.json"
DEFAULT_LEVELS = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")

# The tensor types each llama ftype intends to write (llama.cpp's mixes: K-quant levels keep some tensors,
# such as attn_v, ffn_down and the output layer, at a higher K type; legacy levels keep the output layer at
# Q6_K). A quantized tensor stored as any other type fell back, usually because its row size is not a multiple
# of the type's block (256 for K-quants). IQ1/IQ2/IQ3 levels need an importance matrix and are not offered.
LEVEL_TYPES: dict[str, frozenset[str]] = {
    "F32": frozenset({"F32"}),
    "F16": frozenset({"F16"}),
    "BF16": frozenset({"BF16"}),
    "Q8_0": frozenset({"Q8_0"}),
    "Q6_K": frozenset({"Q6_K"}),
    "Q5_1": frozenset({"Q5_1", "Q6_K"}),
    "Q5_0": frozenset({"Q5_0", "Q5_1", "Q6_K"}),
    "Q5_K_M": frozenset({"Q5_K", "Q6_K"}),
    "Q5_K_S": frozenset({"Q5_K", "Q6_K"}),
    "Q4_1": frozenset({"Q4_1", "Q6_K"}),
    "Q4_0": frozenset({"Q4_0", "Q4_1", "Q6_K"}),
    "Q4_K_M": frozenset({"Q4_K", "Q5_K", "Q6_K"}),
    "Q4_K_S": frozenset({"Q4_K", "Q5_K", "Q6_K"}),
    "IQ4_NL": frozenset({"IQ4_NL", "Q5_K", "Q6_K"}),
    "IQ4_XS": frozenset({"IQ4_XS", "IQ4_NL", "Q4_K", "Q5_K", "Q6_K"}),
    "Q3_K_L": frozenset({"Q3_K", "Q4_K", "Q5_K", "Q6_K"}),
    "Q3_K_M": frozenset({"Q3_K", "Q4_K", "Q5_K", "Q6_K"}),
    "Q3_K_S": frozenset({"Q3_K", "Q4_K", "Q5_K", "Q6_K"}),
    "Q2_K": frozenset({"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}),
}
UNQUANTIZED = frozenset({"F32", "F16", "BF16"})

class LadderLevel(Strict):
    """One rung of a ladder: the file, what it holds, and what did not go as the level intends."""

    level: str
    file: str  # file name, relative to the manifest's folder
    sha256: str
    size_bytes: int
    tensor_bytes: int
    params: int
    bits_per_weight: float
    file_type: str  # general.file_type as written
    tensor_types: dict[str, int]
    requantized: bool  # written from an already-quantized source rather than F32/F16/BF16 weights
    fallback_tensors: int = 0
    fallback_types: dict[str, int] = {}  # actual type -> tensors that fell back to it
    fallback_examples: list[str] = []
    quantize_s: float | None = None  # None when an existing output was reused
    warnings: list[str] = []


class LadderSource(Strict):
    """The model a ladder was quantized from."""

    path: str
    name: str
    sha256: str
    file_type: str
    size_bytes: int
    quantized: bool


class Ladder(Strict):
    """The manifest (``ladder.json``) of a quantization ladder; level files live in the same folder."""

    schema_version: int = LADDER_SCHEMA_VERSION
    kind: str = "ladder"
    source: LadderSource
    hfp_version: str = __version__
    llama_cpp_version: str | None = None
    levels: list[LadderLevel] = []
    directory: str = ""  # where the manifest was read from or written to; not trusted from the file

    def level(self, name: str) -> LadderLevel:
        """The level named ``name`` (case-insensitive), or a ``ConfigError`` listing the ladder's levels."""
        for lvl in self.levels:
            if lvl.level.upper() == name.upper():
                return lvl
        have = ", ".join(self.level_names()) or "none"
        raise ConfigError(f"the ladder has no level {name!r}; it has {have}")

    def level_names(self) -> list[str]:
        """Level names in ladder order (highest precision first)."""
        return [lvl.level for lvl in self.levels]

    def select(self, names: list[str] | None) -> list[LadderLevel]:
        """The named levels (all when ``names`` is empty), in ladder order."""
        if not names:
            return list(self.levels)
        wanted = {self.level(n).level for n in names}
        return [lvl for lvl in self.levels if lvl.level in wanted]

    @property
    def warnings(self) -> list[str]:
        """Every level's warnings, prefixed with the level."""
        return [f"{lvl.level}: {w}" for lvl in self.levels for w in lvl.warnings]

    def save(self, directory: Path | None = None) -> Path:
        """Write ``ladder.json`` atomically into ``directory`` (default: the ladder's own folder)."""
        folder = Path(directory or self.directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = write_atomic(folder / MANIFEST_NAME, self.model_dump_json(indent=1, exclude={"directory"}))
        self.directory = str(folder.resolve())
        return path

    @classmethod
    def load(cls, path: Path | str) -> Ladder:
        """Read a ladder from its folder or its ``ladder.json``; refuse other schema versions."""
        p = Path(path).expanduser()
        manifest = p / MANIFEST_NAME if p.is_dir() else p
        data = read_json_object(manifest, "ladder manifest", "ladder", LADDER_SCHEMA_VERSION, ConfigError,
                                missing="no such ladder manifest; build one with `hfp quantize MODEL.gguf`",
                                hint=" (rebuild it with `hfp quantize`)")
        data.pop("directory", None)
        ladder = validate_document(cls, data, manifest, "ladder manifest", ConfigError)
        ladder.directory = str(manifest.parent.resolve())
        return ladder


def is_ladder(spec: str | Path) -> bool:
    """Whether ``spec`` names a ladder (a folder holding ``ladder.json``, or that file itself)."""
    p = Path(spec).expanduser()
    return (p.is_dir() and (p / MANIFEST_NAME).is_file()) or (p.is_file() and p.name == MANIFEST_NAME)


def normalize_levels(levels: list[str]) -> list[str]:
    """Upper-case level names, checked against the supported ones, duplicates dropped, order kept."""
    out: list[str] = []
    for raw in levels:
        name = raw.strip().upper()
        if name not in LEVEL_TYPES or name not in FILE_TYPE_IDS:
            choices = ", ".join(LEVEL_TYPES)
            raise ConfigError(f"unknown or unsupported quantization level {raw!r}; choose from {choices}")
        if name not in out:
            out.append(name)
    return out


def ladder_dir(source_sha256: str) -> Path:
    """The default folder of a source's ladder: ``<cache>/ladders/<first 16 hex digits of its SHA-256>``."""
    return cache_dir() / "ladders" / source_sha256[:16]


def _project_root() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _refuse_repository(out: Path) -> None:
    root = _project_root()
    if root is not None and out.resolve().is_relative_to(root):
        raise ConfigError(
            f"{out}: inside the hfp source tree; ladders are large generated files: omit --out to use "
            f"{cache_dir() / 'ladders'} or pick a folder outside {root}"
        )


def _source(path: Path) -> tuple[LadderSource, ModelFile]:
    header = read_header(path)  # a corrupt or non-GGUF source fails here, before llama.cpp sees it
    model = describe(header, path)
    model.sha256 = sha256_of(path)
    quantized = model.file_type not in UNQUANTIZED or any(t not in UNQUANTIZED for t in model.tensor_types)
    src = LadderSource(
        path=model.path, name=model.name, sha256=model.sha256, file_type=model.file_type,
        size_bytes=model.size_bytes, quantized=quantized,
    )
    return src, model


def _describe_level(level: str, path: Path, source: LadderSource, seconds: float | None) -> LadderLevel:
    header = read_header(path)
    model = describe(header, path)
    intended = LEVEL_TYPES[level]
    fell_back: Counter[str] = Counter()
    examples: list[str] = []
    for t in header.tensors:
        if len(t.shape) < 2 or t.type_name in intended or t.type_name == "F32":
            continue
        fell_back[t.type_name] += 1
        if len(examples) < 5:
            examples.append(f"{t.name} (row {t.shape[0]}) -> {t.type_name}")
    warnings = []
    if source.quantized:
        if level in UNQUANTIZED or level == "Q8_0":
            warnings.append(
                f"requantized from a {source.file_type} source: holds no more precision than "
                f"{source.file_type}; it is not the original model at this type"
            )
        else:
            warnings.append(
                f"requantized from a {source.file_type} source: quality is below a {level} made from "
                "F16/BF16 weights"
            )
    n_fell = sum(fell_back.values())
    if n_fell:
        kinds = ", ".join(f"{n} to {t}" for t, n in fell_back.most_common())
        warnings.append(
            f"{n_fell} tensors fell back from the {level} mix ({kinds}): rows not a multiple of the block"
        )
    return LadderLevel(
        level=level, file=path.name, sha256=sha256_of(path), size_bytes=model.size_bytes,
        tensor_bytes=model.tensor_bytes, params=model.params,
        bits_per_weight=round(model.bits_per_weight, 3),
        file_type=model.file_type, tensor_types=model.tensor_types, requantized=source.quantized,
        fallback_tensors=n_fell, fallback_types=dict(fell_back), fallback_examples=examples,
        quantize_s=round(seconds, 3) if seconds is not None else None, warnings=warnings,
    )


def _reusable(existing: Ladder | None, level: str, folder: Path) -> LadderLevel | None:
    if existing is None:
        return None
    for lvl in existing.levels:
        path = folder / lvl.file
        if lvl.level == level and path.is_file() and path.stat().st_size == lvl.size_bytes:
            if sha256_of(path) == lvl.sha256:
                return lvl.model_copy(update={"quantize_s": None})
    return None


def quantize_file(source: Path, out: Path, level: str, nthread: int | None = None) -> float:
    """``quantize_file_here`` in a supervised llama.cpp worker (``profiler.engine.worker``): a native crash
    becomes a one-line error and leaves no ``.part`` file behind."""
    try:
        return float(call_in_worker("profiler.quantize:quantize_file_here", Path(source), Path(out), level, nthread,
                                    what=f"quantizing {Path(source).name} to {level}"))
    except WorkerCrashed:
        out.with_name(out.name + ".part").unlink(missing_ok=True)
        raise


def quantize_file_here(source: Path, out: Path, level: str, nthread: int | None = None) -> float:
    """Write ``source`` quantized to ``level`` at ``out`` with ``llama_model_quantize``; return the seconds.

    The output appears atomically (a ``.part`` file is renamed), so an interrupted run leaves no half file.
    """
    llama_cpp = llama_module()
    params = llama_cpp.llama_model_quantize_default_params()
    set_params(params, ftype=FILE_TYPE_IDS[level], nthread=nthread or os.cpu_count() or 1, allow_requantize=True)
    part = out.with_name(out.name + ".part")
    t0 = time.perf_counter()
    try:
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(part).encode(), ctypes.byref(params))
    except Exception as e:  # a C++ exception that escaped the binding
        part.unlink(missing_ok=True)
        raise EngineError(f"llama.cpp failed to quantize {source.name} to {level}: {e}") from e
    seconds = time.perf_counter() - t0
    if rc != 0 or not part.is_file():
        part.unlink(missing_ok=True)
        raise EngineError(
            f"llama.cpp failed to quantize {source.name} to {level} (status {rc}); "
            "rerun with --verbose to see why"
        )
    part.replace(out)
    return seconds


def build_ladder(
    source: str | Path,
    levels: list[str] | None = None,
    out: str | Path | None = None,
    nthread: int | None = None,
    verbose: bool = False,
    progress: Callable[[LadderLevel], None] | None = None,
) -> Ladder:
    """Quantize ``source`` to each of ``levels`` offline; return the ladder manifest, saved beside the files.

    Outputs go to ``out`` or ``<cache>/ladders/<source sha256 prefix>/``. A level already built from the same
    source (same hash, file intact) is reused, not rebuilt. ``progress`` is called with each finished level.
    """
    src_path = Path(source).expanduser()
    names = normalize_levels(list(levels or DEFAULT_LEVELS))
    if not names:
        raise ConfigError("no quantization levels given")
    src, _ = _source(src_path)
    folder = Path(out).expanduser() if out else ladder_dir(src.sha256)
    if out:
        _refuse_repository(folder)
    folder.mkdir(parents=True, exist_ok=True)
    existing: Ladder | None = None
    if (folder / MANIFEST_NAME).is_file():
        try:
            existing = Ladder.load(folder)
        except ConfigError:
            existing = None  # an unreadable or older manifest is rebuilt
        if existing is not None and existing.source.sha256 != src.sha256:
            raise ConfigError(
                f"{folder} holds a ladder of another model ({existing.source.name}, "
                f"{existing.source.sha256[:12]}); pick another --out folder"
            )
    quiet_llama_logs(verbose)
    version = getattr(llama_module(), "__version__", None)
    ladder = Ladder(source=src, llama_cpp_version=version, directory=str(folder))
    kept = {lvl.level: lvl for lvl in existing.levels if (folder / lvl.file).is_file()} if existing else {}
    stem = src_path.name.removesuffix(".gguf")
    for level in names:
        lvl = _reusable(existing, level, folder)
        if lvl is None:
            path = folder / f"{stem}.{level}.gguf"
            seconds = quantize_file(src_path, path, level, nthread)
            lvl = _describe_level(level, path, src, seconds)
        kept[level] = lvl
        ladder.levels = _ordered(kept)
        ladder.save(folder)  # after every level, so an interrupted build keeps what it made
        if progress:
            progress(lvl)
    ladder.levels = _ordered(kept)
    ladder.save(folder)
    return ladder


def _ordered(levels: dict[str, LadderLevel]) -> list[LadderLevel]:
    """Levels from the highest precision (most bits per weight) down."""
    return sorted(levels.values(), key=lambda lvl: (-lvl.bits_per_weight, lvl.level))


class LevelFile(NamedTuple):
    """One weight level to run: its name, its GGUF file, and whether it was requantized."""

    level: str
    path: Path
    requantized: bool = False


def resolve_levels(
    spec: str | Path, levels: list[str] | None = None, verbose: bool = False
) -> tuple[list[LevelFile], Ladder | None]:
    """Turn MODEL-or-ladder into the weight levels to run, in ladder order, and the ladder if there is one.

    A ladder (folder or ``ladder.json``) gives its levels (``levels`` selects some); a model with ``levels``
    is quantized into its cached ladder first (offline, reused when built before); a model alone is one level
    named after its file type.
    """
    if is_ladder(spec) or levels:
        if is_ladder(spec):
            ladder = Ladder.load(spec)
        else:
            ladder = build_ladder(resolve_path(str(spec)), levels, verbose=verbose)
        folder = Path(ladder.directory)
        chosen = [LevelFile(lvl.level, folder / lvl.file, lvl.requantized) for lvl in ladder.select(levels)]
        return chosen, ladder
    path = resolve_path(str(spec))
    model = inspect(path, with_hash=False)
    return [LevelFile(model.file_type, path)], None
