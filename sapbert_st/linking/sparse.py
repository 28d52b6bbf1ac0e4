"""SparseIndex: character n-gram TF-IDF candidates over the names of a dictionary.

The sparse first stage of scispaCy's linker and of BioSyn: every dictionary name and every
mention becomes an L2-normalised TF-IDF vector of its character n-grams (scikit-learn's
``TfidfVectorizer``), and a mention's candidates are the names with the highest cosine
(the inner product of the unit vectors). It finds surface variants a name-only embedding
misses ("neoplasm" / "neoplasms", "abnormalities" / "abnormality") and costs no model.

**n-grams.** Default ``analyzer="char_wb", ngram_range=(3, 3)``, scispaCy's
(``scispacy/candidate_generation.py``: n-grams inside word boundaries, padded with a
space). BioSyn uses ``analyzer="char", ngram_range=(1, 2)`` (unigrams and bigrams across
word boundaries); both are accepted. ``min_df=1`` (scispaCy uses 10 over millions of UMLS
aliases; over 4k-150k-name benchmark dictionaries a cut at 10 drops rare but decisive
n-grams). Lowercased, ``sublinear_tf=False`` and smooth idf: scikit-learn's defaults,
which both references keep.

**Search** is exact (no nmslib approximation as in scispaCy): the query vectors of a
block of ``query_batch_size`` mentions are multiplied with the name matrix in chunks of
``chunk_size`` names (sparse products that touch only the names sharing an n-gram with
the query: an inverted index), and each chunk's top rows are merged. Memory beyond the
name matrix is bounded by ``query_batch_size * chunk_size`` scores, whatever the
dictionary size; nothing of size names x vocabulary is ever dense. Only names that share
at least one n-gram with the mention (score > 0) are candidates, so a result can be
shorter than ``k``. Scores are float32 cosines; ties are broken by dictionary order (the
earlier row first), as in :class:`~sapbert_st.linking.DictionaryIndex`.

**Saving** writes no pickle: the vocabulary (JSON), the idf weights and the name matrix
(``.npz`` of plain arrays, loaded with ``allow_pickle=False``), the names and ids (Arrow)
and a config with the vectorizer parameters and a blake2b hash of every file, checked on
load (:class:`SparseIndexError` names the file and what differs).

References:
    - scispaCy, ``scispacy/candidate_generation.py`` (char_wb 3-gram TF-IDF + ANN).
    - Sung et al., "Biomedical Entity Representations with Synonym Marginalization",
      ACL 2020 (BioSyn: char 1-2-gram TF-IDF fused with dense scores).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sapbert_st.checkpoint_files import file_digest
from sapbert_st.linking.checks import check_mentions, check_positive_int
from sapbert_st.linking.dictionary import dictionary_columns, strings_digest
from sapbert_st.progress import resolve_show_progress_bar

if TYPE_CHECKING:
    import pyarrow as pa
    import scipy.sparse

logger = logging.getLogger(__name__)

SPARSE_CONFIG = "sparse_config.json"
SPARSE_FORMAT = 1
_FILES = {"vocabulary": "vocabulary.json", "idf": "idf.npy", "matrix": "matrix.npz",
          "dictionary": "dictionary.arrow"}
ANALYZERS = ("char_wb", "char")


class SparseIndexError(ValueError):
    """A saved sparse index folder is damaged or its files do not belong together."""


def import_sklearn_tfidf():
    """``TfidfVectorizer``, or an ImportError with the install hint."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError as exc:
        raise ImportError('SparseIndex needs scikit-learn: pip install "sapbert-st[hybrid]"'
                          ) from exc
    return TfidfVectorizer


def _check_ngram_range(ngram_range) -> tuple[int, int]:
    if (not isinstance(ngram_range, (tuple, list)) or len(ngram_range) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in ngram_range)
            or ngram_range[0] > ngram_range[1]):
        raise ValueError(f"ngram_range: expected (min_n, max_n) with 1 <= min_n <= max_n, got "
                         f"{ngram_range!r}")
    return int(ngram_range[0]), int(ngram_range[1])


