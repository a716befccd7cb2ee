"""Embeddings computed by a pool of Ray actors that each hold the model.

:func:`~ftdata.similarity.embeddings.encode` looks texts up in the embedding cache and
cuts the rest into its batches on the driver; a :class:`RayEmbedder` sends those very
batches to a few actors, each of which loads the model once (the same ``load_model``)
and runs the same :func:`~ftdata.similarity.embeddings.embed_batch`. The vectors come
back in batch order whatever actor ran which batch, so the driver's neighbour search
sees the vectors a local run computes. Each actor keeps the torch threads Ray gives it
(one per CPU it holds): on real texts its vectors are bit for bit those of a driver
with more threads (tests/ray/test_embed.py). An actor asks for one GPU when the
cluster has any (and then embeds on it unless a device is named), else for one CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Times an actor is started again (and its batch sent again) when its process dies.
MAX_RESTARTS = 3


@dataclass
class EmbedStats:
    """What the actors of a :class:`RayEmbedder` did, summed over its calls: ``texts``
    and ``batches`` embedded (as each actor counted them), ``actors`` started, and
    whether they held GPUs."""

    texts: int = 0
    batches: int = 0
    actors: int = 0
    gpus: bool = False
    per_actor: list[int] = field(default_factory=list)


class EmbedActor:
    """One model, loaded once, embedding the batches it is sent."""

    def __init__(self, model: str, device: str | None, cache_dir: str | None) -> None:
        from ftdata.similarity.embeddings import load_model

        if cache_dir and os.path.isdir(cache_dir):
            # the driver's cache folder, where a derived model (minilm-static) already is
            os.environ["FTDATA_CACHE_DIR"] = cache_dir
        if device is None and _has_gpu():
            device = "cuda"
        self.loaded = load_model(model, device)
        self.texts = 0
        self.batches = 0

    def embed(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        from ftdata.similarity.embeddings import embed_batch

        vectors = embed_batch(self.loaded, texts, batch_size)
        self.texts += len(texts)
        self.batches += 1
        return vectors

    def counts(self) -> tuple[int, int]:
        return self.texts, self.batches


def _has_gpu() -> bool:
    import ray

    return bool(ray.get_gpu_ids())


class RayEmbedder:
    """An :class:`~ftdata.similarity.embeddings.Embedder` backed by Ray actors: at most
    ``actors`` of them (default: one per GPU of the cluster, else one per CPU, never more
    than there are batches), started for each call and stopped after it. ``stats`` says
    what the actors did."""

    def __init__(self, address: str | None = None, *, actors: int | None = None) -> None:
        self.address = address
        self.actors = actors
        self.stats = EmbedStats()

    def __call__(
        self, model: str, device: str | None, batches: Sequence[Sequence[str]], batch_size: int
    ) -> Iterator[np.ndarray]:
        if not batches:
            return iter(())
        return self._run(model, device, batches, batch_size)

    def _run(
        self, model: str, device: str | None, batches: Sequence[Sequence[str]], batch_size: int
    ) -> Iterator[np.ndarray]:
        from ray.util import ActorPool

        from ftdata.executors.ray import connect
        from ftdata.similarity.static_model import cache_root

        ray = connect(self.address)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        room = gpus or max(1, int(resources.get("CPU", 1)))
        size = max(1, min(len(batches), room, self.actors or room))
        actor = ray.remote(
            num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
        )(EmbedActor)
        pool = [actor.remote(model, device, str(cache_root())) for _ in range(size)]
        self.stats.actors += size
        self.stats.gpus = self.stats.gpus or bool(gpus)
        try:
            work = ActorPool(pool)
            try:
                yield from work.map(lambda a, batch: a.embed.remote(batch, batch_size), list(batches))
            except ray.exceptions.RayTaskError as e:
                # what the actor raised (a model that would not load), not Ray's wrapper
                cause = getattr(e, "cause", None)
                raise (cause if isinstance(cause, BaseException) else e) from None
            counts = ray.get([a.counts.remote() for a in pool])
            self.stats.per_actor.extend(texts for texts, _ in counts)
            self.stats.texts += sum(texts for texts, _ in counts)
            self.stats.batches += sum(n for _, n in counts)
        finally:
            for a in pool:
                ray.kill(a)
