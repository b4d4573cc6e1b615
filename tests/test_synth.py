"""Synthetic GGUF models: tiny shapes of every family written with gguf, read back, and run by real llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest
from click.testing import CliRunner

from profiler import models, runner, synth
from profiler.cli import cli
from profiler.engine import LlamaCppEngine
from profiler.errors import ConfigError, ModelError, ModelTooLargeError
from profiler.workload_prompts import exact_prompt

# A few MB each: every architecture family hfp can synthesize, with its distinguishing features.
TINY: dict[str, synth.Shape] = {
    "llama": synth.Shape(arch="llama", n_embd=256, n_layers=3, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                         n_vocab=4096, tied_embeddings=True),
    "qwen2": synth.Shape(arch="qwen2", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                         n_vocab=50000),  # vocabulary padded beyond the default model's 49152 tokens
    "qwen3": synth.Shape(arch="qwen3", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=128, n_ff=512,
                         n_vocab=4096),
    "gemma3": synth.Shape(arch="gemma3", n_embd=256, n_layers=7, n_heads=4, n_kv_heads=1, head_dim=64, n_ff=512,
                          n_vocab=4096, tied_embeddings=True, sliding_window=32),
    "qwen3moe": synth.Shape(arch="qwen3moe", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                            n_vocab=4096, n_experts=8, n_experts_used=2, n_ff_expert=256),
    "gpt-oss": synth.Shape(arch="gpt-oss", n_embd=320, n_layers=2, n_heads=8, n_kv_heads=2, head_dim=64, n_ff=320,
                           n_vocab=4096, n_experts=4, n_experts_used=2, n_ff_expert=320, sliding_window=32),
}
TYPE_FOR = {"llama": "Q4_K_M", "qwen2": "Q8_0", "qwen3": "F16", "gemma3": "Q4_K_M", "qwen3moe": "Q4_0",
            "gpt-oss": "MXFP4_MOE"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, synth.BuildResult]:
    out = tmp_path_factory.mktemp("synth")
    return {arch: synth.build(shape, TYPE_FOR[arch], name=f"tiny-{arch}", out_dir=out)
            for arch, shape in TINY.items()}


def _reader(path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(str(path))


def _kv(reader: gguf.GGUFReader, key: str) -> object:
    return reader.fields[key].contents()


@pytest.mark.parametrize("arch", list(TINY))
def test_every_family_loads_and_generates_in_real_llama_cpp(built: dict[str, synth.BuildResult], arch: str) -> None:
    with LlamaCppEngine(built[arch].path, runner.default_settings()) as engine:
        prompts = [exact_prompt(engine.tokenize, 16, s) for s in range(2)]
        timings = engine.run(prompts, output_tokens=4)
    assert timings.generated_tokens == 2 * 4


@pytest.mark.parametrize("arch", list(TINY))
def test_file_read_back_with_gguf_matches_the_requested_shape(built: dict[str, synth.BuildResult], arch: str) -> None:
    shape, result = TINY[arch], built[arch]
    reader = _reader(result.path)
    tensors = {t.name: t for t in reader.tensors}
    plan = synth.tensor_plan(shape, TYPE_FOR[arch])
    assert set(tensors) == {t.name for t in plan}
    for t in plan:
        got = tensors[t.name]
        assert tuple(int(d) for d in got.shape) == t.ne, t.name
        assert got.tensor_type.name == t.type_name, t.name
    a = shape.arch
    assert _kv(reader, "general.architecture") == a
    assert _kv(reader, f"{a}.block_count") == shape.n_layers
    assert _kv(reader, f"{a}.embedding_length") == shape.n_embd
    assert _kv(reader, f"{a}.attention.head_count") == shape.n_heads
    assert _kv(reader, f"{a}.attention.head_count_kv") == shape.n_kv_heads
    assert tensors["blk.0.attn_k.weight"].shape[1] == shape.n_kv_heads * shape.head_dim
    assert len(_kv(reader, "tokenizer.ggml.tokens")) == shape.n_vocab  # type: ignore[arg-type]
    assert tensors["token_embd.weight"].shape[1] == shape.n_vocab
    assert ("output.weight" in tensors) != shape.tied_embeddings
    assert result.manifest.size_bytes == result.path.stat().st_size


def test_moe_files_carry_expert_counts_and_expert_tensors(built: dict[str, synth.BuildResult]) -> None:
    for arch in ("qwen3moe", "gpt-oss"):
        shape, reader = TINY[arch], _reader(built[arch].path)
        tensors = {t.name: t for t in reader.tensors}
        assert _kv(reader, f"{arch}.expert_count") == shape.n_experts
        assert _kv(reader, f"{arch}.expert_used_count") == shape.n_experts_used
        assert _kv(reader, f"{arch}.expert_feed_forward_length") == shape.n_ff_expert
        down = tensors["blk.1.ffn_down_exps.weight"]
        assert tuple(int(d) for d in down.shape) == (shape.n_ff_expert, shape.n_embd, shape.n_experts)
    gpt = {t.name: t for t in _reader(built["gpt-oss"].path).tensors}
    assert gpt["blk.0.ffn_up_exps.weight"].tensor_type.name == "MXFP4"
    assert gpt["blk.0.attn_q.weight"].tensor_type.name == "Q8_0"
    assert "blk.0.attn_sinks.weight" in gpt


def test_sliding_window_is_written_and_read_as_llama_cpp_patterns_it(built: dict[str, synth.BuildResult]) -> None:
    gemma = models.inspect(built["gemma3"].path, with_hash=False)
    assert gemma.sliding_window == 32
    assert gemma.swa_layers == [True] * 5 + [False] + [True]  # every 6th layer global (llama.cpp's gemma3 default)
    oss = models.inspect(built["gpt-oss"].path, with_hash=False)
    assert oss.sliding_window == 32 and oss.swa_layers == [True, False]
    assert _kv(_reader(built["gemma3"].path), "gemma3.attention.sliding_window") == 32


def test_q4_k_m_follows_llama_cpp_mixture(built: dict[str, synth.BuildResult]) -> None:
    tensors = {t.name: t.tensor_type.name for t in _reader(built["llama"].path).tensors}
    assert tensors["token_embd.weight"] == "Q6_K"  # tied embeddings take the output layer's type
    assert tensors["blk.1.attn_q.weight"] == "Q4_K"
    # use_more_bits(i, 3) = i < 0 or i >= 2 or i % 3 == 2: only the last layer gets Q6_K
    assert [tensors[f"blk.{i}.ffn_down.weight"] for i in range(3)] == ["Q4_K", "Q4_K", "Q6_K"]
    assert [tensors[f"blk.{i}.attn_v.weight"] for i in range(3)] == ["Q4_K", "Q4_K", "Q6_K"]
    # on Llama-3.1-8B (32 layers) llama.cpp picks layers 0-3, 6, 9, ..., 27 and 28-31: 16 of 32
    assert sum(synth._use_more_bits(i, 32) for i in range(32)) == 16
    assert tensors["blk.0.attn_norm.weight"] == "F32"


def test_rows_not_a_multiple_of_256_fall_back_like_llama_quantize() -> None:
    plan = {t.name: t.type_name for t in synth.tensor_plan(TINY["gpt-oss"], "Q4_K_M")}
    assert plan["blk.0.attn_q.weight"] == "Q5_0"  # 320-wide rows: Q4_K -> Q5_0
    assert plan["output.weight"] == "Q8_0"


def test_synthetic_models_are_marked_and_reused(built: dict[str, synth.BuildResult], tmp_path: Path) -> None:
    model = models.inspect(built["qwen3"].path, with_hash=False)
    assert model.synthetic
    manifest = json.loads(synth.manifest_path(built["qwen3"].path).read_text())
    assert manifest["seed"] == 0 and manifest["type"] == "F16" and manifest["shape"]["arch"] == "qwen3"
    assert manifest["hfp_version"] and manifest["label"] == synth.SYNTH_LABEL
    again = synth.build(TINY["qwen3"], "F16", name="tiny-qwen3", out_dir=built["qwen3"].path.parent)
    assert again.reused and again.path == built["qwen3"].path
    assert not models.inspect(models.default_model_path(), with_hash=False).synthetic


def test_a_model_that_does_not_fit_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ModelTooLargeError, match="GiB"):
        synth.check_room(10 * synth.GiB, tmp_path, ram_available=synth.GiB, vram_free=0)
    with pytest.raises(ModelTooLargeError, match="on disk"):
        synth.check_room(1 << 60, tmp_path)
    assert not list(tmp_path.iterdir())


def test_synth_names_resolve_and_build_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(synth.PRESETS, "tiny-test", synth.Preset(shape=TINY["qwen3"], source="test"))
    model = models.resolve("synth:tiny-test:Q8_0", with_hash=False)
    assert model.synthetic and model.file_type == "Q8_0" and model.n_layers == 2
    assert model.name == "synth:tiny-test"
    with pytest.raises(ModelError, match="hfp synth --list"):
        models.resolve("synth:no-such-model:Q4_K_M")
    with pytest.raises(ModelError, match="not offered"):
        models.resolve("synth:tiny-test:Q3_K_S")


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ConfigError, match="KV heads"):
        synth.with_overrides(TINY["llama"], n_kv_heads=3)
    with pytest.raises(ConfigError, match="experts"):
        synth.with_overrides(TINY["qwen3moe"], n_experts=0)


def test_safety_refuses_a_synthetic_model(built: dict[str, synth.BuildResult]) -> None:
    result = CliRunner().invoke(cli, ["safety", str(built["qwen3"].path), "--limit", "1"])
    assert result.exit_code == 2 and "synthetic" in result.output
    result = CliRunner().invoke(cli, ["safety", "synth:llama-3.1-8b:Q4_K_M"])
    assert result.exit_code == 2 and "synthetic" in result.output


def test_cli_lists_presets_and_builds_a_custom_shape(tmp_path: Path) -> None:
    listing = CliRunner().invoke(cli, ["synth", "--list", "--json"])
    assert listing.exit_code == 0
    rows = {r["preset"]: r for r in json.loads(listing.output)}
    assert {"llama-3.1-8b", "qwen3-30b-a3b", "gpt-oss-20b", "gemma-3-12b", "mistral-7b"} <= set(rows)
    assert rows["qwen3-30b-a3b"]["experts"] == 128 and rows["gemma-3-1b"]["sliding_window"] == 512
    out = CliRunner().invoke(cli, ["synth", "--arch", "llama", "--layers", "2", "--embd", "256", "--heads", "4",
                                   "--ff", "512", "--vocab", "1024", "--type", "Q4_0", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "timing and memory only" in out.output
    assert len(list(tmp_path.glob("*.gguf"))) == 1
    bad = CliRunner().invoke(cli, ["synth", "--arch", "llama", "--layers", "2"])
    assert bad.exit_code == 2 and bad.output.startswith("error:")


def test_a_measured_synthetic_run_says_so_in_its_record(built: dict[str, synth.BuildResult], tmp_path: Path) -> None:
    model = models.inspect(built["llama"].path, with_hash=False)
    record = runner.measure(model, runner.points_grid(16, 4, [1]), runner.default_settings(repetitions=1),
                            options=runner.RunOptions(record_path=str(tmp_path / "r.json"), idle_seconds=0))
    assert record.model.synthetic
    assert json.loads((tmp_path / "r.json").read_text())["model"]["synthetic"] is True
    out = CliRunner().invoke(cli, ["run", "-m", str(built["llama"].path), "-p", "8", "-n", "2", "--parallel", "1",
                                   "-r", "1", "--no-warmup", "--idle-seconds", "0", "--record",
                                   str(tmp_path / "cli.json")])
    assert out.exit_code == 0, out.output
    assert "synthetic weights: timing and memory only" in out.output


def test_like_takes_the_shape_of_an_existing_gguf(built: dict[str, synth.BuildResult]) -> None:
    smol = synth.shape_like(models.inspect(models.default_model_path(), with_hash=False))
    assert (smol.arch, smol.n_embd, smol.n_layers, smol.n_heads, smol.n_kv_heads, smol.n_ff, smol.n_vocab) == (
        "llama", 576, 30, 9, 3, 1536, 49152)
    assert smol.tied_embeddings
    moe = synth.shape_like(models.inspect(built["qwen3moe"].path, with_hash=False))
    keys = ("arch", "n_embd", "n_layers", "n_heads", "n_kv_heads", "head_dim", "n_vocab", "n_experts",
            "n_experts_used", "n_ff_expert", "tied_embeddings")
    assert {k: getattr(moe, k) for k in keys} == {k: getattr(TINY["qwen3moe"], k) for k in keys}
    assert synth.shape_like(models.inspect(built["gemma3"].path, with_hash=False)).sliding_window == 32
