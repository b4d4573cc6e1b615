"""hfp as a user installs it: a wheel built from the tree, installed into a fresh virtual environment, run from an
unrelated folder. The built-in scenarios and hardware profiles must come with it (issue #16: before, `pip install .`
gave an empty hfp)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
SHIPPED_DIRS = ("profiler", "scenarios", "hardware_profiles")


def _count(folder: str) -> int:
    return len(list((ROOT / folder).glob("*.yaml")))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a clean copy of the tracked layout (no stale build/ folder can leak in)."""
    src = tmp_path_factory.mktemp("src")
    for name in SHIPPED_FILES:
        shutil.copy2(ROOT / name, src / name)
    for name in SHIPPED_DIRS:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.gguf"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "-w", str(out), "--no-deps",
                    "--no-build-isolation", "--no-index", "-q"], check=True, capture_output=True, text=True)
    (path,) = out.glob("harm_feasibility_profiler-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding only the wheel; its dependencies (llama-cpp-python, numpy …) are
    borrowed from this environment through a plain path entry, so nothing is rebuilt or downloaded. The path
    entry does not run this environment's .pth files, so the editable install of the checkout stays invisible."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def _hfp(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HFP_", "PYTHON"))}
    env["HFP_CONFIG_DIR"] = str(cwd / "no-user-config")  # only the built-in files count
    env["HFP_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run([str(venv / "bin" / "hfp"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_wheel_ships_builtin_scenarios_profiles_and_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert sum(n.startswith("profiler/builtin/scenarios/") for n in names) == _count("scenarios")
    assert sum(n.startswith("profiler/builtin/hardware_profiles/") for n in names) == _count("hardware_profiles")
    for data in ("profiler/data/llamacpp-public.csv", "profiler/data/refusal_probes.yaml"):
        assert data in names
    assert any(n.startswith("profiler/report/templates/") for n in names)


def test_installed_wheel_lists_every_scenario_and_profile_from_an_unrelated_folder(
        venv: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import profiler; print(profiler.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout
    scen = _hfp(venv, "scenarios", "--json", cwd=tmp_path)
    assert scen.returncode == 0, scen.stderr
    assert len(json.loads(scen.stdout)) == _count("scenarios")
    prof = _hfp(venv, "profiles", "--json", cwd=tmp_path)
    assert prof.returncode == 0, prof.stderr
    assert len(json.loads(prof.stdout)) == _count("hardware_profiles")
    table = _hfp(venv, "scenarios", cwd=tmp_path)
    assert table.returncode == 0 and "built-in" in table.stdout


def test_installed_wheel_estimates_every_scenario_on_every_profile(venv: Path, tmp_path: Path) -> None:
    result = _hfp(venv, "estimate", "--json", cwd=tmp_path)  # the default model (its GGUF header only)
    assert result.returncode == 0, result.stderr
    estimates = json.loads(result.stdout)
    assert len(estimates) == _count("scenarios") * _count("hardware_profiles")


def test_version_and_python_dash_m(venv: Path, tmp_path: Path) -> None:
    version = _hfp(venv, "--version", cwd=tmp_path)
    assert version.returncode == 0 and "0." in version.stdout
    module = subprocess.run([str(venv / "bin" / "python"), "-m", "profiler", "--version"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout == version.stdout


def test_user_folder_adds_to_the_builtin_ones_and_says_where_each_came_from(venv: Path, tmp_path: Path) -> None:
    user = tmp_path / "no-user-config" / "scenarios"  # the HFP_CONFIG_DIR that _hfp sets
    user.mkdir(parents=True)
    data = yaml.safe_load((ROOT / "scenarios" / "fake-reviews.yaml").read_text())
    data["name"] = "my-campaign"
    (user / "my-campaign.yaml").write_text(yaml.safe_dump(data))
    extra = tmp_path / "extra"
    extra.mkdir()
    data["name"] = "from-option"
    (extra / "from-option.yaml").write_text(yaml.safe_dump(data))
    result = _hfp(venv, "scenarios", "--scenarios-dir", str(extra), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert len(lines) == _count("scenarios") + 2
    assert "user" in lines["my-campaign"] and "--scenarios-dir" in lines["from-option"]
    assert "built-in" in lines["fake-reviews"]
