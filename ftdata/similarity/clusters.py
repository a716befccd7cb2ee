"""Union-find over verified similar pairs, and clusters with a representative."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

KEEP_POLICIES = ("first", "longest")


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


@dataclass(frozen=True)
class Cluster:
    """A group of similar records. ``members`` is sorted and includes ``representative``;
    ``similarity[k]`` is the similarity that joined ``members[k]`` to the cluster (its
    best verified pair inside it), 1.0 for the representative."""

    representative: int
    members: tuple[int, ...]
    similarity: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.members)

    def similarity_of(self, member: int) -> float:
        return self.similarity[self.members.index(member)]

    @property
    def dropped(self) -> tuple[int, ...]:
        return tuple(m for m in self.members if m != self.representative)


def _representative(members: Sequence[int], keep: str, lengths: Sequence[int] | None) -> int:
    if keep == "first" or lengths is None:
        return min(members)
    if keep == "longest":
        return min(members, key=lambda i: (-lengths[i], i))
    raise ValueError(f"unknown keep policy {keep!r} (expected one of {', '.join(KEEP_POLICIES)})")


def build_clusters(
    n: int,
    edges: Iterable[tuple[int, int, float]],
    *,
    keep: str = "first",
    lengths: Sequence[int] | None = None,
) -> list[Cluster]:
    """Connected components (of two or more) of the graph of verified pairs, in order of
    their smallest member."""
    if keep not in KEEP_POLICIES:
        raise ValueError(f"unknown keep policy {keep!r} (expected one of {', '.join(KEEP_POLICIES)})")
    uf = UnionFind(n)
    best: dict[int, float] = {}
    for i, j, sim in edges:
        uf.union(i, j)
        if sim > best.get(i, -1.0):
            best[i] = sim
        if sim > best.get(j, -1.0):
            best[j] = sim
    groups: dict[int, list[int]] = {}
    for i in best:
        groups.setdefault(uf.find(i), []).append(i)
    clusters = []
    for members in groups.values():
        members.sort()
        rep = _representative(members, keep, lengths)
        sims = tuple(1.0 if m == rep else round(best[m], 6) for m in members)
        clusters.append(Cluster(rep, tuple(members), sims))
    clusters.sort(key=lambda c: c.members[0])
    return clusters


def exact_clusters(
    keys: Sequence[Hashable], *, keep: str = "first", lengths: Sequence[int] | None = None
) -> list[Cluster]:
    """Clusters of records whose keys are equal (a None key never matches)."""
    first: dict[Hashable, int] = {}
    edges = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        j = first.setdefault(key, i)
        if j != i:
            edges.append((j, i, 1.0))
    return build_clusters(len(keys), edges, keep=keep, lengths=lengths)


def representative_clusters(
    n: int,
    edges: Iterable[tuple[int, int, float]],
    *,
    keep: str = "first",
    lengths: Sequence[int] | None = None,
    compatible: Callable[[int, int], bool] | None = None,
) -> list[Cluster]:
    """Groups of two or more in which every member is a verified neighbour of the
    group's representative (no transitive chains: A near B near C does not put A and C
    together unless A and C are near too). ``similarity[k]`` is the similarity of
    ``members[k]`` to the representative. Representatives are taken greedily in the
    order of ``keep`` (``first``: lowest index; ``longest``: longest text first), each
    gathering its neighbours not yet in a group; ``compatible(rep, member)`` may refuse
    a member (it then stays free for another group). In order of their smallest member."""
    if keep not in KEEP_POLICIES:
        raise ValueError(f"unknown keep policy {keep!r} (expected one of {', '.join(KEEP_POLICIES)})")
    neighbours: dict[int, dict[int, float]] = {}
    for i, j, sim in edges:
        if i == j:
            continue
        if sim > neighbours.setdefault(i, {}).get(j, -1.0):
            neighbours[i][j] = sim
            neighbours.setdefault(j, {})[i] = sim
    if keep == "longest" and lengths is not None:
        order = sorted(neighbours, key=lambda i: (-lengths[i], i))
    else:
        order = sorted(neighbours)
    grouped: set[int] = set()
    clusters = []
    for rep in order:
        if rep in grouped:
            continue
        joined = {
            m: s for m, s in neighbours[rep].items() if m not in grouped and (compatible is None or compatible(rep, m))
        }
        if not joined:
            continue
        grouped.add(rep)
        grouped.update(joined)
        members = sorted((rep, *joined))
        sims = tuple(1.0 if m == rep else round(joined[m], 6) for m in members)
        clusters.append(Cluster(rep, tuple(members), sims))
    clusters.sort(key=lambda c: c.members[0])
    return clusters
