"""Hardware profiles: the shipped tiers load, cite sources, and `hfp hardware --save` writes a valid one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from profiler import feasibility, hardware, profiles
from profiler.cli import cli
from profiler.hardware import GpuInfo, HostProfile

SHIPPED = profiles.load_all()


def test_the_consumer_tiers_and_a_used_v100_ship() -> None:
    v100 = SHIPPED["tesla-v100-16gb-used"]
    assert v100.gpu is not None and v100.gpu.vram_gb == 16 and v100.price_usd == 600
    for name in ("raspberry-pi-5-8gb", "apple-m4-base", "apple-m4-max", "apple-m3-ultra", "rtx-4060-laptop",
                 "rtx-3060-desktop", "rtx-4060-ti-16gb", "rtx-3090-desktop", "rtx-4090-desktop", "rtx-5090-desktop",
                 "rx-7900-xtx-desktop", "strix-halo", "dgx-spark", "budget-laptop", "thin-and-light-laptop"):
        assert name in SHIPPED


def test_profiles_cover_every_backend_and_cpu_only_tiers() -> None:
    backends = {p.gpu.backend for p in SHIPPED.values() if p.gpu}
    assert {"cuda", "rocm", "metal", "vulkan"} <= backends
    assert any(p.gpu is None for p in SHIPPED.values())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_profile_has_price_power_and_sources(name: str) -> None:
    p = SHIPPED[name]
    assert p.sources and p.power.load_w > p.power.idle_w >= 0
    assert p.cpu.ram_bandwidth_gbps > 0 and p.cpu.tflops > 0


def _host() -> HostProfile:
    return HostProfile(
        hostname="testhost", os="Linux 6.1", python="3.11", cpu_model="Test CPU", physical_cores=8,
        logical_cores=16, ram_total_bytes=32 * 10**9, ram_available_bytes=24 * 10**9,
        gpus=[GpuInfo(index=0, name="NVIDIA GeForce RTX 4090", vram_total_bytes=24 * 10**9,
                      vram_free_bytes=23 * 10**9, power_limit_w=450.0)],
        memory_bandwidth_gbps=60.0, memory_bandwidth_source="measured:numpy-copy", cpu_gflops=500.0,
        cpu_gflops_source="measured:numpy-sgemm",
    )


def test_the_profile_hfp_hardware_saves_is_valid_and_estimable(tmp_path: Path) -> None:
    profile = hardware.to_profile(_host(), name="my box", price_usd=2000)
    path = tmp_path / "my-box.yaml"
    path.write_text(yaml.safe_dump(profile.model_dump(mode="json", exclude_none=True)))
    loaded = profiles.load(path)
    assert loaded == profiles.HardwareProfile.model_validate(profile.model_dump())
    result = CliRunner().invoke(cli, ["estimate", "--profile", str(path), "--scenario", "fake-reviews", "--json"])
    assert result.exit_code == 0, result.output
    assert '"profile": "my-box"' in result.output


def test_a_bad_profile_file_gives_exit_2_naming_file_and_field(tmp_path: Path) -> None:
    text = (profiles.PROFILES_DIR / "rtx-3090-desktop.yaml").read_text().replace("backend: cuda", "backend: opencl")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["estimate", "--profile", str(path), "--scenario", "fake-reviews"])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "gpu.backend" in result.output


def test_unknown_profile_name_lists_the_known_ones() -> None:
    result = CliRunner().invoke(cli, ["profiles", "no-such-box"])
    assert result.exit_code == 2 and "tesla-v100-16gb-used" in result.output


def test_hfp_profiles_lists_and_shows() -> None:
    listing = CliRunner().invoke(cli, ["profiles"])
    assert listing.exit_code == 0 and all(name in listing.output for name in SHIPPED)
    shown = CliRunner().invoke(cli, ["profiles", "strix-halo", "--json"])
    assert shown.exit_code == 0 and '"unified_memory": true' in shown.output


def test_a_profile_without_public_results_for_its_backend_uses_its_declared_efficiency() -> None:
    amd = SHIPPED["rx-7900-xtx-desktop"]
    declared = amd.model_copy(update={"efficiency": profiles.EfficiencySpec(eta_bw=0.5, eta_f=0.2, source="test")})
    spec = feasibility.ModelSpec(params=8e9, quant="Q4_K_M", layers=32, kv_heads=8, head_dim=128)
    # every backend has public rows now: take a public model fitted without the ROCm rows
    from profiler.feasibility.public_model import fit_factors, public_rows

    no_rocm = fit_factors([r for r in public_rows() if r.backend != "rocm"])
    pooled, own = (feasibility.estimate(spec, {"amd": p}, None, public=no_rocm)[0] for p in (amd, declared))
    assert own.decode_source == "predicted:roofline+efficiency:profile"
    assert pooled.decode_source == "predicted:roofline+efficiency:public-pooled"
