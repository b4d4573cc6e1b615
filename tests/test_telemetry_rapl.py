"""RAPL powercap counters on a fake /sys: package + DRAM joules, wrap-around, and unreadable counters."""

from __future__ import annotations

import fakes
import pytest
from fakes import FakeSysfs

from profiler.telemetry.rapl import RaplSensor

fake_sys = fakes.fake_sys  # fixture


def test_package_and_dram_are_summed_and_the_core_subzone_is_not_counted_twice(fake_sys: FakeSysfs) -> None:
    pkg = fake_sys.add_rapl_package(dram=True)
    sensor = RaplSensor(fake_sys.powercap)
    assert sensor.status().available
    assert sorted(z.name for z in sensor.zones) == ["dram", "package-0"]
    assert sensor.read()["energy_j"] == 0.0  # joules count from the first read
    pkg.package.add_joules(10.0)
    pkg.core.add_joules(6.0)  # part of the package figure already
    assert pkg.dram is not None
    pkg.dram.add_joules(2.5)
    assert sensor.read()["energy_j"] == pytest.approx(12.5)


def test_a_counter_that_wraps_gives_the_right_joules(fake_sys: FakeSysfs) -> None:
    max_uj = 1_000_000_000  # a small range, so a few joules cross it
    pkg = fake_sys.add_rapl_package(dram=False, energy_uj=max_uj - 1_500_000, max_energy_range_uj=max_uj)
    sensor = RaplSensor(fake_sys.powercap)
    sensor.read()
    pkg.package.add_joules(4.0)
    assert pkg.package.energy_uj < max_uj - 1_500_000  # the file really wrapped
    assert sensor.read()["energy_j"] == pytest.approx(4.0)
    pkg.package.add_joules(2.0)
    assert sensor.read()["energy_j"] == pytest.approx(6.0)


def test_energy_keeps_growing_across_several_wraps(fake_sys: FakeSysfs) -> None:
    max_uj = 10_000_000
    pkg = fake_sys.add_rapl_package(dram=False, energy_uj=0, max_energy_range_uj=max_uj)
    sensor = RaplSensor(fake_sys.powercap)
    readings = [sensor.read()["energy_j"]]
    for _ in range(10):
        pkg.package.add_joules(7.0)  # wraps on most steps
        readings.append(sensor.read()["energy_j"])
    assert readings == sorted(readings)
    assert readings[-1] == pytest.approx(70.0)


def test_an_unreadable_counter_is_unavailable_and_says_how_to_fix_it(
    fake_sys: FakeSysfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = fake_sys.add_rapl_package()
    pkg.package.deny_read(monkeypatch)
    status = RaplSensor(fake_sys.powercap).status()
    assert not status.available
    assert "permission denied" in status.detail
    assert "run as root" in status.detail and "chmod o+r" in status.detail
    assert str(fake_sys.powercap) in status.detail


def test_no_zones_means_unavailable_not_zero(fake_sys: FakeSysfs) -> None:
    sensor = RaplSensor(fake_sys.powercap)
    assert not sensor.status().available
    assert "no RAPL zones" in sensor.status().detail


def test_a_psys_platform_zone_is_not_added_to_the_packages_it_contains(fake_sys: FakeSysfs) -> None:
    pkg = fake_sys.add_rapl_package(index=0, dram=False)
    psys = fake_sys.add_rapl_package(index=1, dram=False, name="psys")
    sensor = RaplSensor(fake_sys.powercap)
    assert [z.name for z in sensor.zones] == ["package-0"]
    sensor.read()
    pkg.package.add_joules(5.0)
    psys.package.add_joules(9.0)
    assert sensor.read()["energy_j"] == pytest.approx(5.0)


def test_a_wrap_without_a_known_range_never_counts_energy_backwards(fake_sys: FakeSysfs) -> None:
    pkg = fake_sys.add_rapl_package(dram=False, energy_uj=5_000_000)
    (pkg.package.path / "max_energy_range_uj").unlink()
    sensor = RaplSensor(fake_sys.powercap)
    sensor.read()
    pkg.package.set_uj(1_000_000)
    assert sensor.read()["energy_j"] == 0.0
    pkg.package.set_uj(3_000_000)
    assert sensor.read()["energy_j"] == pytest.approx(2.0)
