"""Performance model v2: mixture-of-experts shapes, the public model's fit and LODO, minimal profiles, the CLI
that a hidden set of public results is checked through."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path

import gguf
import numpy as np
import pytest
from click.testing import CliRunner

from profiler import feasibility, models, profiles, scenarios
from profiler.cli import cli
from profiler.feasibility.model import ModelShape, expected_experts
from profiler.feasibility.placement import Candidate, best_placement
from profiler.feasibility.public_model import (
    PUBLIC_CSV,
    DeviceFacts,
    device_key,
    fit_factors,
    fit_key,
    predict_row,
    public_model,
    public_rows,
    source_key,
)
from profiler.feasibility.spec import ModelSpec

GPT_OSS_20B = dict(params=2.091e10, active_params=3.61e9, weights_bytes=1.21e10, layers=24, kv_heads=8, head_dim=64,
                   experts=32, experts_used=4)
SCENARIO = scenarios.load("fake-reviews")
# the module (``profiler.feasibility.public_model`` the attribute is the function of the same name)
public_model_module = importlib.import_module("profiler.feasibility.public_model")


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def bench_files(tmp_path: Path) -> dict[str, Path]:
    """llama-bench-shaped scenarios (tg128: prompt 1; pp512: output 1) and profiles with only device facts."""
    base = ("category: benign-reference\ndescription: bench\nmode: bulk\nitems: 100\ndeadline_hours: 24\n"
            "proxy_prompt: 'Write about {output_words} words.'\nrationale: test\nsources: [test]\n")
    return {
        "tg": _yaml(tmp_path / "tg.yaml", "name: tg\ntitle: tg\nprompt_tokens: {mean: 1, sd: 0}\n"
                                          "output_tokens: {mean: 128, sd: 0}\n" + base),
        "pp": _yaml(tmp_path / "pp.yaml", "name: pp\ntitle: pp\nprompt_tokens: {mean: 512, sd: 0}\n"
                                          "output_tokens: {mean: 1, sd: 0}\n" + base),
        "gpu": _yaml(tmp_path / "gpu.yaml", "gpu: {backend: cuda, bandwidth_gbps: 1008, fp16_tflops: 165.2, "
                                            "vram_gb: 24}\n"),
        "apple": _yaml(tmp_path / "apple.yaml", "cpu: {cores: 16, ram_gb: 64}\n"
                                                "gpu: {backend: metal, bandwidth_gbps: 400, vram_gb: 48, "
                                                "unified_memory: true}\n"),
        "cpu": _yaml(tmp_path / "cpu.yaml", "cpu: {cores: 8, ram_gb: 32, ram_bandwidth_gbps: 100}\n"),
        "i9": _yaml(tmp_path / "i9.yaml", "cpu: {ram_gb: 64, ram_bandwidth_gbps: 102.4, tflops: 2.0}\n"),
    }


def _spec_args(spec: dict[str, float | None]) -> list[str]:
    return [a for k, v in spec.items() if v is not None for a in (f"--{k.replace('_', '-')}", f"{v:g}")]


def test_estimate_cli_gives_decode_and_prefill_rates_for_a_moe_spec_on_minimal_profiles(
        bench_files: dict[str, Path]) -> None:
    for prof in ("gpu", "apple", "cpu"):
        rates = {}
        for kind in ("tg", "pp"):
            out = CliRunner().invoke(cli, ["estimate", *_spec_args(GPT_OSS_20B), "--scenario", str(bench_files[kind]),
                                           "--profile", str(bench_files[prof]), "--json"])
            assert out.exit_code == 0, out.output
            (row,) = json.loads(out.output)
            assert row["fits"] and row["decode_tok_s"] > 0 and row["prefill_tok_s"] > 0
            assert row["decode_tok_s_band"]["low"] < row["decode_tok_s"] < row["decode_tok_s_band"]["high"]
            assert row["energy_kwh"] is None  # no power declared: no energy figure, never a made-up one
            rates[kind] = row
        assert rates["pp"]["prefill_tok_s"] > rates["tg"]["decode_tok_s"]


@pytest.mark.parametrize(("device", "moe", "profile"), [("NVIDIA GeForce RTX 4090", True, "gpu"),
                                                      ("Apple M3 Max (40-core GPU, 64GB)", False, "apple"),
                                                      ("Intel Core i9-13900K", False, "i9")])
def test_hfp_estimate_predicts_a_public_row_as_the_validation_does(
        bench_files: dict[str, Path], device: str, moe: bool, profile: str) -> None:
    row = next(r for r in public_rows() if r.device.startswith(device) and r.is_moe == moe)
    tg, pp = predict_row(public_model(), row)
    spec = dict(params=row.params, active_params=row.active_params, weights_bytes=row.weight_bytes,
                layers=row.layers, kv_heads=row.kv_heads, head_dim=row.head_dim, experts=row.experts,
                experts_used=row.experts_used)
    got = {}
    for kind in ("tg", "pp"):
        out = CliRunner().invoke(cli, ["estimate", *_spec_args(spec), "--scenario", str(bench_files[kind]),
                                       "--profile", str(bench_files[profile]), "--json"])
        assert out.exit_code == 0, out.output
        got[kind] = json.loads(out.output)[0]
    assert got["tg"]["decode_tok_s"] == pytest.approx(tg, rel=0.03)
    assert got["pp"]["prefill_tok_s"] == pytest.approx(pp, rel=0.03)


def test_a_moe_model_decodes_faster_than_a_dense_model_of_the_same_total_size() -> None:
    dense = ModelSpec(**{k: v for k, v in GPT_OSS_20B.items() if k not in ("active_params", "experts",
                                                                           "experts_used")})
    moe = ModelSpec(**GPT_OSS_20B)
    for key, prof in profiles.load_all().items():
        d, m = (feasibility.estimate(s, {key: prof}, [SCENARIO])[0] for s in (dense, moe))
        if d.fits and m.fits:
            assert m.decode_tok_s > d.decode_tok_s, key
            assert m.model_weights_bytes == d.model_weights_bytes  # memory fit counts every expert
    a = feasibility.Assumptions()
    plan = best_placement(moe.to_model_file(), profiles.load("rtx-4090-desktop"), 4096, 1, a)
    assert isinstance(plan, Candidate) and plan.plan.weights_bytes == int(GPT_OSS_20B["weights_bytes"])


@pytest.mark.parametrize("profile", ["rtx-4090-desktop", "apple-m4-max", "budget-laptop"])
def test_more_active_parameters_never_decode_faster(profile: str) -> None:
    prof = {profile: profiles.load(profile)}
    rates = []
    for active in (1e9, 2e9, 3.61e9, 6e9, 12e9, 2.091e10):
        spec = ModelSpec(**{**GPT_OSS_20B, "active_params": active}) if active < 2.091e10 else ModelSpec(
            **{k: v for k, v in GPT_OSS_20B.items() if k not in ("active_params", "experts", "experts_used")})
        rates.append(feasibility.estimate(spec, prof, [SCENARIO])[0].decode_tok_s)
    assert rates == sorted(rates, reverse=True)


def test_expected_experts_grow_with_the_batch_from_k_to_all() -> None:
    seen = [expected_experts(32, 4, b) for b in (1, 2, 4, 16, 64, 512)]
    assert seen[0] == pytest.approx(4) and seen == sorted(seen) and seen[-1] == pytest.approx(32, rel=1e-6)
    shape = ModelShape.of(ModelSpec(**GPT_OSS_20B).to_model_file())
    reads = [shape.weights_read(b) for b in (1, 4, 64, 4096)]
    assert reads == sorted(reads) and reads[-1] <= shape.weight_bytes * (1 + 1e-9)
    assert reads[0] == pytest.approx(shape.weight_bytes * 3.61e9 / 2.091e10, rel=0.01)


def test_results_are_deterministic() -> None:
    rows = public_rows()
    assert fit_factors(rows).model_dump() == fit_factors(rows).model_dump()
    spec = ModelSpec(**GPT_OSS_20B)
    a, b = (feasibility.estimate(spec, None, [SCENARIO]) for _ in range(2))
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]


def test_lodo_holds_out_every_row_of_a_chip_together() -> None:
    keys = {device_key(n) for n in ("NVIDIA GeForce RTX 3090 (Ampere)", "NVIDIA RTX 3090")}
    assert len(keys) == 1
    assert device_key("NVIDIA A100 PCIe 80GB (Ampere)") == device_key("NVIDIA A100 SXM 80GB (Ampere)")
    assert device_key("Apple M1 Max (64GB)") == device_key("Apple M1 Max (32-core GPU, 64GB)")
    assert device_key("Apple M1 Max (64GB)") != device_key("Apple M1 Ultra (64-core GPU)")
    model = public_model()
    assert model.residuals and {r.kind for r in model.residuals} == {"decode", "prefill"}
    assert all(0.05 <= s < 1.5 for s in [*model.sigma_decode.values(), *model.sigma_prefill.values()])


def test_a_profile_without_a_gpu_must_declare_its_memory(tmp_path: Path) -> None:
    bad = _yaml(tmp_path / "bad.yaml", "cpu: {cores: 8}\n")
    out = CliRunner().invoke(cli, ["profiles", str(bad)])
    assert out.exit_code == 2 and out.output.startswith("error:") and "ram_bandwidth_gbps" in out.output


@pytest.mark.parametrize("args", [["--experts", "8", "--experts-used", "8"], ["--experts", "8"],
                                  ["--active-params", "3e10"]])
def test_an_inconsistent_moe_spec_is_a_user_error(args: list[str]) -> None:
    base = ["estimate", "--params", "2e10", "--weights-bytes", "1.2e10", "--layers", "24", "--kv-heads", "8",
            "--head-dim", "64", "--active-params", "3.6e9"]
    out = CliRunner().invoke(cli, [*base, *args, "-s", "fake-reviews", "-p", "rtx-4090-desktop"])
    assert out.exit_code == 2 and out.output.startswith("error:") and len(out.output.strip().splitlines()) == 1


def test_expert_tensors_and_counts_are_read_from_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "tiny-moe.gguf"
    w = gguf.GGUFWriter(str(path), "qwen3moe")
    n_embd, n_ff, n_exp = 64, 32, 8
    for key, value in (("block_count", 1), ("embedding_length", n_embd), ("context_length", 256),
                       ("attention.head_count", 4), ("attention.head_count_kv", 2), ("expert_count", n_exp),
                       ("expert_used_count", 2)):
        w.add_uint32(f"qwen3moe.{key}", value)
    rng = np.random.default_rng(0)
    tensors = {"token_embd.weight": (100, n_embd), "blk.0.attn_q.weight": (n_embd, n_embd),
               "blk.0.ffn_gate_inp.weight": (n_exp, n_embd), "blk.0.ffn_gate_exps.weight": (n_exp, n_ff, n_embd),
               "blk.0.ffn_up_exps.weight": (n_exp, n_ff, n_embd), "blk.0.ffn_down_exps.weight": (n_exp, n_embd, n_ff),
               "output.weight": (100, n_embd)}
    for name, shape in tensors.items():
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    m = models.inspect(path, with_hash=False)
    expert = 3 * n_exp * n_ff * n_embd
    assert m.is_moe and (m.n_experts, m.n_experts_used) == (8, 2)
    assert m.expert_params == expert and m.expert_bytes == expert * 4
    assert m.active_params == m.params - expert * 6 // 8
    # the untied input embedding (beside output.weight) is looked up, one row a token: neither read whole nor
    # multiplied
    assert (m.lookup_params, m.lookup_bytes) == (100 * n_embd, 100 * n_embd * 4)
    shape = ModelShape.of(m)
    assert shape.flop_params == m.active_params - m.lookup_params
    assert shape.weights_read(1) == m.tensor_bytes - m.lookup_bytes - expert * 4 * 6 // 8


def test_frontier_names_the_largest_moe_model_that_fits_with_total_and_active_sizes() -> None:
    points = feasibility.frontier({k: profiles.load(k) for k in ("rtx-4090-desktop", "raspberry-pi-5-8gb",
                                                                "dgx-spark")}, ["Q4_K_M"])
    by = {p.profile: p for p in points}
    big = by["dgx-spark"]
    assert big.moe_model and big.moe_params and big.moe_active_params and big.moe_decode_tok_s
    assert big.moe_active_params < big.moe_params <= (big.max_params or 0)
    assert big.moe_decode_tok_s > (big.decode_tok_s or 0)  # a MoE model decodes faster than the dense frontier
    assert by["raspberry-pi-5-8gb"].moe_model is None  # even gpt-oss-20b does not fit in 8 GB


def test_decode_bandwidth_grows_with_the_peak_but_its_share_falls_toward_the_ceiling() -> None:
    model = public_model()
    shape = ModelShape.of(ModelSpec(**GPT_OSS_20B).to_model_file())
    dense = dataclasses.replace(shape, n_experts=0, n_experts_used=0, expert_bytes=0.0, active_params=None)
    for backend in ("cuda", "metal", "pooled"):
        eff = [model.bandwidth_bps(DeviceFacts(backend, bw), dense) for bw in (100, 400, 1000, 2000, 4000)]
        shares = [e / (bw * 1e9) for e, bw in zip(eff, (100, 400, 1000, 2000, 4000), strict=True)]
        assert eff == sorted(eff) and shares == sorted(shares, reverse=True), backend
        ceiling = model.decode.ceiling_gbps.get(backend, model.decode.ceiling_pooled_gbps) * 1e9
        assert eff[-1] < ceiling and 0.3 < shares[1] < 1.0


def test_a_moe_token_reads_rho_times_its_active_bytes_and_pays_no_extra_fixed_time() -> None:
    model = public_model()
    assert 1.0 <= model.decode.moe_read < 2.0
    moe = ModelShape.of(ModelSpec(**GPT_OSS_20B).to_model_file())
    dense = dataclasses.replace(moe, n_experts=0, n_experts_used=0, expert_bytes=0.0, active_params=None)
    facts = DeviceFacts("cuda", 1008.0)
    assert model.bandwidth_bps(facts, moe) * model.decode.moe_read == pytest.approx(model.bandwidth_bps(facts, dense))
    assert model.t0_s(facts, moe) == model.t0_s(facts, dense) == 24 * model.decode.tau_layer_s["cuda"]


def test_publication_offsets_are_fitted_but_never_enter_a_prediction() -> None:
    rows = public_rows()
    model = fit_factors(rows)
    assert len(model.decode.source_offsets) == len({source_key(r.source) for r in rows if r.tg_tok_s
                                                    and r.bandwidth_gbps})
    row = next(r for r in rows if r.device.startswith("NVIDIA GeForce RTX 4090") and r.is_moe)
    assert predict_row(model, row) == predict_row(model, row.model_copy(update={"source": "another publication"}))


def test_the_fit_cache_key_changes_with_the_data_the_fit_version_and_the_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "public.csv"
    data.write_bytes(PUBLIC_CSV.read_bytes())
    key = fit_key(data)
    assert key == fit_key(data) and len(key) == 64
    monkeypatch.setattr(public_model_module, "FIT_VERSION", public_model_module.FIT_VERSION + 1)
    assert fit_key(data) != key
    monkeypatch.undo()
    code = tmp_path / "model.py"
    code.write_text("# a changed roofline\n")
    monkeypatch.setattr(public_model_module, "_FIT_CODE", (*public_model_module._FIT_CODE[:1], code))
    assert fit_key(data) != key
    monkeypatch.undo()
    data.write_bytes(data.read_bytes() + b"\n# one more comment\n")
    assert fit_key(data) != key
    assert fit_key(tmp_path / "absent.csv") == ""


def test_prefill_follows_bandwidth_and_a_declared_fp16_figure_only_corrects_it() -> None:
    model = public_model()
    shape = ModelShape.of(ModelSpec(**{k: v for k, v in GPT_OSS_20B.items() if k not in (
        "active_params", "experts", "experts_used")}).to_model_file())
    rates = [model.flops(DeviceFacts("cuda", bw), shape) for bw in (200, 400, 1000, 2000)]
    assert rates == sorted(rates)
    # no declared FP16 figure: the backend's typical compute per byte (the median of its public rows)
    f_typical = math.exp(model.prefill.log_f_typical["cuda"]) * 150.0 * 1000e9 / 1e12
    typical = model.flops(DeviceFacts("cuda", 1000, f_typical), shape)
    assert typical == pytest.approx(rates[2])
    assert model.prefill.log_f_typical["metal"] < model.prefill.log_f_typical["cuda"]  # Apple: less compute per byte
    fast, slow = (model.flops(DeviceFacts("cuda", 1000, f), shape) for f in (600.0, 40.0))
    assert slow < typical < fast < 4 * typical  # a weak correction: declared FP16 figures mix ratings
    assert model.flops(DeviceFacts("rocm", 1000), shape) < rates[2]  # a backend's own FLOP per byte
