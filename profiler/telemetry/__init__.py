"""Telemetry: sensors behind one protocol, a sampler thread and labelled energy for a measurement window."""

from profiler.telemetry.common import Sensor, SensorStatus
from profiler.telemetry.sampler import IdleBaseline, TelemetryWindow, default_sensors, measure_idle

__all__ = ["IdleBaseline", "Sensor", "SensorStatus", "TelemetryWindow", "default_sensors", "measure_idle"]
