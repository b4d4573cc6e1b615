"""Energy accounting of a telemetry window: counter vs integrated power, labelled sources, the TDP fallback,
above-idle energy and the idle baseline, with real sensor classes reading fake hardware."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fakes
import pytest
from fakes import FakeGpu, FakeNvml, FakeSysfs

from profiler.telemetry import IdleBaseline, TelemetryWindow, default_sensors, measure_idle
from profiler.telemetry.battery import BatterySensor
from profiler.telemetry.common import Energy, Sensor
from profiler.telemetry.estimate import TdpModel
from profiler.telemetry.nvml import NvmlSensor
from profiler.telemetry.process import ProcessSensor
from profiler.telemetry.rapl import RaplSensor

fake_nvml = fakes.fake_nvml  # fixtures
fake_sys = fakes.fake_sys

TDP = TdpModel(tdp_w=65.0)


class Ticker:
    """A clock the test advances by hand, so that joules are exact."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def run_window(sensors: list[Sensor], clock: Ticker, seconds: float, step: float = 0.1,
               on_step: Callable[[float], None] | None = None, idle: IdleBaseline | None = None) -> TelemetryWindow:
    """A window of ``seconds`` sampled every ``step`` on ``clock`` (the sampler thread stays idle)."""
    window = TelemetryWindow(sensors, ProcessSensor(), TDP, hz=1e-3, idle=idle, clock=clock)
    with window:
        for _ in range(round(seconds / step)):
            clock.advance(step)
            if on_step:
                on_step(step)
            window.sample()
    return window


def assert_labelled(energy: Energy) -> None:
    """Every figure names its source and is never silently 0 or None."""
    assert energy.source
    assert all(part.startswith(("measured:", "estimated:")) for part in energy.source.split("+"))
    assert energy.energy_j is not None and energy.energy_j > 0
    assert energy.energy_j == pytest.approx(sum(energy.components.values()))


def gpu_at(fake_nvml: FakeNvml, clock: Ticker, watts: float, **kwargs: object) -> FakeGpu:
    gpu = FakeGpu(power_w=watts, clock=clock, **kwargs)  # type: ignore[arg-type]
    fake_nvml.gpus[:] = [gpu]
    return gpu