class SparseIndex:
    """Exact cosine search over character n-gram TF-IDF vectors of dictionary names.

    Args:
        names: Dictionary names (list of str), or a ``datasets.Dataset`` with ``name`` and
            ``cui`` columns. Blank names are an error.
        cuis: The concept id of each name (not with a Dataset); may be ``|``-joined.
        analyzer: ``"char_wb"`` (scispaCy's, default) or ``"char"`` (BioSyn's).
        ngram_range: n-gram lengths; default ``(3, 3)`` (scispaCy's; BioSyn: ``(1, 2)``).
        min_df: Keep n-grams found in at least this many names (scispaCy: 10 over UMLS).
        chunk_size: Names per sparse product (bounds the score memory with
            ``query_batch_size``).
        query_batch_size: Mentions per sparse product.

    Use :meth:`build` or :meth:`load` rather than this constructor.

    Example:
        ::

            from sapbert_st.linking.sparse import SparseIndex

            sparse = SparseIndex.build(["heart attack", "myocardial infarction", "diabetes"],
                                       ["D009203", "D009203", "D003920"])
            sparse.search(["heart attacks"], k=2)
            # [[{'cui': 'D009203', 'name': 'heart attack', 'score': 0.87..., 'row': 0}]]
            sparse.save("medic-sparse")
            sparse = SparseIndex.load("medic-sparse")
    """

    def __init__(self, vectorizer, matrix: scipy.sparse.csr_matrix, names: pa.Array,
                 ids: pa.Array, config: dict[str, Any], *, chunk_size: int = 131072,
                 query_batch_size: int = 64) -> None:
        self.vectorizer = vectorizer
        self.names, self.ids = names, ids
        self.config = dict(config)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.query_batch_size = check_positive_int(query_batch_size, "query_batch_size")
        if matrix.shape[0] != len(names):
            raise ValueError(f"matrix: {matrix.shape[0]} rows for {len(names)} names")
        # each chunk transposed once (vocabulary x chunk, CSR): the query products then
        # walk only the posting lists of the query's n-grams
        self._chunks = [(start, matrix[start:start + self.chunk_size].T.tocsr())
                        for start in range(0, matrix.shape[0], self.chunk_size)]
        self._ids_list: list[str] | None = None

    @classmethod
    def build(cls, names, cuis=None, *, analyzer: str = "char_wb",
              ngram_range: tuple[int, int] = (3, 3), min_df: int = 1,
              chunk_size: int = 131072, query_batch_size: int = 64) -> SparseIndex:
        """Fit the vectorizer on the dictionary names and vectorize them."""
        name_array, id_array = dictionary_columns(names, cuis)
        if len(name_array) == 0:
            raise ValueError("names: the dictionary is empty; expected at least one name")
        if analyzer not in ANALYZERS:
            raise ValueError(f"analyzer: expected one of {ANALYZERS}, got {analyzer!r}")
        ngram_range = _check_ngram_range(ngram_range)
        min_df = check_positive_int(min_df, "min_df")
        tfidf = import_sklearn_tfidf()
        vectorizer = tfidf(analyzer=analyzer, ngram_range=ngram_range, min_df=min_df,
                           dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(_iter_strings(name_array)).tocsr()
        except ValueError as exc:  # e.g. min_df above every n-gram's count
            raise ValueError(f"min_df={min_df}: no n-gram of the {len(name_array)} names is "
                             f"kept ({exc}); lower min_df") from exc
        matrix.sort_indices()
        config = {"analyzer": analyzer, "ngram_range": list(ngram_range), "min_df": min_df,
                  "size": len(name_array), "vocabulary_size": len(vectorizer.vocabulary_)}
        return cls(vectorizer, matrix, name_array, id_array, config, chunk_size=chunk_size,
                   query_batch_size=query_batch_size)

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (f"SparseIndex(names={len(self)}, analyzer={self.config['analyzer']!r}, "
                f"ngram_range={tuple(self.config['ngram_range'])}, "
                f"vocabulary={self.config['vocabulary_size']})")

    @property
    def matrix(self) -> scipy.sparse.csr_matrix:
        """The ``(names, vocabulary)`` TF-IDF matrix (rebuilt from the stored chunks)."""
        import scipy.sparse as sp

        return sp.hstack([chunk for _, chunk in self._chunks], format="csc").T.tocsr()

    @property
    def nnz(self) -> int:
        """Stored non-zero TF-IDF weights (n-grams per name, summed over the names)."""
        return sum(chunk.nnz for _, chunk in self._chunks)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored matrix (the index's memory beyond names, ids and vocabulary)."""
        return sum(chunk.data.nbytes + chunk.indices.nbytes + chunk.indptr.nbytes
                   for _, chunk in self._chunks)

    def id_list(self) -> list[str]:
        """The concept id of every row, as a Python list (computed once, then cached)."""
        if self._ids_list is None:
            self._ids_list = self.ids.to_pylist()
        return self._ids_list

    # ------------------------------------------------------------------ search

    def encode_mentions(self, mentions: Sequence[str], **_: Any) -> scipy.sparse.csr_matrix:
        """TF-IDF vectors of the mentions (CSR, one unit-norm row per mention; a mention
        with no known n-gram gives a zero row)."""
        return self.vectorizer.transform(check_mentions(mentions)).tocsr()

    def search_rows(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows per query vector: ``(rows, scores)``, both ``(nq, min(k, n))``;
        rows are -1 (score 0) where fewer than k names share an n-gram with the query."""
        import scipy.sparse as sp

        k = min(check_positive_int(k, "k"), len(self))
        queries = sp.csr_matrix(queries, dtype=np.float32)
        vocabulary = self.config["vocabulary_size"]
        if queries.ndim != 2 or queries.shape[1] != vocabulary:
            raise ValueError(f"queries: expected shape (n, {vocabulary}), got {queries.shape}")
        nq = queries.shape[0]
        rows = np.full((nq, k), -1, dtype=np.int64)
        scores = np.zeros((nq, k), dtype=np.float64)
        for start in range(0, nq, self.query_batch_size):
            block = queries[start:start + self.query_batch_size]
            best: list[tuple[np.ndarray, np.ndarray]] = [
                (np.empty(0, np.int64), np.empty(0, np.float32))] * block.shape[0]
            for offset, chunk in self._chunks:
                product = (block @ chunk).tocsr()
                indptr, indices, data = product.indptr, product.indices, product.data
                for j in range(block.shape[0]):
                    lo, hi = indptr[j], indptr[j + 1]
                    if lo == hi:
                        continue
                    found = _top(indices[lo:hi].astype(np.int64) + offset, data[lo:hi], k)
                    if len(best[j][0]):
                        found = _top(np.concatenate([best[j][0], found[0]]),
                                     np.concatenate([best[j][1], found[1]]), k)
                    best[j] = found
            for j, (top_rows, top_scores) in enumerate(best):
                rows[start + j, :len(top_rows)] = top_rows
                scores[start + j, :len(top_rows)] = top_scores
        return rows, scores

    def search(self, mentions: Sequence[str], k: int = 5, *, distinct: bool = True,
               show_progress_bar: bool | None = None, **_: Any) -> list[list[dict[str, Any]]]:
        """Link each mention to its top ``k`` concepts (``distinct=True``, each with its best
        name) or dictionary rows, in :meth:`DictionaryIndex.search`'s format: per mention,
        ``{"cui", "name", "score", "row"}`` dicts, best first (only names with score > 0)."""
        from tqdm.auto import tqdm

        k = check_positive_int(k, "k")
        queries = self.encode_mentions(mentions)
        ids = self.id_list()
        results: list[list[dict[str, Any]]] = []
        step = 1024
        starts = range(0, queries.shape[0], step)
        show = resolve_show_progress_bar(show_progress_bar, logger)
        for start in tqdm(starts, desc="Sparse search", unit="batch",
                          disable=not show or len(starts) < 2):
            block = queries[start:start + step]
            picked = self._distinct(block, k, ids) if distinct else [
                [(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0]
                for rr, ss in zip(*self.search_rows(block, k))]
            used = [r for hits in picked for r, _ in hits]
            names = self.names.take(np.asarray(used, dtype=np.int64)).to_pylist() if used else []
            position = 0
            for hits in picked:
                row_hits = []
                for row, score in hits:
                    row_hits.append({"cui": ids[row], "name": names[position], "score": score,
                                     "row": row})
                    position += 1
                results.append(row_hits)
        return results

    def _distinct(self, block, k: int, ids: list[str]) -> list[list[tuple[int, float]]]:
        """Top ``k`` distinct ids per query, deepening the row search where needed."""
        out: list[list[tuple[int, float]]] = [[] for _ in range(block.shape[0])]
        todo = np.arange(block.shape[0])
        kk = min(len(self), 4 * k)
        while len(todo):
            rows, scores = self.search_rows(block[todo], kk)
            unfinished = []
            for local, q in enumerate(todo):
                seen: set[str] = set()
                hits = []
                for row, score in zip(rows[local], scores[local]):
                    if row < 0:
                        break
                    if ids[row] in seen:
                        continue
                    seen.add(ids[row])
                    hits.append((int(row), float(score)))
                    if len(hits) == k:
                        break
                out[q] = hits
                if len(hits) < k and kk < len(self) and rows[local, -1] >= 0:
                    unfinished.append(q)
            todo = np.asarray(unfinished, dtype=np.int64)
            kk = min(len(self), kk * 4)
        return out

    # ------------------------------------------------------------------ save / load

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``vocabulary.json``, ``idf.npy``, ``matrix.npz`` (CSR arrays),
        ``dictionary.arrow`` and, last, ``sparse_config.json`` with their hashes."""
        import pyarrow as pa
        from pyarrow import feather

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocabulary = {term: int(column) for term, column in self.vectorizer.vocabulary_.items()}
        (folder / _FILES["vocabulary"]).write_text(
            json.dumps(vocabulary, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        np.save(folder / _FILES["idf"], np.asarray(self.vectorizer.idf_, dtype=np.float64),
                allow_pickle=False)
        matrix = self.matrix
        matrix.sort_indices()
        with open(folder / _FILES["matrix"], "wb") as handle:
            np.savez(handle, indptr=matrix.indptr.astype(np.int64),
                     indices=matrix.indices.astype(np.int32), data=matrix.data,
                     shape=np.asarray(matrix.shape, dtype=np.int64))
        feather.write_feather(pa.table({"name": self.names, "cui": self.ids}),
                              str(folder / _FILES["dictionary"]), compression="uncompressed")
        files = {key: _digest(folder / name) for key, name in _FILES.items()}
        meta = {"format": SPARSE_FORMAT, "config": self.config, "files": files,
                "names_digest": strings_digest(self.names), "ids_digest": strings_digest(self.ids)}
        temporary = folder / (SPARSE_CONFIG + ".tmp")
        temporary.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, folder / SPARSE_CONFIG)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, verify: bool = True, chunk_size: int = 131072,
             query_batch_size: int = 64) -> SparseIndex:
        """Load a folder written by :meth:`save`; ``verify`` hashes every file against the
        config first (:class:`SparseIndexError` on a mismatch)."""
        import scipy.sparse as sp
        from pyarrow import feather

        folder = Path(folder)
        config_path = folder / SPARSE_CONFIG
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder}: no {SPARSE_CONFIG}; expected a folder written "
                                    f"by SparseIndex.save")
        meta = _read_meta(config_path)
        for key, name in _FILES.items():
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; {config_path} lists it")
            if verify and _digest(path) != meta["files"][key]:
                raise SparseIndexError(f"{path}: content hash differs from the one in "
                                       f"{config_path}; the file is damaged or from another "
                                       f"build")
        config = meta["config"]
        vocabulary = json.loads((folder / _FILES["vocabulary"]).read_text(encoding="utf-8"))
        idf = np.load(folder / _FILES["idf"], allow_pickle=False)
        with np.load(folder / _FILES["matrix"], allow_pickle=False) as arrays:
            shape = tuple(int(v) for v in arrays["shape"])
            matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                   shape=shape)
        table = feather.read_table(str(folder / _FILES["dictionary"]))
        if table.column_names != ["name", "cui"]:
            raise SparseIndexError(f"{folder / _FILES['dictionary']}: expected columns "
                                   f"['name', 'cui'], got {table.column_names}")
        names, ids = dictionary_columns(table["name"], table["cui"], check_blank=False)
        n, vocabulary_size = config["size"], config["vocabulary_size"]
        for what, found, wanted in (
                (_FILES["vocabulary"] + " entries", len(vocabulary), vocabulary_size),
                (_FILES["idf"] + " length", len(idf), vocabulary_size),
                (_FILES["matrix"] + " shape", shape, (n, vocabulary_size)),
                (_FILES["dictionary"] + " rows", len(names), n)):
            if found != wanted:
                raise SparseIndexError(f"{folder}: {what} is {found}, but {SPARSE_CONFIG} "
                                       f"says {wanted}; the files are from different builds")
        if verify and (strings_digest(names) != meta["names_digest"]
                       or strings_digest(ids) != meta["ids_digest"]):
            raise SparseIndexError(f"{folder / _FILES['dictionary']}: names or ids differ "
                                   f"from those the index was built with")
        tfidf = import_sklearn_tfidf()
        vectorizer = tfidf(analyzer=config["analyzer"], ngram_range=tuple(config["ngram_range"]),
                           min_df=config["min_df"], dtype=np.float32, vocabulary=vocabulary)
        vectorizer.idf_ = idf
        return cls(vectorizer, matrix, names, ids, config, chunk_size=chunk_size,
                   query_batch_size=query_batch_size)


