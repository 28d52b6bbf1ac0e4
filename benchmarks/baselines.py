"""Non-neural linking baselines scored with the exact EntityLinkingEvaluator protocol.

Two baselines that users pick instead of a trained encoder:

* :class:`ExactMatchLinker`: a mention links to the dictionary rows whose name equals it
  after normalisation (lowercase, whitespace collapsed). **Ties**: a name listed under
  several concepts matches several rows; they are ranked in dictionary order (the
  evaluator's tie rule for equal scores), so acc@1 counts the first listed row and acc@5
  the first five. A mention with no exact match has no candidate and is wrong at every k.
* :class:`TfidfCharLinker`: scispaCy's candidate generator (``scispacy/candidate_generation.py``:
  ``TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3))`` over the knowledge-base
  aliases, cosine nearest neighbours) with exact sparse cosine top-k instead of nmslib's
  approximate search: :class:`sapbert_st.linking.SparseIndex`. ``min_df=1`` (scispaCy uses 10 over millions of UMLS aliases;
  our dictionaries are 4k-150k names, where a cut at 10 drops rare but decisive n-grams).
  Ties by dictionary order.

Both expose the three methods :class:`~sapbert_st.evaluation.EntityLinkingEvaluator`
calls on a :class:`~sapbert_st.linking.DictionaryIndex` (``encode_mentions``,
``search_rows``, ``id_list``), and :func:`evaluate_with_index` runs the evaluator's own
``compute_metrics`` with such an index in place of the one it would build. The composite
splitting, the gold matching and acc@k are therefore the evaluator's code, not a copy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def normalize_name(text: str) -> str:
    """Lowercase and collapse runs of whitespace (the loaders already lowercase)."""
    return " ".join(text.lower().split())


class _IndexLike:
    """What the evaluator uses of a DictionaryIndex: ids, mention encoding, row search."""

    def __init__(self, names: Sequence[str], cuis: Sequence[str]) -> None:
        self.names_list = list(names)
        self.cuis = list(cuis)
        if len(self.names_list) != len(self.cuis):
            raise ValueError(f"names: {len(self.names_list)} names but {len(self.cuis)} cuis")

    def id_list(self) -> list[str]:
        return self.cuis

    def __len__(self) -> int:
        return len(self.names_list)


class ExactMatchLinker(_IndexLike):
    """Link a mention to the dictionary rows with the same normalised name (score 1)."""

    def __init__(self, names: Sequence[str], cuis: Sequence[str]) -> None:
        super().__init__(names, cuis)
        self.rows_of: dict[str, list[int]] = {}
        for row, name in enumerate(self.names_list):
            self.rows_of.setdefault(normalize_name(name), []).append(row)

    def encode_mentions(self, mentions: Sequence[str], **_: Any) -> list[str]:
        return [normalize_name(m) for m in mentions]

    def search_rows(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float64)
        for i, query in enumerate(queries):
            hits = self.rows_of.get(query, [])[:k]
            rows[i, :len(hits)] = hits
            scores[i, :len(hits)] = 1.0
        return rows, scores

    def ambiguous_fraction(self, mentions: Sequence[str]) -> float:
        """Share of the mentions whose exact match lists more than one concept id."""
        if not mentions:
            return 0.0
        count = 0
        for mention in mentions:
            hits = self.rows_of.get(normalize_name(mention), [])
            if len({self.cuis[r] for r in hits}) > 1:
                count += 1
        return count / len(mentions)


class TfidfCharLinker(_IndexLike):
    """Cosine of char_wb 3-gram TF-IDF vectors (scispaCy's linker), exact top-k: the
    library's :class:`~sapbert_st.linking.SparseIndex`, with the rows that share no n-gram
    with the mention (score 0, which SparseIndex leaves out) appended in dictionary order,
    so that every query gets k rows as with the dense rows (the tie rule for equal scores)."""

    def __init__(self, names: Sequence[str], cuis: Sequence[str], ngram_range=(3, 3),
                 min_df: int = 1) -> None:
        super().__init__(names, cuis)
        from sapbert_st.linking import SparseIndex

        self.index = SparseIndex.build(self.names_list, self.cuis, ngram_range=ngram_range,
                                       min_df=min_df)

    @property
    def matrix_t(self):
        """The ``(vocabulary, names)`` TF-IDF matrix."""
        return self.index.matrix.T

    def encode_mentions(self, mentions: Sequence[str], **_: Any):
        return self.index.encode_mentions(list(mentions))

    def search_rows(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = self.index.search_rows(queries, k)
        for i in np.flatnonzero((rows < 0).any(axis=1)):
            found = rows[i][rows[i] >= 0]
            listed = set(found.tolist())
            zeros = [r for r in range(len(found) + rows.shape[1]) if r not in listed]
            rows[i, len(found):] = zeros[:rows.shape[1] - len(found)]
            scores[i, len(found):] = 0.0
        return rows, scores


class PrecomputedDenseIndex(_IndexLike):
    """A DictionaryIndex over cached embeddings whose mention embeddings are also cached.

    Lets one encoding of a name set serve several benchmarks and several pooling heads
    (e.g. [CLS] and mean from one forward pass).
    """

    def __init__(self, index, mention_lookup) -> None:
        self.index = index
        self.mention_lookup = mention_lookup

    def id_list(self) -> list[str]:
        return self.index.id_list()

    def __len__(self) -> int:
        return len(self.index)

    def encode_mentions(self, mentions: Sequence[str], **_: Any) -> np.ndarray:
        return self.mention_lookup(list(mentions))

    def search_rows(self, queries: np.ndarray, k: int):
        return self.index.search_rows(queries, k)


class _Builder:
    """Stands in for ``DictionaryIndex`` in the evaluator module: ``build`` returns ours."""

    def __init__(self, index) -> None:
        self.index = index

    def build(self, model, names, cuis=None, **_: Any):
        if len(names) != len(self.index):
            raise ValueError(f"the evaluator's dictionary has {len(names)} names, the "
                             f"prebuilt index {len(self.index)}")
        return self.index


@contextlib.contextmanager
def _patched_index(index):
    from sapbert_st.evaluation import entity_linking

    original = entity_linking.DictionaryIndex
    entity_linking.DictionaryIndex = _Builder(index)
    try:
        yield
    finally:
        entity_linking.DictionaryIndex = original


def evaluate_with_index(index, mentions: Sequence[str], gold: Sequence[str],
                        names: Sequence[str], cuis: Sequence[str],
                        accuracy_at_k=(1, 5)) -> dict:
    """acc@k of ``index`` by :meth:`EntityLinkingEvaluator.compute_metrics` itself, and
    ``"ranks"``: each query's first correct rank (the evaluator's ``ranks``)."""
    from sapbert_st.evaluation import EntityLinkingEvaluator

    evaluator = EntityLinkingEvaluator(list(mentions), list(gold), list(names), list(cuis),
                                       accuracy_at_k=accuracy_at_k, show_progress_bar=False)
    with _patched_index(index):
        metrics = evaluator.compute_metrics(model=None)
    return {**metrics, "ranks": evaluator.ranks}
