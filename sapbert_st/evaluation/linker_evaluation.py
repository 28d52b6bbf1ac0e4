"""LinkerEvaluator: any linking pipeline scored by the bi-encoder's protocol, plus strict
concept-level accuracy and dictionary coverage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sapbert_st.evaluation.entity_linking import EntityLinkingEvaluator
from sapbert_st.linking.index import DictionaryIndex
from sapbert_st.linking.pipeline import Linker

if TYPE_CHECKING:
    import pyarrow as pa
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: The stages of a :class:`Linker` the evaluator can score.
STAGES = ("link", "candidates")


class _CandidateTable:
    """What :meth:`EntityLinkingEvaluator.compute_metrics` uses of a DictionaryIndex
    (``encode_mentions``, ``search_rows``, ``id_list``, ``names``), answered from a
    candidate function's lists: each distinct (concept id, name) it returns is one row.

    With ``with_contexts`` the "mentions" are ``(part, context)`` occurrences and the
    function is called as ``candidates(parts, k, contexts)``."""

    model = None
    similarity = None

    def __init__(self, candidates: Callable[..., list[list[Any]]],
                 with_contexts: bool = False) -> None:
        self.candidates = candidates
        self.with_contexts = with_contexts
        self.ids: list[str] = []
        self.name_list: list[str] = []
        self.row_of: dict[tuple[str, str], int] = {}
        self.parts: list[str] = []
        self.rows: np.ndarray | None = None
        self.scores: np.ndarray | None = None

    def encode_mentions(self, mentions: Sequence[str], **_: Any) -> list[str]:
        return list(mentions)

    def search_rows(self, parts: list, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.with_contexts:
            results = self.candidates([part for part, _ in parts], k,
                                      [context for _, context in parts])
        else:
            results = self.candidates(parts, k)
        if len(results) != len(parts):
            raise ValueError(f"candidates: returned {len(results)} lists for {len(parts)} "
                             f"mentions; expected one list per mention")
        rows = np.full((len(parts), k), -1, dtype=np.int64)
        scores = np.full((len(parts), k), -np.inf)
        for i, row in enumerate(results):
            for j, candidate in enumerate(list(row)[:k]):
                cui, name, score = _fields(candidate, i, j)
                key = (cui, name)
                if key not in self.row_of:
                    self.row_of[key] = len(self.ids)
                    self.ids.append(cui)
                    self.name_list.append(name)
                rows[i, j], scores[i, j] = self.row_of[key], score
        self.parts, self.rows, self.scores = parts, rows, scores
        return rows, scores

    def id_list(self) -> list[str]:
        return self.ids

    @property
    def names(self) -> pa.Array:
        import pyarrow as pa

        return pa.array(self.name_list, type=pa.large_string())


def _fields(candidate: Any, i: int, j: int) -> tuple[str, str, float]:
    """(concept id, name, score) of a LinkCandidate or a ``{"cui", "name", "score"}`` dict."""
    if isinstance(candidate, dict):
        values = (candidate.get("cui"), candidate.get("name"), candidate.get("score"))
    else:
        values = (getattr(candidate, "concept_id", None), getattr(candidate, "name", None),
                  getattr(candidate, "score", None))
    cui, name, score = values
    if not isinstance(cui, str) or not isinstance(name, str) or isinstance(score, bool) or (
            not isinstance(score, (int, float, np.floating))):
        raise TypeError(f"candidates[{i}][{j}]: expected a LinkCandidate or a dict with 'cui' "
                        f"(str), 'name' (str) and 'score' (number), got {candidate!r:.200}")
    return cui, name, float(score)


def _as_list(values) -> list[str]:
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


class LinkerEvaluator(EntityLinkingEvaluator):
    """acc@k of a linking pipeline by exactly the bi-encoder's protocol, with strict accuracy
    and dictionary coverage beside it.

    The candidates of a :class:`~sapbert_st.linking.Linker` (or of any function
    ``candidates(mentions, k)`` returning, per mention, ranked ``LinkCandidate`` objects or
    ``{"cui", "name", "score"}`` dicts) are scored by
    :meth:`EntityLinkingEvaluator.compute_metrics` itself: composite mentions split on
    ``|``/``+`` and each part linked on its own, a candidate correct when its ``|``-split
    id shares an id with the query's gold set, a query correct at k when every part is.
    Each candidate is one "row": the rows of a bi-encoder (:meth:`from_index` ranks the
    index's dictionary rows and reproduces :class:`EntityLinkingEvaluator`'s acc@k
    exactly), the distinct concepts of a Linker (acc@1 equals the rows protocol's; acc@k
    for k > 1 can only be higher, since a concept's synonyms no longer take several places).

    Two more metrics, next to the published protocol:

    * ``strict_acc@1``: over the queries that are not composite (one mention part, one
      gold id), the share whose top candidate is the gold concept and whose top name is
      not ambiguous: a name the dictionary lists under two concepts with no id in common
      (e.g. "diabetes" under C2 and C9) gets no credit, even when dictionary order puts
      the gold one first, as the published protocol's tie rule does. A ``|``-joined id
      counts as one concept with several identifiers (MEDIC joins a disease's MeSH and
      OMIM ids so), and ``"C1"`` and ``"C1|C4"`` as the same concept.
      ``strict_queries`` (an attribute) is how many queries it counts.
    * ``coverage``: the share of queries with at least one gold id in the dictionary at all
      (``|``-split ids): the ceiling of every acc@k under this protocol.

    **Contexts**: by default each distinct mention string is linked once (as the published
    protocol does; a deterministic linker gives every occurrence the same answer). With
    ``contexts`` (one per query: the sentence around it, or None) each (part, context)
    occurrence is linked on its own and a reranker trained with context
    (``use_context=True``) reads it: ``Linker.link(parts, k, contexts=...)``, or
    ``candidates(parts, k, contexts)`` for a function.

    Args:
        mentions: Query mentions, or a Dataset with ``mention`` and ``gold``/``cuis``.
        gold: One gold id string per mention (not with a Dataset).
        linker: The :class:`Linker` to score (its dictionary gives the coverage).
        stage: ``"link"`` (:meth:`Linker.link`, the whole pipeline, NIL threshold included)
            or ``"candidates"`` (:meth:`Linker.candidates`, the first stage only).
        candidates: Instead of ``linker``: any ``candidates(mentions, k)`` function, with
            ``dictionary_names`` / ``dictionary_cuis`` the dictionary it links to.
        contexts: Per query, its context (str) or None; e.g. ``queries["context"]`` of a
            loader called with ``with_context=True``. Composite parts share their query's.
        accuracy_at_k, name, write_csv, save_predictions, batch_size, show_progress_bar:
            As in :class:`EntityLinkingEvaluator`.

    The ``model`` an ST trainer passes to the evaluator is not used: the linker (or the
    function) encodes with its own model.

    Example:
        ::

            from sapbert_st.evaluation import LinkerEvaluator

            evaluator = LinkerEvaluator(test_queries, linker=linker, name="ncbi-test",
                                        accuracy_at_k=(1, 5, 20))
            evaluator.compute_metrics()
            # {'acc@1': ..., 'acc@5': ..., 'acc@20': ..., 'strict_acc@1': ..., 'coverage': ...}
    """

    def __init__(
        self,
        mentions,
        gold: Sequence[str] | None = None,
        linker: Linker | None = None,
        *,
        stage: str = "link",
        candidates: Callable[..., list[list[Any]]] | None = None,
        contexts: Sequence[str | None] | None = None,
        dictionary_names=None,
        dictionary_cuis: Sequence[str] | None = None,
        accuracy_at_k: Sequence[int] = (1, 5),
        name: str = "",
        write_csv: bool = True,
        save_predictions: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
        if (linker is None) == (candidates is None):
            raise ValueError("linker: pass either linker= (a Linker) or candidates= (a "
                             "function of (mentions, k)), exactly one of them")
        common = {"accuracy_at_k": accuracy_at_k, "name": name, "write_csv": write_csv,
                  "save_predictions": save_predictions, "batch_size": batch_size,
                  "show_progress_bar": show_progress_bar}
        if linker is not None:
            if not isinstance(linker, Linker):
                raise TypeError(f"linker: expected a Linker, got {type(linker).__name__}")
            if dictionary_names is not None or dictionary_cuis is not None:
                raise ValueError("dictionary_names: not with linker= (the linker's index "
                                 "holds the dictionary)")
            super().__init__(mentions, gold, index=linker.index, **common)
            candidates = self._linker_function(linker, stage)
        else:
            if not callable(candidates):
                raise TypeError(f"candidates: expected a function (mentions, k) -> lists of "
                                f"candidates, got {type(candidates).__name__}")
            super().__init__(mentions, gold, dictionary_names, dictionary_cuis, **common)
        self.linker = linker
        self.stage = stage
        self.candidates = candidates
        self.contexts = _check_contexts(contexts, len(self.mentions))
        if self.contexts is not None:  # one key per occurrence: (part, its query's context)
            self._parts = [[(part, context) for part in parts]
                           for parts, context in zip(self._parts, self.contexts)]
        self.strict_queries = sum(
            1 for parts, gold_set in zip(self._parts, self._gold_sets)
            if len(parts) == 1 and len(gold_set) == 1)
        self._ambiguous: set[str] | None = None

    @classmethod
    def from_index(cls, mentions, gold: Sequence[str] | None = None, *,
                   index: DictionaryIndex, **kwargs: Any) -> LinkerEvaluator:
        """The bi-encoder's own rows protocol (``index.search(distinct=False)``), with the
        strict accuracy and coverage added: acc@k equal :class:`EntityLinkingEvaluator`'s
        with ``index=index``."""
        if not isinstance(index, DictionaryIndex):
            raise TypeError(f"index: expected a DictionaryIndex, got {type(index).__name__}")

        def rows(parts: list[str], k: int) -> list[list[dict[str, Any]]]:
            return index.search(parts, k, distinct=False, show_progress_bar=False)

        return cls(mentions, gold, candidates=rows, dictionary_names=index.names,
                   dictionary_cuis=index.ids, **kwargs)

    def _linker_function(self, linker: Linker, stage: str):
        def link(parts: list[str], k: int, contexts: list[str | None] | None = None):
            if stage == "candidates":  # the first stage does not read contexts
                return linker.candidates(parts, k, batch_size=self.batch_size,
                                         show_progress_bar=self.show_progress_bar)
            return linker.link(parts, k, contexts=contexts, batch_size=self.batch_size,
                               show_progress_bar=self.show_progress_bar)
        return link

    def compute_metrics(self, model: SentenceTransformer | None = None) -> dict[str, float]:
        """acc@k by :meth:`EntityLinkingEvaluator.compute_metrics` over the candidates, then
        ``strict_acc@1`` and ``coverage`` (``model`` is not used)."""
        table = _CandidateTable(self.candidates, with_contexts=self.contexts is not None)
        index, self.index = self.index, table
        try:
            metrics = super().compute_metrics(None)
        finally:
            self.index = index
        if self.contexts is not None and self.predictions is not None:
            for query in self.predictions:
                for entry in query["mentions"]:
                    entry["mention"], entry["context"] = entry["mention"]
        self.similarity_used = None
        metrics["strict_acc@1"] = self._strict_accuracy(table)
        metrics["coverage"] = self._coverage()
        return metrics

    def _strict_accuracy(self, table: _CandidateTable) -> float:
        if not self.strict_queries:
            return float("nan")
        position = {part: i for i, part in enumerate(table.parts)}
        correct = 0
        for parts, gold_set in zip(self._parts, self._gold_sets):
            if len(parts) != 1 or len(gold_set) != 1:
                continue
            top = table.rows[position[parts[0]]][0] if table.rows.shape[1] else -1
            if top < 0 or not set(table.ids[top].split("|")) & gold_set:
                continue
            correct += table.name_list[top] not in self.ambiguous_names()
        return correct / self.strict_queries

    def ambiguous_names(self) -> set[str]:
        """The dictionary names listed under two concepts with no id in common (computed
        once)."""
        if self._ambiguous is None:
            ids_of: dict[str, set[str]] = {}
            for name, ids in zip(_as_list(self.dictionary_names), _as_list(self.dictionary_cuis)):
                ids_of.setdefault(name, set()).add(ids)
            self._ambiguous = set()
            for name, id_strings in ids_of.items():
                if len(id_strings) < 2:
                    continue
                id_sets = [set(value.split("|")) for value in id_strings]
                if any(not a & b for i, a in enumerate(id_sets) for b in id_sets[i + 1:]):
                    self._ambiguous.add(name)
        return self._ambiguous

    def _coverage(self) -> float:
        known = set()
        for value in _as_list(self.dictionary_cuis):
            known.update(value.split("|"))
        return float(np.mean([bool(gold_set & known) for gold_set in self._gold_sets]))

    def store_metrics_in_model_card_data(self, model, metrics, epoch: int = 0,
                                         step: int = 0) -> None:
        if model is not None:  # called stand-alone: there is no model card to update
            super().store_metrics_in_model_card_data(model, metrics, epoch, step)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "stage": self.stage,
                "contexts": self.contexts is not None,
                "linker": repr(self.linker) if self.linker is not None else None}


def _check_contexts(contexts, count: int) -> list[str | None] | None:
    """The contexts as a list (one str or None per query), or None."""
    if contexts is None:
        return None
    if isinstance(contexts, str):
        raise TypeError("contexts: expected one context per query (a list), got one string")
    contexts = _as_list(contexts)
    if len(contexts) != count:
        raise ValueError(f"contexts: {len(contexts)} contexts for {count} queries; expected "
                         f"one per query (None where there is none)")
    for i, context in enumerate(contexts):
        if context is not None and not isinstance(context, str):
            raise TypeError(f"contexts[{i}]: expected a str or None, got "
                            f"{type(context).__name__} {context!r:.100}")
    return contexts
