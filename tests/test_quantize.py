"""`hfp quantize` as a user meets it: a ladder of the default model built offline by llama.cpp's quantizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import models, quantize
from profiler.cli import cli
from profiler.errors import ConfigError, ModelError
from profiler.gguf import read_header
from profiler.quantize import Ladder, build_ladder

LEVELS = ["F16", "Q8_0", "Q4_K_M", "Q2_K"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ladder(default_model_path: Path) -> Ladder:
    """Four levels of the default model, in the test session's cache (built once, reused by later modules)."""
    return build_ladder(default_model_path, LEVELS)


def test_quantize_builds_four_levels_offline_into_the_cache(ladder: Ladder) -> None:
    folder = Path(ladder.directory)
    assert folder.is_relative_to(models.cache_dir() / "ladders")
    assert not folder.is_relative_to(REPO)
    # The cache is shared by the test session, so levels other tests built from the same source may be there too.
    assert set(LEVELS) <= set(ladder.level_names())
    for lvl in ladder.levels:
        path = folder / lvl.file
        assert path.is_file() and path.stat().st_size == lvl.size_bytes
        assert models.inspect(path).file_type == lvl.level  # general.file_type as llama.cpp wrote it
    assert (folder / quantize.MANIFEST_NAME).is_file()


def test_levels_are_ordered_from_most_to_fewest_bits_and_shrink(ladder: Ladder) -> None:
    bits = [lvl.bits_per_weight for lvl in ladder.levels]
    sizes = [lvl.size_bytes for lvl in ladder.levels]
    assert ladder.level_names()[0] == "F16"
    assert bits == sorted(bits, reverse=True)
    assert sizes == sorted(sizes, reverse=True)


def test_levels_from_a_quantized_source_are_marked_requantized(ladder: Ladder) -> None:
    assert ladder.source.file_type == "Q4_1" and ladder.source.quantized
    assert all(lvl.requantized for lvl in ladder.levels)
    assert all(any("requantized from a Q4_1 source" in w for w in lvl.warnings) for lvl in ladder.levels)


def test_k_quant_fallbacks_are_found_by_comparing_intended_and_actual_tensor_types(ladder: Ladder) -> None:
    # SmolLM2-135M has 576-wide rows: not a multiple of the K-quants' 256-element blocks.
    q4km = ladder.level("Q4_K_M")
    assert q4km.fallback_tensors > 0
    assert set(q4km.fallback_types) <= {"Q5_0", "Q5_1", "Q8_0", "F16"}
    header = read_header(Path(ladder.directory) / q4km.file)
    fell = [t for t in header.tensors if len(t.shape) > 1 and t.type_name not in quantize.LEVEL_TYPES["Q4_K_M"]]
    assert len(fell) == q4km.fallback_tensors
    assert all(t.shape[0] % 256 != 0 for t in fell)
    # F16 and Q8_0 have no block-size constraint here: nothing falls back.
    assert ladder.level("F16").fallback_tensors == 0 and ladder.level("Q8_0").fallback_tensors == 0


def test_existing_levels_with_the_same_source_are_reused(ladder: Ladder, default_model_path: Path) -> None:
    path = Path(ladder.directory) / ladder.level("Q8_0").file
    mtime = path.stat().st_mtime_ns
    again = build_ladder(default_model_path, ["Q8_0"])
    assert again.level("Q8_0").quantize_s is None  # reused, not rebuilt
    assert path.stat().st_mtime_ns == mtime
    assert set(LEVELS) <= set(again.level_names())  # the manifest keeps the other levels


def test_the_manifest_reads_back_from_its_folder_or_its_file(ladder: Ladder) -> None:
    folder = Path(ladder.directory)
    assert Ladder.load(folder).levels == Ladder.load(folder / "ladder.json").levels
    assert quantize.is_ladder(folder) and not quantize.is_ladder(folder / ladder.levels[0].file)


def test_cli_prints_the_ladder_and_warns_about_requantization(ladder: Ladder) -> None:
    result = CliRunner().invoke(cli, ["quantize", "--levels", ",".join(LEVELS)])
    assert result.exit_code == 0, result.output
    for level in LEVELS:
        assert level in result.stdout
    assert "requantized from an already-quantized Q4_1 source" in result.stderr
    assert "fell back" in result.stderr


def test_cli_json_is_the_manifest(ladder: Ladder) -> None:
    result = CliRunner().invoke(cli, ["quantize", "--levels", "Q8_0,Q2_K", "--json"])
    assert result.exit_code == 0, result.output
    printed = Ladder.model_validate(json.loads(result.stdout))
    assert printed.level_names() == ["Q8_0", "Q2_K"]


def test_llama_cpp_log_is_silent_unless_verbose(ladder: Ladder) -> None:
    proc = subprocess.run([sys.executable, "-m", "profiler", "quantize", "--levels", "Q2_K"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "llama_model_loader" not in proc.stderr and "llama_model_quantize" not in proc.stderr


def test_a_non_gguf_source_is_refused_in_one_line_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="not a GGUF file"):
        build_ladder(bad, ["Q8_0"], out=tmp_path / "out")
    result = CliRunner().invoke(cli, ["quantize", str(bad), "--levels", "Q8_0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not a GGUF file" in result.stderr
    assert not (tmp_path / "o").exists()  # refused before any output folder was made


def test_unknown_levels_and_output_inside_the_repository_are_refused(default_model_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported quantization level 'Q9_Z'"):
        build_ladder(default_model_path, ["Q9_Z"])
    with pytest.raises(ConfigError, match="inside the hfp source tree"):
        build_ladder(default_model_path, ["Q8_0"], out=REPO / "ladders")
    result = CliRunner().invoke(cli, ["quantize", "--levels", "Q8_0,IQ2_XXS"])
    assert result.exit_code == 2 and "choose from" in result.stderr


def test_a_folder_holding_another_models_ladder_is_not_overwritten(ladder: Ladder, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((Path(ladder.directory) / "ladder.json").read_text())
    manifest["source"]["sha256"] = "0" * 64
    (other / "ladder.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="ladder of another model"):
        build_ladder(models.default_model_path(), ["Q8_0"], out=other)
