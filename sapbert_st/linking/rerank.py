"""CrossEncoderReranker: the second linking stage, a sentence-transformers ``CrossEncoder``.

The first stage (dense, or dense + sparse) proposes candidate concepts, one name each;
the cross-encoder reads the mention and each candidate name together (optionally with the
mention's context) and scores the pair. Only the top ``top_k`` first-stage candidates are
reranked, and a mention whose first stage is unambiguous (best score ahead of the second
by at least ``skip_margin``) is not reranked at all: the cascade that keeps linking fast
on a CPU. With ``first_stage_weight`` w > 0 the final score interpolates both stages,
``(1 - w) * rerank + w * first_stage``, so a reranker trained on a few thousand mentions
corrects the first stage instead of replacing it (w chosen on a dev split). Train one with
:func:`sapbert_st.linking.rerank_training.train_reranker`.

The saved folder is a plain ``CrossEncoder`` folder (``CrossEncoder(path)`` loads it
without sapbert-st) plus ``reranker_config.json`` with the cascade settings.

References:
    - xMEN (Borchert et al., JAMIA 2023) and ArboEL / BioEL rerank bi-encoder candidates
      with a trained cross-encoder; https://github.com/hpi-dhc/xmen
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sapbert_st.linking.checks import check_positive_int

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

logger = logging.getLogger(__name__)

RERANKER_CONFIG = "reranker_config.json"
RERANKER_FORMAT = 1
#: Between the mention and its context in the cross-encoder's first text.
CONTEXT_SEPARATOR = " ; "


def mention_text(mention: str, context: str | None) -> str:
    """The cross-encoder's first text: the mention, then its context when there is one."""
    return mention if not context else f"{mention}{CONTEXT_SEPARATOR}{context}"


def load_cross_encoder(model: str | os.PathLike, *, max_length: int | None = None,
                       device: str | None = None) -> CrossEncoder:
    """A ``CrossEncoder`` with one output from a cross-encoder folder, a bi-encoder folder
    (all-MiniLM-L6-v2, a trained SapBERT model: a new scoring head is added) or a Hub id."""
    from sentence_transformers.cross_encoder import CrossEncoder

    return CrossEncoder(str(model), num_labels=1, max_length=max_length, device=device)


