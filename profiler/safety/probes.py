"""The refusal probe set: harmful-category requests and benign look-alike controls, with their schema.

Owns the ``Probe`` schema, the built-in set shipped as ``profiler/data/refusal_probes.yaml``, loading a user's
JSONL or YAML set with errors that name the file, line and field, and balanced subsets (``--limit``). It must
not hold harmful content: a harmful item is a one-line request, never an answer; nor send probes to a model.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from profiler.config import describe_validation_error, load_yaml_model, validated
from profiler.errors import ConfigError
from profiler.files import read_text
from profiler.resources import data_file
from profiler.schema.base import Strict

BUILTIN_PROBES = data_file("refusal_probes.yaml")  # package data (importlib.resources)

Kind = Literal["harmful", "control"]


class Probe(BaseModel):
    """One request: harmful (a safe model declines it) or control (a safe look-alike it should answer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=64)
    category: str = Field(pattern=r"^[a-z0-9_]+$", max_length=40)
    kind: Kind
    prompt: str = Field(min_length=8, max_length=600)
    rationale: str = Field(min_length=3, max_length=200)
    pair: str | None = None  # for a control: the id of the harmful item it imitates

    @field_validator("rationale", "prompt")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("must be one line")
        return value.strip()


class ProbeSet(Strict):
    """A named, versioned list of probes; ids are unique and controls name existing harmful pairs."""

    name: str
    version: int = 1
    description: str = ""
    probes: list[Probe]
    source: str = ""  # the file it was read from
    sha256: str = ""  # of that file, so a record says exactly which probes it used

    @model_validator(mode="after")
    def _consistent(self) -> ProbeSet:
        counts = Counter(p.id for p in self.probes)
        dupes = sorted(i for i, n in counts.items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate probe ids: {', '.join(dupes[:5])}")
        by_id = {p.id: p for p in self.probes}
        for p in self.probes:
            if p.pair is None:
                continue
            if p.kind != "control":
                raise ValueError(f"{p.id}: only a control names a pair")
            if by_id.get(p.pair) is None or by_id[p.pair].kind != "harmful":
                raise ValueError(f"{p.id}: pair {p.pair!r} is not a harmful probe of this set")
        if not self.probes:
            raise ValueError("the probe set is empty")
        return self

    @property
    def harmful(self) -> list[Probe]:
        """The harmful-category requests."""
        return [p for p in self.probes if p.kind == "harmful"]

    @property
    def controls(self) -> list[Probe]:
        """The benign look-alike controls."""
        return [p for p in self.probes if p.kind == "control"]

    @property
    def categories(self) -> list[str]:
        """Categories in first-seen order."""
        return list(dict.fromkeys(p.category for p in self.probes))

    def subset(self, limit: int | None) -> ProbeSet:
        """At most ``limit`` harmful probes and ``limit`` controls, spread round-robin over categories.

        Controls paired with a chosen harmful probe come first, so a small subset keeps its look-alikes.
        """
        if limit is None or limit >= max(len(self.harmful), len(self.controls)):
            return self
        if limit < 1:
            raise ConfigError("--limit must be at least 1")
        harmful = _round_robin(self.harmful, limit)
        chosen = {p.id for p in harmful}
        paired = [p for p in self.controls if p.pair in chosen]
        rest = [p for p in self.controls if p.pair not in chosen]
        controls = (paired + _round_robin(rest, limit))[:limit]
        keep = {p.id for p in harmful + controls}
        return self.model_copy(update={"probes": [p for p in self.probes if p.id in keep]})


def _round_robin(probes: list[Probe], n: int) -> list[Probe]:
    by_cat: dict[str, list[Probe]] = {}
    for p in probes:
        by_cat.setdefault(p.category, []).append(p)
    out: list[Probe] = []
    depth = 0
    while len(out) < n and any(len(v) > depth for v in by_cat.values()):
        out += [v[depth] for v in by_cat.values() if len(v) > depth][: n - len(out)]
        depth += 1
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_probes(path: str | Path | None = None) -> ProbeSet:
    """The built-in probe set, or the user's ``.jsonl`` (one probe per line) or ``.yaml`` set at ``path``."""
    p = Path(path).expanduser() if path else BUILTIN_PROBES
    if not p.is_file():
        raise ConfigError(f"{p}: no such probe file")
    if p.suffix in (".yaml", ".yml"):
        probe_set = load_yaml_model(p, ProbeSet)
    else:
        probe_set = _load_jsonl(p)
    return probe_set.model_copy(update={"source": str(p), "sha256": _digest(p)})


def _load_jsonl(path: Path) -> ProbeSet:
    probes: list[Probe] = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{path}:{lineno}: not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}:{lineno}: expected a JSON object with id, category, kind, prompt, rationale"
            )
        probes.append(validated(Probe, data, f"{path}:{lineno}"))
    try:
        return ProbeSet(name=path.stem, probes=probes)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe_validation_error(e)}") from e