def test_a_long_window_uses_the_nvml_counter_with_integrated_power_as_cross_check(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu_at(fake_nvml, clock, 100.0)
    energy = run_window([NvmlSensor(0)], clock, seconds=2.0).energy()
    assert_labelled(energy)
    assert energy.source == "measured:nvml+estimated:tdp"  # the GPU measured, the CPU side estimated
    assert energy.components["nvml"] == pytest.approx(200.0)
    assert energy.cross_check_j == pytest.approx(200.0)
    assert energy.cross_check_source == "measured:nvml-power-integrated"
    assert not any("integrated power used" in n for n in energy.notes)


def test_a_window_shorter_than_the_counter_period_uses_integrated_power_with_a_note(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu_at(fake_nvml, clock, 80.0, counter_period_s=0.1)
    energy = run_window([NvmlSensor(0)], clock, seconds=0.05, step=0.01).energy()
    assert_labelled(energy)
    assert energy.components["nvml"] == pytest.approx(4.0)  # 80 W x 0.05 s; the counter had not moved
    assert energy.cross_check_j is None
    assert any(n.startswith("nvml:") and "integrated power used" in n for n in energy.notes)


def test_a_gpu_without_a_counter_integrates_its_power(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu = gpu_at(fake_nvml, clock, 50.0, energy_counter=False)

    def ramp(_: float) -> None:
        gpu.power_w += 10.0

    energy = run_window([NvmlSensor(0)], clock, seconds=1.0, on_step=ramp).energy()
    assert_labelled(energy)
    assert energy.components["nvml"] == pytest.approx(100.0)  # 50 W rising to 150 W over 1 s
    assert energy.cross_check_j is None


def test_with_no_sensor_energy_is_the_labelled_tdp_estimate() -> None:
    clock = Ticker()
    energy = run_window([], clock, seconds=1.0).energy()
    assert_labelled(energy)
    assert energy.source == "estimated:tdp"
    assert TDP.idle_w * 1.0 <= energy.energy_j <= TDP.tdp_w * 1.0  # type: ignore[operator]
    assert any("estimated as TDP" in n for n in energy.notes)


def test_rapl_counts_the_cpu_and_no_estimate_is_added(fake_sys: FakeSysfs) -> None:
    pkg = fake_sys.add_rapl_package(dram=True)
    clock = Ticker()

    def burn(step: float) -> None:
        pkg.package.add_joules(30.0 * step)
        assert pkg.dram is not None
        pkg.dram.add_joules(5.0 * step)

    energy = run_window([RaplSensor(fake_sys.powercap)], clock, seconds=1.0, on_step=burn).energy()
    assert_labelled(energy)
    assert energy.source == "measured:rapl"
    assert energy.components == {"rapl": pytest.approx(35.0)}
    assert energy.mean_power_w == pytest.approx(35.0)


def test_rapl_and_nvml_add_up_to_package_plus_card(fake_sys: FakeSysfs, fake_nvml: FakeNvml) -> None:
    pkg = fake_sys.add_rapl_package(dram=False)
    clock = Ticker()
    gpu_at(fake_nvml, clock, 120.0)
    sensors: list[Sensor] = [RaplSensor(fake_sys.powercap), NvmlSensor(0)]
    window = run_window(sensors, clock, seconds=1.0, on_step=lambda s: pkg.package.add_joules(40.0 * s))
    energy = window.energy()
    assert_labelled(energy)
    assert energy.source == "measured:rapl+measured:nvml"
    assert energy.energy_j == pytest.approx(160.0)


def test_a_battery_is_the_whole_system_so_it_is_never_added_to_rapl(fake_sys: FakeSysfs) -> None:
    pkg = fake_sys.add_rapl_package(dram=False)
    fake_sys.add_battery(power_uw=25_000_000)
    clock = Ticker()
    sensors: list[Sensor] = [RaplSensor(fake_sys.powercap), BatterySensor(fake_sys.power_supply)]
    energy = run_window(sensors, clock, seconds=1.0, on_step=lambda s: pkg.package.add_joules(15.0 * s)).energy()
    assert_labelled(energy)
    assert energy.source == "measured:rapl"
    assert energy.energy_j == pytest.approx(15.0)
    assert any(n.startswith("battery:") and "not added" in n for n in energy.notes)


def test_on_battery_without_rapl_the_battery_figure_stands_alone(fake_sys: FakeSysfs, fake_nvml: FakeNvml) -> None:
    fake_sys.add_battery(power_uw=None, current_ua=2_000_000, voltage_uv=15_000_000)  # 30 W
    clock = Ticker()
    gpu_at(fake_nvml, clock, 10.0)
    sensors: list[Sensor] = [BatterySensor(fake_sys.power_supply), NvmlSensor(0)]
    energy = run_window(sensors, clock, seconds=1.0).energy()
    assert_labelled(energy)
    assert energy.source == "measured:battery"  # it includes the GPU and the CPU; no estimate added either
    assert energy.energy_j == pytest.approx(30.0)
    assert any(n.startswith("nvml:") and "includes it" in n for n in energy.notes)


def test_above_idle_energy_never_exceeds_the_total(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu = gpu_at(fake_nvml, clock, 30.0)
    sensor = NvmlSensor(0)
    idle_window = run_window([sensor], clock, seconds=1.0)
    idle = IdleBaseline(power_w={"nvml": idle_window.energy().components["nvml"] / 1.0, "cpu_estimate": TDP.idle_w},
                        duration_s=1.0, energy=idle_window.energy())
    gpu.power_w = 200.0
    busy = run_window([sensor], clock, seconds=1.0, idle=idle).energy()
    assert busy.above_idle_j is not None and busy.energy_j is not None
    assert 0 < busy.above_idle_j <= busy.energy_j
    assert busy.idle_power_w == pytest.approx(30.0 + TDP.idle_w)
    gpu.power_w = 5.0  # below the idle figure: above-idle is clamped, not negative
    quiet = run_window([sensor], clock, seconds=1.0, idle=idle).energy()
    assert quiet.above_idle_j is not None and 0 <= quiet.above_idle_j <= quiet.energy_j  # type: ignore[operator]


def test_measure_idle_samples_fake_sensors_for_the_baseline(fake_nvml: FakeNvml, fake_sys: FakeSysfs) -> None:
    fake_nvml.gpus[0].power_w = 25.0
    sensors, statuses = default_sensors(fake_sys.root, gpu_index=0)
    assert [s.name for s in sensors] == ["nvml"]
    assert {s.name: s.available for s in statuses} == {"rapl": False, "battery": False, "nvml": True}
    idle = measure_idle(sensors, ProcessSensor(), TDP, seconds=0.3, hz=20)
    assert set(idle.power_w) == {"nvml", "cpu_estimate"}
    assert idle.power_w["nvml"] > 0
    assert idle.power_w["cpu_estimate"] == TDP.idle_w
    assert idle.duration_s > 0
    assert_labelled(idle.energy)


def test_the_sampler_thread_records_every_sensor_column(fake_nvml: FakeNvml) -> None:
    window = TelemetryWindow([NvmlSensor(0)], ProcessSensor(), TDP, hz=50)
    with window:
        sum(i * i for i in range(200_000))  # something to sample while it runs
    rows = window.samples()
    assert len(rows) >= 2
    assert rows[0]["t"] == 0.0
    assert {"nvml.power_w", "nvml.energy_j", "nvml.vram_bytes", "process.rss_bytes"} <= set(rows[0])
    assert window.peak("nvml", "vram_bytes") == fakes.FakeGpu().process_vram_bytes


def test_a_sensor_that_fails_mid_window_is_reported_not_fatal(fake_nvml: FakeNvml) -> None:
    clock = Ticker()
    gpu_at(fake_nvml, clock, 60.0)

    class Flaky(NvmlSensor):
        calls = 0

        def read(self):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 3:
                raise OSError("GPU is lost")
            return super().read()

    energy = run_window([Flaky(0)], clock, seconds=1.0).energy()
    assert_labelled(energy)
    assert any("read failed" in n and "GPU is lost" in n for n in energy.notes)
    assert energy.components["nvml"] == pytest.approx(60.0)


def test_default_sensors_on_a_machine_without_energy_hardware(tmp_path: Path) -> None:
    sensors, statuses = default_sensors(FakeSysfs(tmp_path / "sys").root, gpu_index=None)
    assert sensors == []
    assert [s.name for s in statuses] == ["rapl", "battery"]
    assert all(s.detail for s in statuses)


@pytest.mark.parametrize("hardware", [
    (), ("rapl",), ("battery",), ("nvml",), ("nvml-no-counter",), ("rapl", "nvml"), ("battery", "nvml"),
    ("rapl", "battery"), ("rapl", "battery", "nvml"),
])
def test_every_energy_figure_names_its_source(
    hardware: tuple[str, ...], fake_sys: FakeSysfs, fake_nvml: FakeNvml
) -> None:
    clock = Ticker()
    pkg = fake_sys.add_rapl_package(dram=False) if "rapl" in hardware else None
    if "battery" in hardware:
        fake_sys.add_battery(power_uw=20_000_000)
    if {"nvml", "nvml-no-counter"} & set(hardware):
        gpu_at(fake_nvml, clock, 70.0, energy_counter="nvml" in hardware)
    else:
        fake_nvml.gpus[:] = []
    sensors, _ = default_sensors(fake_sys.root, gpu_index=0)
    assert len(sensors) == len(hardware)
    for seconds in (0.05, 2.0):  # shorter and longer than the NVML counter needs
        def burn(step: float) -> None:
            if pkg is not None:
                pkg.package.add_joules(20.0 * step)

        energy = run_window(sensors, clock, seconds, step=min(seconds, 0.1) / 2, on_step=burn).energy()
        assert_labelled(energy)
        assert set(energy.components) <= {"rapl", "battery", "nvml", "cpu_estimate"}
