"""Models: reading GGUF headers without loading weights, and finding models where users keep them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from profiler import models
from profiler.errors import ModelError


def test_default_model_is_found_inside_the_wheel_without_importing_it(default_model_path: Path) -> None:
    assert default_model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert default_model_path.stat().st_size > 50_000_000


def test_inspect_reads_shape_and_quantization_from_metadata(default_model: models.ModelFile) -> None:
    m = default_model
    assert (m.architecture, m.file_type, m.n_layers, m.n_heads) == ("llama", "Q4_1", 30, 9)
    assert m.n_kv_heads == [3] * 30  # grouped-query attention: 3 KV heads for 9 query heads
    assert (m.head_dim_k, m.head_dim_v, m.n_ctx_train, m.n_vocab) == (64, 64, 8192, 49152)
    assert 130e6 < m.params < 140e6
    assert m.tensor_bytes <= m.size_bytes
    assert 0 < m.repeating_bytes < m.tensor_bytes
    assert m.sha256 and len(m.sha256) == 64


def test_kv_bytes_per_token_follows_grouped_query_heads(default_model: models.ModelFile) -> None:
    full, swa = default_model.kv_bytes_per_token("f16", "f16")
    assert full == 30 * 3 * (64 + 64) * 2  # layers x kv_heads x (k + v dims) x 2 bytes, not 9 heads
    assert swa == 0


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        models.inspect(tmp_path / "nope.gguf")


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        models.inspect(bogus)


def test_truncated_gguf_is_refused_before_loading(tmp_path: Path, default_model_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with default_model_path.open("rb") as src:
        cut.write_bytes(src.read(20_000_000))
    with pytest.raises(ModelError, match="truncated"):
        models.inspect(cut)


def test_header_cut_inside_metadata_is_refused(tmp_path: Path, default_model_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with default_model_path.open("rb") as src:
        cut.write_bytes(src.read(1000))
    with pytest.raises(ModelError, match="truncated"):
        models.inspect(cut)


def _link(target: Path, src: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(src)
    return target


def test_discovery_finds_models_in_the_stores_users_keep_them_in(tmp_path: Path, default_model_path: Path) -> None:
    home = tmp_path / "home"
    hub = home / ".cache" / "huggingface" / "hub" / "models--org--tiny-GGUF" / "snapshots" / "abc123"
    _link(hub / "tiny.Q4_1.gguf", default_model_path)
    _link(home / ".lmstudio" / "models" / "org" / "tiny" / "tiny-lms.gguf", default_model_path)
    ollama = home / ".ollama" / "models"
    digest = "sha256:" + "ab" * 32
    _link(ollama / "blobs" / digest.replace(":", "-"), default_model_path)
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "cd" * 32},
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest},
    ]}))
    user_dir = tmp_path / "mine"
    _link(user_dir / "a.gguf", default_model_path)

    found = models.discover([user_dir], home=home, env={})
    by_source = {e.source: e for e in found}
    assert set(by_source) == {"default", "path", "huggingface", "lmstudio", "ollama"}
    assert by_source["huggingface"].name == "org/tiny-GGUF/tiny.Q4_1.gguf"
    assert by_source["ollama"].name == "tiny:latest"

    assert models.resolve_path("tiny", home=home, env={}) == Path(by_source["ollama"].path)
    assert models.resolve_path("ollama:tiny:latest", home=home, env={}) == Path(by_source["ollama"].path)
    assert models.resolve_path("tiny-lms", home=home, env={}).name == "tiny-lms.gguf"


def test_unknown_model_name_says_how_to_list_models(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="hfp models"):
        models.resolve_path("no-such-model-anywhere", home=tmp_path, env={})


def test_folder_with_one_model_resolves_to_it(tmp_path: Path, default_model_path: Path) -> None:
    shutil.copy(default_model_path, tmp_path / "only.gguf")
    assert models.resolve_path(str(tmp_path)) == tmp_path / "only.gguf"
