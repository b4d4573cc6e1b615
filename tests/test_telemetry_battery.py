"""Laptop battery discharge on a fake /sys: only while discharging, power from power_now or current x voltage."""

from __future__ import annotations

import fakes
import pytest
from fakes import FakeSysfs

from profiler.telemetry.battery import BatterySensor

fake_sys = fakes.fake_sys  # fixture


def test_a_discharging_battery_reports_power_now(fake_sys: FakeSysfs) -> None:
    fake_sys.add_ac(online=False)
    fake_sys.add_battery(status="Discharging", power_uw=12_500_000)
    sensor = BatterySensor(fake_sys.power_supply)
    assert sensor.status().available
    assert [b.name for b in sensor.batteries] == ["BAT0"]  # the AC adapter is not a battery
    assert sensor.read()["power_w"] == pytest.approx(12.5)


@pytest.mark.parametrize("status", ["Charging", "Full", "Not charging"])
def test_a_battery_on_ac_power_is_unavailable_and_says_to_unplug(fake_sys: FakeSysfs, status: str) -> None:
    fake_sys.add_ac(online=True)
    fake_sys.add_battery(status=status, power_uw=3_000_000)
    st = BatterySensor(fake_sys.power_supply).status()
    assert not st.available
    assert "not discharging" in st.detail and "unplug" in st.detail


def test_power_is_current_times_voltage_when_the_driver_gives_no_power_now(fake_sys: FakeSysfs) -> None:
    fake_sys.add_battery(power_uw=None, current_ua=1_500_000, voltage_uv=11_400_000)
    sensor = BatterySensor(fake_sys.power_supply)
    assert sensor.status().available
    assert sensor.read()["power_w"] == pytest.approx(1.5 * 11.4)


def test_a_negative_discharge_current_still_gives_positive_power(fake_sys: FakeSysfs) -> None:
    fake_sys.add_battery(power_uw=None, current_ua=-2_000_000, voltage_uv=7_600_000)
    assert BatterySensor(fake_sys.power_supply).read()["power_w"] == pytest.approx(15.2)


def test_a_battery_without_power_or_current_readings_is_unavailable(fake_sys: FakeSysfs) -> None:
    fake_sys.add_battery(power_uw=None, energy_uwh=30_000_000)
    st = BatterySensor(fake_sys.power_supply).status()
    assert not st.available
    assert "power_now" in st.detail


def test_no_battery_is_unavailable(fake_sys: FakeSysfs) -> None:
    fake_sys.add_ac(online=True)
    st = BatterySensor(fake_sys.power_supply).status()
    assert not st.available and "no battery" in st.detail


def test_two_batteries_are_summed(fake_sys: FakeSysfs) -> None:
    fake_sys.add_battery("BAT0", power_uw=8_000_000)
    fake_sys.add_battery("BAT1", status="Unknown", power_uw=2_000_000)
    assert BatterySensor(fake_sys.power_supply).read()["power_w"] == pytest.approx(10.0)
