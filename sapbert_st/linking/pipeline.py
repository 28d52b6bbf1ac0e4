"""Linker: the linking stages together (dense index, optional sparse candidates and reranker).

A mention goes through up to three stages: candidates from the dense
:class:`~sapbert_st.linking.DictionaryIndex` (SapBERT's nearest-neighbour search), fused
with sparse character n-gram candidates when a sparse index is attached, then reordered by
a cross-encoder reranker when one is attached. Every result carries the final score and
each stage's score, the concept's canonical name when a knowledge base is attached, and
an empty list (NIL) when the best score is below ``threshold``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sapbert_st.kb import KnowledgeBase
from sapbert_st.linking.checks import check_positive_int
from sapbert_st.linking.fusion import HybridFusion
from sapbert_st.linking.index import DictionaryIndex
from sapbert_st.linking.sparse import SparseIndex

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

LINKER_CONFIG = "linker_config.json"
LINKER_FORMAT = 1


@dataclass
class LinkCandidate:
    """One ranked candidate concept for a mention.

    Attributes:
        concept_id: The concept id (CUI); may be ``|``-joined as in the dictionary.
        name: The dictionary name that matched (the best-scoring name of the concept).
        score: The final score (the last stage's); higher is better.
        stage_scores: Each stage's score: ``"dense"``, and ``"sparse"``, ``"hybrid"``,
            ``"rerank"`` when those stages ran.
        canonical_name: The concept's preferred name (from the knowledge base), else None.
        types: The concept's semantic types (from the knowledge base), else empty.
    """

    concept_id: str
    name: str
    score: float
    stage_scores: dict[str, float] = field(default_factory=dict)
    canonical_name: str | None = None
    types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``types`` as a list)."""
        record = asdict(self)
        record["types"] = list(self.types)
        return record


class Linker:
    """Link mentions to concepts with a dense index and optional further stages.

    Args:
        index: The dense :class:`DictionaryIndex`, with its model attached.
        sparse: Optional :class:`~sapbert_st.linking.SparseIndex` over the same dictionary
            (same ids, same order); its candidates are fused with the dense ones.
        fusion: How the two are fused (:class:`~sapbert_st.linking.fusion.HybridFusion`);
            default ``HybridFusion()``: min-max normalised scores, sparse weight 0.3, 100
            candidates from each stage (chosen on dev splits).
        reranker: Optional reranker, e.g. a
            :class:`~sapbert_st.linking.rerank.CrossEncoderReranker`:
            ``rerank(mentions, candidates, contexts=None, show_progress_bar=None)``
            returns the candidates reordered.
        kb: Optional :class:`~sapbert_st.kb.KnowledgeBase` for canonical names and types.
        num_candidates: How many first-stage candidates the reranker sees per mention.
        threshold: Default NIL threshold: a mention whose best final score is below it
            links to nothing (an empty list). ``None``: never NIL.

    Example:
        ::

            from sapbert_st.linking import DictionaryIndex, Linker

            linker = Linker(DictionaryIndex.build(model, names, cuis))
            linker.link(["heart attack"], k=3)[0][0].concept_id
            linker.save("my-linker")
            linker = Linker.load("my-linker")
    """

    def __init__(self, index: DictionaryIndex, *, sparse: SparseIndex | None = None,
                 fusion: HybridFusion | None = None, reranker: Any = None,
                 kb: KnowledgeBase | None = None, num_candidates: int = 20,
                 threshold: float | None = None) -> None:
        if not isinstance(index, DictionaryIndex):
            raise TypeError(f"index: expected a DictionaryIndex, got {type(index).__name__}")
        if kb is not None and not isinstance(kb, KnowledgeBase):
            raise TypeError(f"kb: expected a KnowledgeBase, got {type(kb).__name__}")
        self.index = index
        self.sparse = _check_sparse(sparse, index)
        if fusion is not None and not isinstance(fusion, HybridFusion):
            raise TypeError(f"fusion: expected a HybridFusion, got {type(fusion).__name__}")
        self.fusion = fusion if fusion is not None else HybridFusion()
        self.reranker = reranker
        self.kb = kb
        self.num_candidates = check_positive_int(num_candidates, "num_candidates")
        self.threshold = _check_threshold(threshold)

    @property
    def model(self) -> SentenceTransformer | None:
        """The bi-encoder that encodes mentions (the index's model)."""
        return self.index.model

    def __repr__(self) -> str:
        stages = ["dense"] + (["sparse"] if self.sparse is not None else []) + (
            ["rerank"] if self.reranker is not None else [])
        return (f"Linker(stages={stages}, names={len(self.index)}, "
                f"kb={len(self.kb) if self.kb is not None else None}, "
                f"threshold={self.threshold})")

    # ------------------------------------------------------------------ linking

    def candidates(self, mentions: Sequence[str], k: int, *, batch_size: int | None = None,
                   show_progress_bar: bool | None = None) -> list[list[LinkCandidate]]:
        """First-stage candidates: the top ``k`` distinct concepts by the dense index, or,
        with a sparse index, by the fusion of both stages' top ``max(k, fusion.depth)``
        (``stage_scores``: ``"dense"``, ``"sparse"``, ``"hybrid"``; None for a stage that
        did not list the concept)."""
        if self.sparse is None:
            hits = self.index.search(mentions, k=k, batch_size=batch_size,
                                     show_progress_bar=show_progress_bar)
            return [[LinkCandidate(hit["cui"], hit["name"], hit["score"],
                                   {"dense": hit["score"]}) for hit in row] for row in hits]
        depth = max(k, self.fusion.depth)
        dense = self.index.search(mentions, k=depth, batch_size=batch_size,
                                  show_progress_bar=show_progress_bar)
        sparse = self.sparse.search(mentions, k=depth, show_progress_bar=show_progress_bar)
        return [[LinkCandidate(hit["cui"], hit["name"], hit["score"], hit["stage_scores"])
                 for hit in row] for row in self.fusion.fuse(dense, sparse, k=k, depth=depth)]

    def link(self, mentions: Sequence[str], k: int = 5, *, threshold: float | None = None,
             types: Sequence[str] | None = None, contexts: Sequence[str | None] | None = None,
             batch_size: int | None = None,
             show_progress_bar: bool | None = None) -> list[list[LinkCandidate]]:
        """Per mention, up to ``k`` candidates, best first (empty for NIL).

        Args:
            mentions: Mention strings.
            k: Candidates returned per mention.
            threshold: NIL threshold for this call (default: the linker's).
            types: Keep only concepts with at least one of these semantic types (needs a kb).
            contexts: Per mention, its context (e.g. the sentence) or None; only a reranker
                trained with context reads it.
            batch_size: Encoding batch size.
        """
        if isinstance(mentions, str):
            raise TypeError(f"mentions: expected a list of strings, got one string {mentions!r}")
        mentions = list(mentions)
        k = check_positive_int(k, "k")
        threshold = self.threshold if threshold is None else _check_threshold(threshold)
        wanted = _check_types(types, self.kb)
        if not mentions:
            return []
        pool = max(k, self.num_candidates) if self.reranker is not None else k
        if wanted is not None:
            pool = min(len(self.index), pool * 4)
        results = self._first_stage(mentions, pool, wanted, k, batch_size, show_progress_bar)
        if self.reranker is not None:
            results = self.reranker.rerank(mentions, results, contexts=contexts,
                                           show_progress_bar=False)
        return [self._finish(row, k, threshold) for row in results]

    def _first_stage(self, mentions, pool, wanted, k, batch_size, show_progress_bar):
        results = self.candidates(mentions, pool, batch_size=batch_size,
                                  show_progress_bar=show_progress_bar)
        if wanted is None:
            return results
        results = [self._keep_types(row, wanted) for row in results]
        # too few candidates of the wanted types: search deeper for those mentions only
        while pool < len(self.index):
            short = [i for i, row in enumerate(results) if len(row) < k]
            if not short:
                break
            pool = min(len(self.index), pool * 4)
            deeper = self.candidates([mentions[i] for i in short], pool, batch_size=batch_size,
                                     show_progress_bar=False)
            for i, row in zip(short, deeper):
                results[i] = self._keep_types(row, wanted)
        return results

    def _keep_types(self, row: list[LinkCandidate], wanted: set[str]) -> list[LinkCandidate]:
        kept = []
        for candidate in row:
            concept = self.kb.get(candidate.concept_id)
            if concept is not None and wanted.intersection(concept.types):
                kept.append(candidate)
        return kept

    def _finish(self, row: list[LinkCandidate], k: int,
                threshold: float | None) -> list[LinkCandidate]:
        row = row[:k]
        if threshold is not None and (not row or row[0].score < threshold):
            return []
        if self.kb is not None:
            for candidate in row:
                concept = self.kb.get(candidate.concept_id)
                if concept is not None:
                    candidate.canonical_name = concept.canonical_name
                    candidate.types = concept.types
        return row

    # ------------------------------------------------------------------ save / load

    def save(self, folder: str | os.PathLike, *, save_model: bool = True) -> None:
        """Write the linker to one folder: ``index/`` (the dense index), ``encoder/`` (the
        bi-encoder, unless ``save_model=False``), ``sparse/`` (the sparse index) when one is
        attached, ``kb.jsonl`` when a kb is attached, ``reranker/`` when a reranker is
        attached (a plain ``CrossEncoder`` folder) and ``linker_config.json`` (with the
        fusion settings)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.index.save(folder / "index")
        if save_model and self.model is not None:
            self.model.save(str(folder / "encoder"))
        if self.sparse is not None:
            self.sparse.save(folder / "sparse")
        if self.kb is not None:
            self.kb.write_jsonl(folder / "kb.jsonl")
        if self.reranker is not None:
            self.reranker.save(folder / "reranker")
        config = {"format": LINKER_FORMAT, "num_candidates": self.num_candidates,
                  "threshold": self.threshold, "kb": self.kb is not None,
                  "encoder": bool(save_model and self.model is not None),
                  "sparse": self.sparse is not None, "fusion": self.fusion.to_dict(),
                  "reranker": self.reranker is not None}
        (folder / LINKER_CONFIG).write_text(json.dumps(config, indent=2) + "\n",
                                            encoding="utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike, model: SentenceTransformer | None = None, *,
             mmap: bool = False, verify: bool = True) -> Linker:
        """Load a folder written by :meth:`save`; ``model`` overrides the saved encoder
        (it must match the index's fingerprint)."""
        folder = Path(folder)
        path = folder / LINKER_CONFIG
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {LINKER_CONFIG}; expected a folder written "
                                    f"by Linker.save")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not UTF-8 JSON ({exc}); expected the file "
                             f"Linker.save writes") from exc
        if not isinstance(config, dict) or config.get("format") != LINKER_FORMAT:
            raise ValueError(f"{path}: expected a JSON object with format {LINKER_FORMAT}, "
                             f"got {config!r:.200}")
        if model is None and config.get("encoder"):
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(folder / "encoder"))
        index = DictionaryIndex.load(folder / "index", model=model, mmap=mmap, verify=verify)
        kb = KnowledgeBase.read_jsonl(folder / "kb.jsonl") if config.get("kb") else None
        sparse = SparseIndex.load(folder / "sparse", verify=verify) if config.get(
            "sparse") else None
        try:
            fusion = HybridFusion.from_dict(config.get("fusion", {}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: 'fusion': {exc}") from exc
        reranker = None
        if config.get("reranker"):
            from sapbert_st.linking.rerank import CrossEncoderReranker

            reranker = CrossEncoderReranker.load(folder / "reranker")
        return cls(index, sparse=sparse, fusion=fusion, reranker=reranker, kb=kb,
                   num_candidates=config.get("num_candidates", 20),
                   threshold=config.get("threshold"))


def _check_sparse(sparse: SparseIndex | None, index: DictionaryIndex) -> SparseIndex | None:
    """The sparse index, checked to cover the dense index's dictionary row for row."""
    if sparse is None:
        return None
    if not isinstance(sparse, SparseIndex):
        raise TypeError(f"sparse: expected a SparseIndex, got {type(sparse).__name__}")
    if len(sparse) != len(index) or not sparse.ids.equals(index.ids):
        raise ValueError(f"sparse: built over a different dictionary ({len(sparse)} names) than "
                         f"the dense index ({len(index)} names); expected the same names and "
                         f"ids in the same order")
    return sparse


def _check_threshold(threshold: float | None) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or (
            math.isnan(threshold)):
        raise ValueError(f"threshold: expected a number or None, got {threshold!r}")
    return float(threshold)


def _check_types(types: Sequence[str] | None, kb: KnowledgeBase | None) -> set[str] | None:
    if types is None:
        return None
    if isinstance(types, str) or not all(isinstance(t, str) for t in types):
        raise TypeError(f"types: expected a list of type strings, got {types!r}")
    if kb is None:
        raise ValueError("types: filtering by semantic type needs a knowledge base (kb=)")
    return set(types)
