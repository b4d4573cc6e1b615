"""Loading user-facing YAML configuration (scenarios, hardware profiles) into pydantic models.

Owns file reading and turning validation errors into one-line messages that name the file and the field path.
It must not know the models' meaning.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from profiler.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
    """``field.path: message`` for each problem, joined on one line."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in e["loc"]).replace(".[", "[")
        parts.append(f"{loc or '(top level)'}: {e['msg']}")
    return "; ".join(parts)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``; any problem is a ``ConfigError`` naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe_validation_error(e)}") from e


def load_named(name_or_path: str | Path, directory: Path, model: type[M], noun: str) -> M:
    """``model`` from a YAML path, or by name (file stem) from ``directory``; an unknown name lists the known."""
    path = Path(name_or_path)
    if not path.suffix:
        path = directory / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise ConfigError(f"no {noun} {str(name_or_path)!r}; known: {known}")
    return load_yaml_model(path, model)
