"""Embeddings on Ray actors that hold the model: the vectors of a local run, bit for bit,
with the default model and minilm-static; cached vectors are not sent; lint FT405, dedup
--method semantic and split's semantic grouping on Ray write the local bytes, with the
vectors computed by the actors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", exc_type=ImportError, reason="the 'ray' extra is not installed: pip install 'ftdata[ray]'")

import ftdata
from ftdata.curation.dedup import dedup
from ftdata.curation.split import split
from ftdata.distributed import on_cluster
from ftdata.distributed.embed import RayEmbedder
from ftdata.executors.ray import RayExecutor
from ftdata.similarity.embeddings import DEFAULT_MODEL, encode
from ftdata.similarity.static_model import STATIC_MINILM
from tests.conftest import REAL, run_cli

MODELS = [DEFAULT_MODEL, STATIC_MINILM]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled model, never the hub (as every semantic test here)."""
    pytest.importorskip("sentence_transformers", reason="the 'embed' extra is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _texts(limit: int) -> list[str]:
    """Prompts and replies of real records: of every length, some repeated."""
    texts = []
    for line in (REAL / "v1_sft_demo.jsonl").read_text(encoding="utf-8").splitlines()[:limit]:
        record = json.loads(line)
        texts.extend(part["value"] for m in record["messages"] for part in m["content"] if part["type"] == "text")
    return texts


@pytest.mark.parametrize("model", MODELS)
def test_actors_compute_the_local_vectors(cluster: Any, model: str) -> None:
    texts = _texts(60)
    unique = len(set(texts))
    assert unique > 64  # long and short texts, in two batches of the default model
    assert unique < len(texts)  # and repeats
    local = encode(texts, model=model, cache=False)
    embedder = RayExecutor().embedder()
    remote = encode(texts, model=model, cache=False, embedder=embedder)
    assert remote.tobytes() == local.tobytes()
    stats = embedder.stats
    # every distinct text was embedded by an actor, once, none on the driver
    assert stats.texts == unique
    assert sum(stats.per_actor) == unique
    batches = -(-unique // (4096 if model == STATIC_MINILM else 64))
    assert stats.batches == batches
    assert stats.actors == min(batches, int(cluster.cluster_resources()["CPU"])) == len(stats.per_actor)
    assert not stats.gpus  # this cluster has none: CPU actors
    if stats.actors > 1:
        assert all(n > 0 for n in stats.per_actor)  # the batches were shared out


def test_cached_vectors_are_not_sent_to_the_actors(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FTDATA_NO_CACHE", raising=False)
    texts = _texts(60)
    first = texts[: len(texts) // 2]
    got = {}
    for where in ("local", "ray"):
        # two caches in one state: the transformer's vectors depend on the batch a text is
        # padded in, so a run is compared with a run that found the same vectors cached
        monkeypatch.setenv("FTDATA_CACHE_DIR", str(tmp_path / where))
        seen = encode(first, model=DEFAULT_MODEL)  # this process fills the cache
        embedder = RayEmbedder() if where == "ray" else None
        again = encode(first, model=DEFAULT_MODEL, embedder=embedder)
        assert again.tobytes() == seen.tobytes()
        got[where] = encode(texts, model=DEFAULT_MODEL, embedder=embedder).tobytes()
        if embedder is not None:
            assert embedder.stats.texts == len(set(texts) - set(first))  # only the new texts
            assert embedder.stats.actors == min(2, -(-embedder.stats.texts // 64))  # none for the cached call
    assert got["ray"] == got["local"]


@pytest.mark.parametrize("model", MODELS)
def test_lint_semantic_duplicates_on_ray_give_the_local_bytes(cluster: Any, model: str) -> None:
    address = cluster.get_runtime_context().gcs_address
    path = REAL / "identity.json"
    args = ["lint", "--isolated", "--output-format", "json", "--select", "FT405", "--option", f"FT405.model={model}"]
    local = run_cli(*args, path)
    assert local.returncode == 0, local.stderr  # warnings only
    assert local.stdout.count('"FT405"') >= 5  # the file's paraphrased identity questions
    ray = run_cli(*args, "--engine", "ray", "--address", address, path)
    assert ray.returncode == 0, ray.stderr
    assert ray.stdout == local.stdout


@pytest.mark.parametrize("model", MODELS)
def test_split_semantic_on_ray_writes_the_local_files(cluster: Any, tmp_path: Path, model: str) -> None:
    path = REAL / "identity.json"
    options: dict[str, Any] = {"group_by": "semantic", "model": model, "seed": 5}
    split(path, **options).write(tmp_path / "local")
    split(path, engine="ray", blocks=2, **options).write(tmp_path / "ray")
    local = {p.name: p.read_bytes() for p in sorted((tmp_path / "local").iterdir())}
    ray = {p.name: p.read_bytes() for p in sorted((tmp_path / "ray").iterdir())}
    assert set(local) >= {"train.json", "eval.json", "manifest.json"}
    assert ray == local
    manifest = json.loads(local["manifest.json"])
    assert manifest["groups"] < manifest["records"]  # paraphrases were kept together


class _KeepsItsEmbedder(RayExecutor):
    """The Ray executor, holding on to the embedder it hands the run (to read its counts)."""

    def embedder(self) -> Any:
        self.made = super().embedder()
        return self.made


def test_lint_semantic_duplicates_are_embedded_by_the_actors(cluster: Any) -> None:
    path = REAL / "identity.json"
    options = {"FT405": {"model": STATIC_MINILM}}
    local = ftdata.lint(path, select=["FT405"], options=options, config=False)
    executor = _KeepsItsEmbedder()
    remote = ftdata.lint(path, select=["FT405"], options=options, config=False, executor=executor)
    assert [f.to_dict() for f in remote.findings] == [f.to_dict() for f in local.findings]
    assert len(local.findings) >= 5
    stats = executor.made.stats
    assert stats.actors >= 1
    assert stats.texts > 0  # the vectors came from the actors
    assert sum(stats.per_actor) == stats.texts


@pytest.mark.parametrize("model", MODELS)
def test_dedup_semantic_on_ray_writes_the_local_files(cluster: Any, tmp_path: Path, model: str) -> None:
    path = REAL / "identity.json"
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    dedup(path, tmp_path / "local" / "kept.json", method="semantic", model=model)
    address = cluster.get_runtime_context().gcs_address
    on_cluster(path, tmp_path / "ray" / "kept.json", address=address, method="semantic", model=model)
    local = {p.name: p.read_bytes() for p in sorted((tmp_path / "local").iterdir())}
    ray = {p.name: p.read_bytes() for p in sorted((tmp_path / "ray").iterdir())}
    assert set(local) == {"kept.json", "kept.rejected.jsonl", "kept.clusters.json", "kept.manifest.json"}
    assert ray == local
    assert json.loads(local["kept.manifest.json"])["counts"]["rejected"] > 0  # paraphrases were found


def test_cli_dedup_semantic_on_ray_writes_the_local_files(cluster: Any, tmp_path: Path) -> None:
    address = cluster.get_runtime_context().gcs_address
    path = REAL / "identity.json"
    args = ["dedup", path, "--method", "semantic", "--model", STATIC_MINILM, "-q"]
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = run_cli(*args, "-o", tmp_path / "local" / "kept.json", cwd=tmp_path)
    remote = run_cli(*args, "-o", tmp_path / "ray" / "kept.json", "--engine", "ray", "--address", address, cwd=tmp_path)
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    local_files = {p.name: p.read_bytes() for p in sorted((tmp_path / "local").iterdir())}
    assert len(local_files) == 4
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "ray").iterdir())} == local_files
