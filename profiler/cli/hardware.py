"""``hfp hardware``: describe this machine and save it as a hardware profile."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from profiler import hardware
from profiler.cli.common import echo_json
from profiler.files import write_atomic
from profiler.schema.units import GiB


@click.command("hardware")
@click.option("--save", "save_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write this host as a hardware profile YAML (usable with `hfp estimate --profile FILE`).")
@click.option("--name", help="Profile name for --save [default: this host (<hostname>)].")
@click.option("--price", "price_usd", type=click.FloatRange(0), default=0.0, help="Device price in USD for --save.")
@click.option("--no-measure", is_flag=True, help="Skip the memory-bandwidth and GEMM tests.")
@click.option("--json", "as_json", is_flag=True, help="Print the host description as JSON.")
def hardware_command(save_path: Path | None, name: str | None, price_usd: float, no_measure: bool,
                     as_json: bool) -> None:
    """Show this host: CPU, cores, RAM, GPUs (NVML), OS, what the installed llama.cpp build supports (GPU
    offload or CPU only), and a measured memory bandwidth and CPU GEMM rate.
    """
    host = hardware.detect(measure=not no_measure)
    if as_json:
        echo_json(host)
    else:
        click.echo(describe(host))
    if save_path:
        profile = hardware.to_profile(host, name, price_usd)
        write_atomic(save_path, yaml.safe_dump(profile.model_dump(exclude_none=True), sort_keys=False))
        click.echo(f"saved hardware profile: {save_path}", err=as_json)


def describe(host: hardware.HostProfile) -> str:
    """Human-readable host description."""
    b = host.backends
    lines = [
        f"host:      {host.hostname} ({host.os}, Python {host.python})",
        f"CPU:       {host.cpu_model}, {host.physical_cores} cores / {host.logical_cores} threads",
        f"RAM:       {host.ram_total_bytes / GiB:.1f} GiB total, {host.ram_available_bytes / GiB:.1f} GiB available",
    ]
    if host.memory_bandwidth_gbps:
        lines.append(f"bandwidth: {host.memory_bandwidth_gbps:.1f} GB/s ({host.memory_bandwidth_source})")
    if host.cpu_gflops:
        lines.append(f"CPU GEMM:  {host.cpu_gflops:.0f} GFLOP/s FP32 ({host.cpu_gflops_source})")
    for g in host.gpus:
        energy = "energy counter" if g.energy_counter else "no energy counter"
        lines.append(f"GPU {g.index}:     {g.name}, {g.vram_total_bytes / GiB:.1f} GiB VRAM "
                     f"({g.vram_free_bytes / GiB:.1f} free), driver {g.driver}, {energy}")
    if not host.gpus:
        lines.append("GPU:       none seen by NVML")
    offload = "yes" if b.gpu_offload else "no (CPU-only build; `make cuda` builds a CUDA one)"
    lines.append(f"llama.cpp: llama-cpp-python {b.llama_cpp_python}, GPU offload: {offload}")
    if b.system_info:
        lines.append(f"           {b.system_info}")
    if b.cpu_kernels:
        lines.append(f"CPU kernels: {' '.join(b.cpu_kernels)}")
        lines.append(f"AMX:       {hardware.amx_status(b)}")
    if b.selfcheck:
        lines.append(f"self-check: {b.selfcheck}")
    return "\n".join(lines)


commands: list[click.Command] = [hardware_command]
