"""The GPU path (issue 6): offload options, VRAM planning, `hfp hardware` and NVML telemetry in a run.

On a CPU-only machine these run against the fake NVML of ``tests/fakes.py`` and the real CPU build of
llama.cpp: the planner, the refusals, the command line and the runner's telemetry are the real code. Tests
marked ``gpu`` need a CUDA build of llama-cpp-python (``make cuda``) and an NVIDIA GPU, and skip without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import fakes
import llama_cpp
import pynvml
import pytest
from click.testing import CliRunner
from fakes import FakeGpu, FakeNvml, FakeSysfs, GiB, MiB

from profiler import hardware, memory, runner
from profiler.cli import cli
from profiler.errors import ConfigError, ModelTooLargeError
from profiler.hardware import HostProfile
from profiler.models import ModelFile
from profiler.record import RunRecord
from profiler.telemetry import nvml

fake_nvml = fakes.fake_nvml  # fixtures
fake_sys = fakes.fake_sys

BUILD_OFFLOADS = bool(llama_cpp.llama_supports_gpu_offload())
TINY = runner.points_grid(16, 4, [1])[0]


def with_offload(host: HostProfile) -> HostProfile:
    """The host as a CUDA build would describe it: only the planner reads this flag in the tests that use it,
    and they stop before anything is loaded."""
    return host.model_copy(update={"backends": host.backends.model_copy(update={"gpu_offload": True})})


# --- planning and refusing -----------------------------------------------------------------------------------


def test_more_gpu_layers_predict_more_vram_and_less_ram(default_model: ModelFile) -> None:
    settings = runner.default_settings()
    plans = [
        memory.plan(default_model, runner.point_n_ctx(TINY), 1, n, settings.n_ubatch)
        for n in runner.offload_layer_counts(default_model.n_layers)
    ]
    assert [p.placement for p in plans][0] == "cpu" and plans[0].vram_bytes == 0
    assert plans[-1].placement == "full_offload"
    vram = [p.vram_bytes for p in plans]
    ram = [p.ram_bytes for p in plans]
    assert vram == sorted(vram) and len(set(vram)) == len(vram)
    assert ram == sorted(ram, reverse=True)


def test_a_layer_count_whose_vram_exceeds_the_cards_free_memory_is_refused_before_loading(
    default_model: ModelFile, fake_nvml: FakeNvml, fake_sys: FakeSysfs, tmp_path: Path
) -> None:
    settings = runner.default_settings(repetitions=1)
    counts = runner.offload_layer_counts(default_model.n_layers)
    need = {n: memory.plan(default_model, runner.point_n_ctx(TINY), 1, n, settings.n_ubatch).vram_bytes
            for n in counts}
    # A 2 GiB card whose desktop already uses most of it: a quarter of the layers fits, all of them does not.
    free = (need[counts[1]] + need[counts[-1]]) // 2
    fake_nvml.gpus[:] = [FakeGpu(name="NVIDIA GeForce GTX 1050", total_bytes=2 * GiB, used_bytes=2 * GiB - free)]
    host = with_offload(hardware.detect(measure=False))
    assert host.gpus[0].vram_free_bytes == free  # NVML's free memory reaches the planner

    plans = runner.sweep_plans(default_model, TINY, settings, host)
    assert {p.n_gpu_layers: p.fits for p in plans} == {n: need[n] <= free for n in counts}
    assert plans[0].fits and not plans[-1].fits
    assert "GiB VRAM" in plans[-1].reason

    options = runner.RunOptions(sys_root=str(fake_sys.root), idle_seconds=0, record_path=str(tmp_path / "r.json"))
    too_many = settings.model_copy(update={"n_gpu_layers": counts[-1]})
    with pytest.raises(ModelTooLargeError, match="VRAM"):
        runner.Runner(default_model, too_many, options, host).run([TINY])
    assert not (tmp_path / "r.json").exists()


def test_gpu_layers_on_a_build_without_offload_are_refused_before_loading(
    default_model: ModelFile, fake_nvml: FakeNvml, fake_sys: FakeSysfs, tmp_path: Path
) -> None:
    host = hardware.detect(measure=False)
    host = host.model_copy(update={"backends": host.backends.model_copy(update={"gpu_offload": False})})
    settings = runner.default_settings(repetitions=1, n_gpu_layers=8)
    options = runner.RunOptions(sys_root=str(fake_sys.root), idle_seconds=0, record_path=str(tmp_path / "r.json"))
    with pytest.raises(ConfigError, match="make cuda"):
        runner.Runner(default_model, settings, options, host).run([TINY])
    assert not (tmp_path / "r.json").exists()


# --- the command line ----------------------------------------------------------------------------------------


def test_hfp_hardware_shows_whether_the_build_offloads_and_lists_nvml_gpus(fake_nvml: FakeNvml) -> None:
    result = CliRunner().invoke(cli, ["hardware", "--no-measure", "--json"])
    assert result.exit_code == 0, result.output
    host = json.loads(result.stdout)
    assert host["backends"]["gpu_offload"] is BUILD_OFFLOADS
    assert [(g["name"], g["vram_total_bytes"], g["energy_counter"]) for g in host["gpus"]] == [
        ("NVIDIA GeForce RTX 4060", 8 * GiB, True)
    ]
    text = CliRunner().invoke(cli, ["hardware", "--no-measure"]).stdout
    assert "GPU 0:" in text and "RTX 4060" in text and "energy counter" in text
    assert ("GPU offload: yes" if BUILD_OFFLOADS else "GPU offload: no (CPU-only build; `make cuda`") in text


def test_hfp_hardware_without_nvidia_says_so() -> None:
    with fakes.patch_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound())):
        text = CliRunner().invoke(cli, ["hardware", "--no-measure"]).stdout
    assert "GPU:       none seen by NVML" in text


@pytest.mark.skipif(BUILD_OFFLOADS, reason="this llama.cpp build can offload")
@pytest.mark.parametrize("args", [["--offload-sweep"], ["--gpu-layers", "all"], ["-ngl", "4"]])
def test_offload_on_a_cpu_only_build_exits_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-p", "16", "-n", "4", "--parallel", "1", "-r", "1",
                                      "--idle-seconds", "0", "--record", str(tmp_path / "r.json"), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1]  # after the progress label
    assert "make cuda" in errors[0] and "docs/gpu.md" in errors[0]
    if args == ["--offload-sweep"]:  # refused before anything else is printed
        assert result.stderr.strip() == errors[0]
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


# --- NVML telemetry in a real run --------------------------------------------------------------------------


def measure_tiny(default_model: ModelFile, sys_root: Path, record: Path) -> RunRecord:
    """The real engine on the default model: one 16-token prompt, 4 output tokens, one repetition."""
    options = runner.RunOptions(sys_root=str(sys_root), idle_seconds=0.3, record_path=str(record))
    settings = runner.default_settings(repetitions=1, warmup=False)
    return runner.measure(default_model, [TINY], settings, options=options, host=hardware.detect(measure=False))


def test_a_run_with_an_nvidia_gpu_records_process_vram_and_nvml_energy(
    default_model: ModelFile, fake_nvml: FakeNvml, fake_sys: FakeSysfs, tmp_path: Path
) -> None:
    fake_nvml.gpus[0].power_w = 45.0
    record = measure_tiny(default_model, fake_sys.root, tmp_path / "r.json")
    assert record.host.gpus[0].name == "NVIDIA GeForce RTX 4060"
    assert {s["name"]: s["available"] for s in record.extra["sensors"]}["nvml"] is True
    assert record.idle_baseline is not None and "measured:nvml" in record.idle_baseline.source
    rep = record.points[0].repetitions[0]
    assert rep.peak_vram_bytes == 512 * MiB
    assert rep.vram_source == "measured:nvml-process"
    energy = rep.energy
    assert energy.source == "measured:nvml+estimated:tdp"  # the card measured; no RAPL here, so the CPU estimated
    assert energy.components["nvml"] > 0
    assert energy.above_idle_j is not None and energy.energy_j is not None
    assert 0 <= energy.above_idle_j <= energy.energy_j
    # a long window is counted by the counter and cross-checked by integrated power; a short one says why not
    assert energy.cross_check_source == "measured:nvml-power-integrated" or any(
        n.startswith("nvml:") and "integrated power used" in n for n in energy.notes)
    assert rep.j_per_token == pytest.approx(energy.energy_j / rep.generated_tokens)
    assert RunRecord.load(tmp_path / "r.json").points[0].repetitions[0].vram_source == "measured:nvml-process"


def test_a_run_without_per_process_accounting_records_device_vram_labelled(
    default_model: ModelFile, fake_nvml: FakeNvml, fake_sys: FakeSysfs, tmp_path: Path
) -> None:
    fake_nvml.gpus[0].per_process = False
    rep = measure_tiny(default_model, fake_sys.root, tmp_path / "r.json").points[0].repetitions[0]
    assert rep.peak_vram_bytes == 700 * MiB
    assert rep.vram_source == "measured:nvml-device"
    assert rep.energy.source.startswith("measured:nvml")


# --- on a real NVIDIA GPU with a CUDA build ----------------------------------------------------------------


def _real_gpu() -> bool:
    nvml.available.cache_clear()
    return BUILD_OFFLOADS and nvml.available()


needs_gpu = pytest.mark.skipif(not _real_gpu(), reason="needs a CUDA build of llama.cpp (make cuda) and an NVIDIA GPU")


@pytest.mark.gpu
@needs_gpu
def test_full_offload_on_a_real_gpu_measures_vram_and_gpu_energy(default_model: ModelFile, tmp_path: Path) -> None:
    options = runner.RunOptions(idle_seconds=1.0, record_path=str(tmp_path / "r.json"))
    settings = runner.default_settings(repetitions=2, n_gpu_layers=default_model.n_layers + 1)
    record = runner.measure(default_model, runner.points_grid(128, 64, [1]), settings, options=options)
    rep = record.points[0].repetitions[0]
    assert record.points[0].memory_predicted.placement == "full_offload"
    assert rep.peak_vram_bytes and rep.peak_vram_bytes > 0
    assert rep.vram_source in ("measured:nvml-process", "measured:nvml-device")
    assert "measured:nvml" in rep.energy.source and rep.energy.components["nvml"] > 0


@pytest.mark.gpu
@needs_gpu
def test_offload_sweep_on_a_real_gpu_measures_every_layer_count_that_fits(
    default_model: ModelFile, tmp_path: Path
) -> None:
    settings = runner.default_settings(repetitions=1)
    options = runner.RunOptions(idle_seconds=0.5, record_path=str(tmp_path / "sweep.json"))
    records = runner.offload_sweep(default_model, runner.points_grid(64, 16, [1])[0], settings, options)
    assert [r.settings.n_gpu_layers for r in records] == runner.offload_layer_counts(default_model.n_layers)
    assert all(r.points[0].summary["decode_tok_s_aggregate"].mean for r in records)
