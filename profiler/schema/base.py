"""The two base models of every hfp schema: what a record or file may contain is exactly what its model names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A model that refuses fields it does not name, so a misspelt or stale key is an error naming it, not a value
    silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Finite(Strict):
    """A strict model of a file people write (a scenario, a hardware profile): NaN and infinity are refused too."""

    model_config = ConfigDict(allow_inf_nan=False)
