"""Helpers shared by CLI modules: parsing lists, printing tables and JSON, the user-folder options."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from profiler import resources
from profiler.resources import Kind
from profiler.text import table as table

F = TypeVar("F", bound=Callable[..., Any])


def parse_int_list(text: str, name: str) -> list[int]:
    """Parse ``1,4,16`` into ints, with a click error naming the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=name) from None
    if not values or any(v <= 0 for v in values):
        raise click.BadParameter(f"expected positive integers, got {text!r}", param_hint=name)
    return values


def parse_str_list(text: str) -> list[str]:
    """Parse ``a,b,c`` into stripped strings."""
    return [v.strip() for v in text.split(",") if v.strip()]


def sig3(value: float | None) -> str:
    """A number to three significant digits, ``-`` for None (parameter counts in billions)."""
    return "-" if value is None else f"{value:.3g}"


def echo_json(obj: Any) -> None:
    """Print a pydantic model, or a list/dict of them, as JSON on stdout."""
    if isinstance(obj, BaseModel):
        click.echo(obj.model_dump_json(indent=1))
        return
    click.echo(json.dumps(obj, indent=1, default=lambda o: o.model_dump(mode="json")))


def _add_dirs(kind: Kind) -> Callable[[click.Context, click.Parameter, tuple[Path, ...]], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> None:
        resources.add_dirs(kind, list(value))

    return callback


def data_dir_options(command: F) -> F:
    """``--scenarios-dir`` and ``--profiles-dir`` (repeatable): folders of YAML files that add to the built-in
    scenarios and hardware profiles for this command (``profiler.resources`` has the whole search path)."""
    kinds: tuple[tuple[Kind, str], ...] = (("hardware_profiles", "hardware profiles"), ("scenarios", "scenarios"))
    for kind, noun in kinds:
        command = click.option(
            resources.OPTION[kind], multiple=True, expose_value=False, is_eager=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path), callback=_add_dirs(kind),
            help=f"A folder of {noun} (*.yaml) that add to the built-in ones (repeatable).",
        )(command)
    return command


# Every number an option takes is finite and fits a signed 64-bit integer: NaN slips through click's ranges (every
# comparison with NaN is false) and a 30-digit integer overflows llama.cpp's C types far from the option.
INT_LIMIT = 2**63 - 1


class FiniteFloat(click.types.FloatParamType):
    """``click.FLOAT`` that refuses ``nan`` and ``inf``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert, then refuse non-finite values."""
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that refuses ``nan`` and ``inf``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert, then refuse non-finite values."""
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


class BoundedInt(click.types.IntParamType):
    """``click.INT`` limited to a signed 64-bit integer."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert, then refuse integers beyond 64 bits."""
        rv = super().convert(value, param, ctx)
        if abs(rv) > INT_LIMIT:
            self.fail(f"{value!r} is too large", param, ctx)
        return rv


class BoundedIntRange(click.IntRange):
    """``click.IntRange`` limited to a signed 64-bit integer."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert, then refuse integers beyond 64 bits."""
        rv = super().convert(value, param, ctx)
        if abs(rv) > INT_LIMIT:
            self.fail(f"{value!r} is too large", param, ctx)
        return rv


def _safer(t: click.ParamType) -> click.ParamType:
    if type(t) is click.FloatRange:
        return FiniteFloatRange(t.min, t.max, t.min_open, t.max_open, t.clamp)  # type: ignore[arg-type]
    if type(t) is click.IntRange:
        return BoundedIntRange(t.min, t.max, t.min_open, t.max_open, t.clamp)  # type: ignore[arg-type]
    if type(t) is click.types.FloatParamType:
        return FiniteFloat()
    if type(t) is click.types.IntParamType:
        return BoundedInt()
    return t


def harden_numbers(command: click.Command) -> None:
    """Give every numeric option of ``command`` (and of its subcommands) a finite, 64-bit-bounded type; the CLI
    applies this once to the whole command tree, so options added later are covered too."""
    for param in command.params:
        if param.name == "seed" and type(param.type) is click.types.IntParamType:
            param.type = BoundedIntRange(0, 2**32 - 1)  # llama.cpp seeds are uint32; numpy refuses negative ones
        param.type = _safer(param.type)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            harden_numbers(sub)
