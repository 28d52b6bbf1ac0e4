"""NameGroups: the dictionary rows that share one name string, for deduplicated indexes.

UMLS lists many strings under several concepts (the 14.8M English MRCONSO names are about
7.4M distinct strings). :func:`~sapbert_st.linking.encoding.encode_texts` encodes each
distinct string once, so the rows of one string have bit-identical embeddings: an
approximate index needs only one vector per string (its first row, the *representative*)
and, after the search, every row of that string gets the same score. That is exact, and it
halves the faiss index and the search work on UMLS.
"""

from __future__ import annotations

import numpy as np


class NameGroups:
    """Rows grouped by identical name, in order of first occurrence.

    Attributes:
        codes: ``(n,)`` the group of each row.
        first: ``(u,)`` the first row of each distinct name, increasing.
        members: ``(n,)`` all rows, grouped by name (rows increasing within a group).
        offsets: ``(u + 1,)`` group ``j`` is ``members[offsets[j]:offsets[j + 1]]``.
    """

    def __init__(self, names) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        array = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
        codes = pc.dictionary_encode(array).indices.to_numpy(zero_copy_only=False)
        codes = codes.astype(np.int64, copy=False)
        self.codes = codes
        self.members = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes, minlength=int(codes.max()) + 1 if len(codes) else 0)
        self.offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.first = self.members[self.offsets[:-1]]  # codes follow first occurrence
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.first)

    @property
    def has_duplicates(self) -> bool:
        return len(self.first) < len(self.members)

    def expand(self, groups: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row of each group: ``(nq, kk)`` group numbers (-1: none) and their scores
        to ``(nq, m)`` rows and scores, padded with -1 / -inf (``m``: the largest count)."""
        nq = len(groups)
        valid = groups >= 0
        counts = np.where(valid, self.sizes[np.where(valid, groups, 0)], 0)
        per_query = counts.sum(1)
        width = max(1, int(per_query.max()) if nq else 1)
        rows = np.full((nq, width), -1, dtype=np.int64)
        out_scores = np.full((nq, width), -np.inf)
        flat_groups = groups[valid]
        flat_counts = counts[valid]
        if not len(flat_groups):
            return rows, out_scores
        starts = np.repeat(self.offsets[flat_groups], flat_counts)
        within = np.arange(flat_counts.sum()) - np.repeat(np.cumsum(flat_counts) - flat_counts,
                                                          flat_counts)
        query = np.repeat(np.nonzero(valid)[0], flat_counts)
        column = np.arange(len(query)) - np.repeat(np.cumsum(per_query) - per_query,
                                                   per_query)[: len(query)]
        rows[query, column] = self.members[starts + within]
        out_scores[query, column] = np.repeat(scores[valid], flat_counts)
        return rows, out_scores
