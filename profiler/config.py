"""Loading user-facing YAML configuration (scenarios, hardware profiles, model specs, probe sets) into pydantic
models.

Owns parsing (through ``profiler.files.read_text``: unreadable or non-UTF-8 files are refused by name), name
lookup on the search path of ``profiler.resources``, and turning validation errors into one-line messages that
name the file and the field path. It must not know the models' meaning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from profiler.errors import ConfigError, HfpError
from profiler.files import read_text
from profiler.resources import Entry, Kind, entries

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
    """``field.path: message`` for each problem, joined on one line."""
    parts = []
    for e in error.errors():
        loc = ".".join(_loc_part(p) for p in e["loc"]).replace(".[", "[")
        parts.append(f"{loc or '(top level)'}: {' '.join(str(e['msg']).split())}")
    return "; ".join(parts)


def _loc_part(part: object) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    text = str(part)
    return text if text.isprintable() and text.strip() == text and text else repr(text)  # a key like "\f" or ""


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``<problem> (line L, column C)`` from a PyYAML error, on one line."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def validated(model: type[M], data: object, where: str, error: type[HfpError] = ConfigError) -> M:
    """``model`` validated from ``data``; invalid fields are one ``error``: ``<where>: <what is wrong>``."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(f"{where}: {describe_validation_error(e)}") from e


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``; any problem (missing, unreadable, not UTF-8, not YAML,
    not a mapping, invalid fields) is a ``ConfigError`` naming the file."""
    text = read_text(path, ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe_validation_error(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def _looks_like_path(name: str) -> bool:
    return Path(name).suffix.lower() in (".yaml", ".yml") or "/" in name or os.sep in name


def load_named(name_or_path: str | Path, kind: Kind, model: type[M], noun: str) -> M:
    """``model`` from a YAML path, or by name (file stem) from the search path of ``kind`` (built-in, the user's
    folder, added folders: ``profiler.resources``); an unknown name lists the known ones."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        return load_yaml_model(Path(text).expanduser(), model)
    found = entries(kind)
    if text not in found:
        known = ", ".join(found) or "none"
        raise ConfigError(f"no {noun} {text!r}; known: {known}")
    return load_yaml_model(found[text].path, model)


def load_every(kind: Kind, model: type[M], noun: str, directory: Path | None = None) -> dict[str, M]:
    """Every ``model`` on the search path of ``kind`` (or only the ``*.yaml`` files in ``directory``), keyed by
    file stem."""
    if directory is not None:
        return {p.stem: load_named(p, kind, model, noun) for p in sorted(Path(directory).glob("*.yaml"))}
    return {name: load_named(entry.path, kind, model, noun) for name, entry in entries(kind).items()}


class Catalog(Generic[M]):
    """The YAML files of one ``kind`` (scenarios, hardware profiles) on the search path, read as ``model``:
    the loaders a configuration module exposes as its ``load``, ``sources`` and ``load_all``."""

    def __init__(self, kind: Kind, model: type[M], noun: str) -> None:
        self.kind, self.model, self.noun = kind, model, noun

    def load(self, name_or_path: str | Path) -> M:
        """One by file path, or by name (file stem) on the search path (built-in, then the user's folders)."""
        return load_named(name_or_path, self.kind, self.model, self.noun)

    def sources(self) -> dict[str, Entry]:
        """Every file on the search path by name, with where it came from (built-in, user, option)."""
        return entries(self.kind)

    def load_all(self, directory: Path | None = None) -> dict[str, M]:
        """Every one on the search path (or only those in ``directory``), keyed by file stem."""
        return load_every(self.kind, self.model, self.noun, directory)