class CrossEncoderReranker:
    """Rerank first-stage candidates with a cross-encoder, in a cascade.

    Args:
        model: A ``CrossEncoder`` (one output) or the path of one.
        top_k: Rerank only the first ``top_k`` candidates of each mention; the rest follow
            in first-stage order.
        skip_margin: Do not rerank a mention whose first-stage best score is ahead of the
            second by at least this much (``None``: always rerank).
        use_context: Whether the model was trained with the mention's context (then pass
            ``contexts`` to :meth:`rerank`; a mention without one is scored alone).
        batch_size: Pairs per cross-encoder batch.
        first_stage_weight: w in ``(1 - w) * rerank + w * first_stage`` (0: the reranker's
            score alone; 1: the first stage's order, the reranker unused).

    Scores: a reranked candidate's ``score`` is the cross-encoder's probability
    (``stage_scores["rerank"]``), interpolated with its first-stage score when
    ``first_stage_weight`` > 0; candidates past ``top_k`` get the lowest reranked score
    of their mention, so the order stays the final order; a skipped mention keeps its
    first-stage scores (its candidates have no ``"rerank"`` stage score).

    Example:
        ::

            from sapbert_st.linking import CrossEncoderReranker, Linker

            linker = Linker(index, reranker=CrossEncoderReranker("ncbi-reranker"))
            linker.link(["stage ii colorectal cancer"], k=1)
    """

    def __init__(self, model: CrossEncoder | str | os.PathLike, *, top_k: int = 20,
                 skip_margin: float | None = None, use_context: bool = False,
                 batch_size: int = 64, first_stage_weight: float = 0.0) -> None:
        if isinstance(model, (str, os.PathLike)):
            from sentence_transformers.cross_encoder import CrossEncoder

            model = CrossEncoder(str(model))
        if not hasattr(model, "predict") or not hasattr(model, "save"):
            raise TypeError(f"model: expected a CrossEncoder or its path, got "
                            f"{type(model).__name__}")
        self.model = model
        self.top_k = check_positive_int(top_k, "top_k")
        self.skip_margin = _check_margin(skip_margin)
        if not isinstance(use_context, bool):
            raise TypeError(f"use_context: expected True or False, got {use_context!r}")
        self.use_context = use_context
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.first_stage_weight = _check_weight(first_stage_weight)
        #: How many mentions the last :meth:`rerank` call reranked and skipped.
        self.last_counts = {"reranked": 0, "skipped": 0, "pairs": 0}

    def __repr__(self) -> str:
        return (f"CrossEncoderReranker(top_k={self.top_k}, skip_margin={self.skip_margin}, "
                f"use_context={self.use_context}, "
                f"first_stage_weight={self.first_stage_weight})")

    def skips(self, row: Sequence[Any]) -> bool:
        """Whether the cascade leaves this candidate list as the first stage ranked it."""
        if len(row) < 2:
            return True
        if self.skip_margin is None:
            return False
        return row[0].score - row[1].score >= self.skip_margin

    def score_pairs(self, pairs: Sequence[tuple[str, str]],
                    show_progress_bar: bool | None = None) -> list[float]:
        """The cross-encoder's probability for each (mention text, name) pair."""
        if not pairs:
            return []
        scores = self.model.predict(list(pairs), batch_size=self.batch_size,
                                    show_progress_bar=show_progress_bar, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(pairs))]

    def rerank(self, mentions: Sequence[str], candidates: Sequence[Sequence[Any]],
               contexts: Sequence[str | None] | None = None,
               show_progress_bar: bool | None = None) -> list[list[Any]]:
        """Reorder each mention's candidates (best first) by the cross-encoder's score.

        Args:
            mentions: The mention strings.
            candidates: Per mention, the first-stage candidates
                (:class:`~sapbert_st.linking.pipeline.LinkCandidate`), best first.
            contexts: Per mention, its context (or ``None``); used when ``use_context``.
        """
        if len(candidates) != len(mentions):
            raise ValueError(f"candidates: {len(candidates)} lists for {len(mentions)} "
                             f"mentions; expected one per mention")
        if contexts is not None and len(contexts) != len(mentions):
            raise ValueError(f"contexts: {len(contexts)} contexts for {len(mentions)} "
                             f"mentions; expected one per mention (or None)")
        pairs: list[tuple[str, str]] = []
        spans: list[tuple[int, int, int]] = []  # (mention, first pair, pair count)
        for i, (mention, row) in enumerate(zip(mentions, candidates)):
            if self.skips(row):
                continue
            context = contexts[i] if (contexts is not None and self.use_context) else None
            text = mention_text(mention, context)
            window = row[:self.top_k]
            spans.append((i, len(pairs), len(window)))
            pairs.extend((text, c.name) for c in window)
        scores = self.score_pairs(pairs, show_progress_bar=show_progress_bar)
        results = [list(row) for row in candidates]
        w = self.first_stage_weight
        for i, start, count in spans:
            window, tail = results[i][:count], results[i][count:]
            for candidate, score in zip(window, scores[start:start + count]):
                candidate.stage_scores["rerank"] = score
                candidate.score = (1 - w) * score + w * candidate.score if w else score
            order = sorted(range(count), key=lambda j: -window[j].score)  # stable: ties keep
            window = [window[j] for j in order]                           # first-stage order
            floor = window[-1].score
            for candidate in tail:
                candidate.score = floor
            results[i] = window + tail
        self.last_counts = {"reranked": len(spans), "skipped": len(mentions) - len(spans),
                            "pairs": len(pairs)}
        return results

    # ------------------------------------------------------------------ save / load

    def config(self) -> dict[str, Any]:
        return {"format": RERANKER_FORMAT, "top_k": self.top_k,
                "skip_margin": self.skip_margin, "use_context": self.use_context,
                "batch_size": self.batch_size, "first_stage_weight": self.first_stage_weight}

    def save(self, folder: str | os.PathLike) -> None:
        """Write the cross-encoder (loadable by plain ``CrossEncoder(folder)``) and
        ``reranker_config.json`` (the cascade settings)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder))
        (folder / RERANKER_CONFIG).write_text(json.dumps(self.config(), indent=2) + "\n",
                                              encoding="utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike, *, device: str | None = None,
             **overrides: Any) -> CrossEncoderReranker:
        """Load a folder written by :meth:`save` (or any CrossEncoder folder, with the
        default cascade); keyword arguments override the saved settings."""
        from sentence_transformers.cross_encoder import CrossEncoder

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such reranker folder; expected a folder "
                                    f"written by CrossEncoderReranker.save or CrossEncoder.save")
        config: dict[str, Any] = {}
        path = folder / RERANKER_CONFIG
        if path.is_file():
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: not UTF-8 JSON ({exc}); expected the file "
                                 f"CrossEncoderReranker.save writes") from exc
            if not isinstance(config, dict) or config.get("format") != RERANKER_FORMAT:
                raise ValueError(f"{path}: expected a JSON object with format "
                                 f"{RERANKER_FORMAT}, got {config!r:.200}")
        settings = {key: config[key] for key in ("top_k", "skip_margin", "use_context",
                                                 "batch_size", "first_stage_weight")
                    if key in config}
        settings.update(overrides)
        return cls(CrossEncoder(str(folder), device=device), **settings)


def _check_margin(margin: float | None) -> float | None:
    if margin is None:
        return None
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(
            margin) or margin < 0:
        raise ValueError(f"skip_margin: expected a number >= 0 or None, got {margin!r}")
    return float(margin)


def _check_weight(weight: float) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            0 <= weight <= 1):
        raise ValueError(f"first_stage_weight: expected a number in [0, 1], got {weight!r}")
    return float(weight)
