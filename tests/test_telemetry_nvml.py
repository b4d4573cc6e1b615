"""NVML through a fake NVML (pynvml patched with autospec): GPU listing, per-process VRAM with a labelled
device-wide fallback, power and the energy counter."""

from __future__ import annotations

import os

import fakes
import pynvml
import pytest
from fakes import FakeGpu, FakeNvml, FakeProcess, GiB, MiB, patch_nvml

from profiler.telemetry import nvml
from profiler.telemetry.nvml import NvmlSensor

fake_nvml = fakes.fake_nvml  # fixture


class Ticker:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def test_list_gpus_describes_each_card(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus.append(FakeGpu(name="NVIDIA GeForce GTX 1080", energy_counter=False, power_limit_w=None))
    gpus = nvml.list_gpus()
    assert [g["index"] for g in gpus] == [0, 1]
    first, second = gpus
    assert first["name"] == "NVIDIA GeForce RTX 4060"
    assert first["vram_total_bytes"] == 8 * GiB
    assert first["vram_free_bytes"] == 8 * GiB - 700 * MiB
    assert first["power_limit_w"] == pytest.approx(115.0)
    assert first["driver"] == "550.54.14"
    assert first["energy_counter"] is True
    assert second["energy_counter"] is False and second["power_limit_w"] is None


@pytest.mark.parametrize("error", [pynvml.NVMLError_LibraryNotFound(), pynvml.NVMLError_DriverNotLoaded()])
def test_without_a_driver_there_are_no_gpus_and_the_sensor_says_so(error: Exception) -> None:
    with patch_nvml(FakeNvml(init_error=error)):
        assert nvml.available() is False
        assert nvml.list_gpus() == []
        status = NvmlSensor(0).status()
    assert not status.available and "NVML" in status.detail


def test_a_machine_with_zero_gpus_is_not_available() -> None:
    with patch_nvml(FakeNvml(gpus=[])):
        assert nvml.available() is False
        assert not NvmlSensor(0).status().available


def test_a_gpu_index_past_the_last_gpu_is_unavailable_not_a_crash(fake_nvml: FakeNvml) -> None:
    status = NvmlSensor(3).status()
    assert not status.available
    assert "GPU 3 not found" in status.detail and "1 GPU" in status.detail


def test_vram_of_this_process_is_labelled_per_process(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[0]
    gpu.other_processes = [FakeProcess(pid=1, usedGpuMemory=3 * GiB)]  # another program on the card
    sensor = NvmlSensor(0)
    sensor.begin_window()
    reading = sensor.read()
    assert reading["vram_bytes"] == 512 * MiB
    assert sensor.vram_source == "measured:nvml-process"


def test_without_per_process_accounting_vram_falls_back_to_the_device_and_says_so(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].per_process = False
    sensor = NvmlSensor(0)
    sensor.begin_window()
    assert sensor.read()["vram_bytes"] == 700 * MiB  # device-wide used memory
    assert sensor.vram_source == "measured:nvml-device"


def test_a_container_whose_pid_nvml_does_not_list_falls_back_to_the_device(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[0]
    gpu.process_vram_bytes = None  # NVML lists the process under its host PID, not ours
    gpu.other_processes = [FakeProcess(pid=os.getpid() + 100_000, usedGpuMemory=600 * MiB)]
    sensor = NvmlSensor(0)
    sensor.begin_window()
    assert sensor.read()["vram_bytes"] == 700 * MiB
    assert sensor.vram_source == "measured:nvml-device"


def test_the_vram_label_is_the_least_precise_of_a_window_and_resets_with_the_next(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[0]
    sensor = NvmlSensor(0)
    sensor.begin_window()
    sensor.read()
    gpu.per_process = False
    sensor.read()
    gpu.per_process = True
    sensor.read()
    assert sensor.vram_source == "measured:nvml-device"
    sensor.begin_window()
    sensor.read()
    assert sensor.vram_source == "measured:nvml-process"


def test_power_is_in_watts_and_the_counter_counts_joules_from_the_sensors_start(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu = FakeGpu(power_w=150.0, clock=clock)
    fake_nvml.gpus[:] = [gpu]
    sensor = NvmlSensor(0)
    assert sensor.has_energy_counter and "with energy counter" in sensor.status().detail
    first = sensor.read()
    assert first["power_w"] == pytest.approx(150.0)
    assert first["energy_j"] == 0.0  # not the millijoules since driver load
    clock.advance(2.0)
    assert sensor.read()["energy_j"] == pytest.approx(300.0)


def test_the_counter_only_moves_every_update_period(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    fake_nvml.gpus[:] = [FakeGpu(power_w=100.0, counter_period_s=0.1, clock=clock)]
    sensor = NvmlSensor(0)
    clock.advance(0.05)
    assert sensor.read()["energy_j"] == 0.0  # 5 J were used, the counter has not published them yet
    clock.advance(0.06)
    assert sensor.read()["energy_j"] == pytest.approx(10.0)


def test_a_gpu_without_an_energy_counter_gives_power_samples_only(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].energy_counter = False
    sensor = NvmlSensor(0)
    assert sensor.status().available and "power samples only" in sensor.status().detail
    assert not sensor.has_energy_counter
    assert "energy_j" not in sensor.read()


def test_the_fake_is_held_to_pynvmls_real_signatures(fake_nvml: FakeNvml) -> None:
    with pytest.raises(TypeError):
        nvml.pynvml.nvmlDeviceGetHandleByIndex()  # autospec: pynvml's function needs an index
    with pytest.raises(AttributeError):
        nvml.pynvml.nvmlDeviceGetNoSuchThing  # noqa: B018 - pynvml has no such function
