"""Build hook: ship the top-level ``scenarios/`` and ``hardware_profiles/`` folders inside the package.

Everything else about the build is declared in ``pyproject.toml``. The two folders stay where users and
contributors know them (the source of truth); a built wheel, and ``pip install .``, carry a copy as
``profiler/builtin/<folder>/``, which ``profiler.resources`` finds through ``importlib.resources``. An editable
install reads the top-level folders directly, so edits take effect without reinstalling.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUILTIN_FOLDERS = ("scenarios", "hardware_profiles")


class BuildPyWithBuiltins(build_py):
    """``build_py`` that also copies the built-in YAML folders into ``profiler/builtin/``."""

    def run(self) -> None:
        """Build the package, then add the built-in folders (not in editable mode: those read the checkout)."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for folder in BUILTIN_FOLDERS:
            target = Path(self.build_lib) / "profiler" / "builtin" / folder
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for path in sorted((root / folder).glob("*.y*ml")):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithBuiltins})
