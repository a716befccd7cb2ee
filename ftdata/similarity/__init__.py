"""Similarity: exact keys, MinHash-LSH near duplicates and embedding neighbours, all ending in
clusters by union-find. Each stage is a pure function over arrays, so shards can be computed
in separate processes. numpy (and, for embeddings, sentence-transformers) are imported here
and only here."""

from ftdata.similarity.clusters import Cluster, UnionFind, build_clusters, exact_clusters
from ftdata.similarity.text import normalise_text, scope_text

__all__ = [
    "Cluster",
    "UnionFind",
    "build_clusters",
    "exact_clusters",
    "normalise_text",
    "scope_text",
]