def _top(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(rows, scores)`` by (-score, row): ties by dictionary order."""
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order], scores[order]


def _iter_strings(array):
    for start in range(0, len(array), 65536):
        yield from array.slice(start, 65536).to_pylist()


def _digest(path: Path) -> str:
    return file_digest(path, hashlib.blake2b(digest_size=16))


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SparseIndexError(f"{path}: not UTF-8 JSON ({exc}); expected the file "
                               f"SparseIndex.save writes") from exc
    if not isinstance(meta, dict) or meta.get("format") != SPARSE_FORMAT:
        raise SparseIndexError(f"{path}: expected a JSON object with format {SPARSE_FORMAT}, "
                               f"got {meta!r:.200}")
    config, files = meta.get("config"), meta.get("files")
    if not isinstance(config, dict) or not isinstance(files, dict) or set(files) != set(_FILES):
        raise SparseIndexError(f"{path}: expected 'config' and 'files' with keys "
                               f"{sorted(_FILES)}, got {meta!r:.200}")
    for key, check in (("analyzer", lambda v: v in ANALYZERS),
                       ("ngram_range", lambda v: isinstance(v, list) and len(v) == 2),
                       ("min_df", lambda v: isinstance(v, int) and v >= 1),
                       ("size", lambda v: isinstance(v, int) and v >= 1),
                       ("vocabulary_size", lambda v: isinstance(v, int) and v >= 1)):
        if not check(config.get(key)):
            raise SparseIndexError(f"{path}: config[{key!r}] is {config.get(key)!r}; expected "
                                   f"the value SparseIndex.build writes")
    return meta
