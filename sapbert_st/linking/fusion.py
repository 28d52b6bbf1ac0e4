"""HybridFusion: merge dense and sparse candidate lists into one ranking.

Two rules over the per-mention candidate lists of the two stages (each a list of
``{"cui", "name", "score", "row"}`` dicts, best first, distinct concepts, as
:meth:`DictionaryIndex.search` and :meth:`SparseIndex.search` return them):

* ``"weighted"``: ``hybrid = (1 - weight) * dense + weight * sparse``, BioSyn's score
  (``score = dense + sparse_weight * sparse``, with a learned ``sparse_weight``) with the
  weight fixed on dev splits instead of learned, and each stage's scores first put on one
  scale (``normalization``):

  - ``"none"``: the raw scores; right when both are cosines (the sparse stage always is;
    the dense index with ``similarity="cosine"``), as BioSyn adds its raw scores.
  - ``"minmax"``: per mention and stage, ``(s - min) / (max - min)`` over the listed
    candidates (1 for the best, 0 for the last; all 1 when they tie), for dot-product
    scores of unknown range.

  A concept missing from one stage's list gets that stage's lowest listed score for the
  mention (the most it can have: it ranked below the list), or 0 when the list is complete:
  shorter than the ``depth`` asked of the stage (the sparse stage lists only names that
  share an n-gram with the mention) or empty.
* ``"rrf"``: reciprocal rank fusion (Cormack et al., SIGIR 2009),
  ``hybrid = (1 - weight) / (rrf_k + rank_dense) + weight / (rrf_k + rank_sparse)`` with
  1-based ranks and ``rrf_k = 60`` (the paper's); a stage that did not list the concept
  adds nothing. ``weight = 0.5`` is plain RRF (halved).

Each fused candidate keeps both stage scores (``stage_scores``: ``"dense"``, ``"sparse"``,
``"hybrid"``; the raw score, or None where the stage did not list it) and the name and row
of the dense hit when there is one, else the sparse hit's. Ties of the hybrid score are
broken by the order of first appearance, dense list first.

References:
    - Sung et al., "Biomedical Entity Representations with Synonym Marginalization",
      ACL 2020 (BioSyn). https://github.com/dmis-lab/BioSyn
    - Cormack, Clarke, Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and
      individual Rank Learning Methods", SIGIR 2009.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sapbert_st.linking.checks import check_positive_int

FUSION_METHODS = ("weighted", "rrf")
NORMALIZATIONS = ("none", "minmax")


@dataclass
class HybridFusion:
    """How :class:`~sapbert_st.linking.Linker` fuses its dense and sparse candidates.

    The defaults (weighted, min-max, sparse weight 0.3, 100 candidates per stage) had the
    best mean dev recall@20 over NCBI, BC5CDR-disease/-chemical and both COMETA general
    splits with all-MiniLM-L6-v2 (``benchmarks/candidate_recall.py``; raw scores with
    weight 0.2-0.3 were within 0.02 points, RRF 0.3 points lower).

    Args:
        method: ``"weighted"`` (weighted sum of normalised scores) or ``"rrf"``.
        weight: The sparse stage's weight in [0, 1]; the dense stage gets ``1 - weight``.
        normalization: ``"none"`` or ``"minmax"`` (``"weighted"`` only).
        rrf_k: The rank offset of reciprocal rank fusion (the paper's 60).
        depth: Candidates taken from each stage before fusing (at least the k asked for).

    Example:
        ::

            fusion = HybridFusion("weighted", weight=0.3)
            fusion.fuse(dense_hits, sparse_hits)  # per mention, fused dicts, best first
    """

    method: str = "weighted"
    weight: float = 0.3
    normalization: str = "minmax"
    rrf_k: int = 60
    depth: int = 100

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"method: expected one of {FUSION_METHODS}, got {self.method!r}")
        if (isinstance(self.weight, bool) or not isinstance(self.weight, (int, float))
                or not 0.0 <= self.weight <= 1.0):
            raise ValueError(f"weight: expected a number in [0, 1] (the sparse stage's share), "
                             f"got {self.weight!r}")
        self.weight = float(self.weight)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization: expected one of {NORMALIZATIONS}, got "
                             f"{self.normalization!r}")
        self.rrf_k = check_positive_int(self.rrf_k, "rrf_k")
        self.depth = check_positive_int(self.depth, "depth")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> HybridFusion:
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict of HybridFusion settings, got {config!r}")
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"config: unknown HybridFusion settings {unknown}; expected "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(**config)

    def fuse(self, dense: Sequence[Sequence[dict]], sparse: Sequence[Sequence[dict]],
             k: int | None = None, depth: int | None = None) -> list[list[dict[str, Any]]]:
        """Per mention, the fused candidates (at most ``k``; all when None), best first.

        ``depth``: how many candidates each stage was asked for (default ``self.depth``); a
        shorter list is complete (see the module doc)."""
        depth = self.depth if depth is None else check_positive_int(depth, "depth")
        if len(dense) != len(sparse):
            raise ValueError(f"sparse: {len(sparse)} candidate lists for {len(dense)} dense "
                             f"ones; expected one per mention")
        if self.method == "rrf":
            fused = [reciprocal_rank_fusion(d, s, self.weight, self.rrf_k)
                     for d, s in zip(dense, sparse)]
        else:
            fused = [weighted_fusion(d, s, self.weight, self.normalization, depth)
                     for d, s in zip(dense, sparse)]
        return fused if k is None else [row[:k] for row in fused]


def _merged(dense: Sequence[dict], sparse: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Concept -> {"cui","name","row","dense","sparse","dense_rank","sparse_rank"},
    in order of first appearance (dense list first)."""
    merged: dict[str, dict[str, Any]] = {}
    for stage, hits in (("dense", dense), ("sparse", sparse)):
        for rank, hit in enumerate(hits, 1):
            entry = merged.get(hit["cui"])
            if entry is None:
                entry = merged[hit["cui"]] = {"cui": hit["cui"], "name": hit["name"],
                                              "row": hit.get("row"), "dense": None,
                                              "sparse": None, "dense_rank": None,
                                              "sparse_rank": None}
            if entry[stage] is None:  # a concept listed twice keeps its best (first) hit
                entry[stage], entry[f"{stage}_rank"] = float(hit["score"]), rank
    return merged


def _ranked(merged: dict[str, dict[str, Any]], hybrid: dict[str, float]) -> list[dict[str, Any]]:
    entries = list(merged.values())
    indexed = sorted(range(len(entries)), key=lambda i: -hybrid[entries[i]["cui"]])
    out = []
    for i in indexed:
        entry = entries[i]
        score = hybrid[entry["cui"]]
        out.append({"cui": entry["cui"], "name": entry["name"], "score": score,
                    "row": entry["row"],
                    "stage_scores": {"dense": entry["dense"], "sparse": entry["sparse"],
                                     "hybrid": score}})
    return out


def _normalized(scores: list[float], normalization: str,
                complete: bool) -> tuple[dict[int, float], float]:
    """Normalised scores by position, and the fill for a missing concept."""
    if not scores:
        return {}, 0.0
    if normalization == "none":
        return dict(enumerate(scores)), 0.0 if complete else min(scores)
    low, high = min(scores), max(scores)
    span = high - low
    values = {i: (s - low) / span if span > 0 else 1.0 for i, s in enumerate(scores)}
    return values, 0.0 if span > 0 else 1.0


def weighted_fusion(dense: Sequence[dict], sparse: Sequence[dict], weight: float,
                    normalization: str = "none",
                    depth: int | None = None) -> list[dict[str, Any]]:
    """One mention's candidates by ``(1 - weight) * dense + weight * sparse`` (module doc);
    a stage list shorter than ``depth`` is complete (None: never)."""
    merged = _merged(dense, sparse)
    hybrid: dict[str, float] = {}
    parts: dict[str, tuple[dict[str, float], float]] = {}
    for stage in ("dense", "sparse"):
        listed = [(cui, entry[stage]) for cui, entry in merged.items() if entry[stage] is not None]
        listed.sort(key=lambda item: merged[item[0]][f"{stage}_rank"])
        complete = depth is not None and len(listed) < depth
        values, fill = _normalized([s for _, s in listed], normalization, complete)
        by_cui = {cui: values[i] for i, (cui, _) in enumerate(listed)}
        parts[stage] = (by_cui, fill)
    for cui in merged:
        dense_value = parts["dense"][0].get(cui, parts["dense"][1])
        sparse_value = parts["sparse"][0].get(cui, parts["sparse"][1])
        hybrid[cui] = (1.0 - weight) * dense_value + weight * sparse_value
    return _ranked(merged, hybrid)


def reciprocal_rank_fusion(dense: Sequence[dict], sparse: Sequence[dict], weight: float = 0.5,
                           rrf_k: int = 60) -> list[dict[str, Any]]:
    """One mention's candidates by weighted reciprocal rank fusion (module doc)."""
    merged = _merged(dense, sparse)
    hybrid = {}
    for cui, entry in merged.items():
        score = 0.0
        for stage, share in (("dense", 1.0 - weight), ("sparse", weight)):
            rank = entry[f"{stage}_rank"]
            if rank is not None:
                score += share / (rrf_k + rank)
        hybrid[cui] = score
    return _ranked(merged, hybrid)
