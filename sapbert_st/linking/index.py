"""DictionaryIndex: encode a dictionary of concept names once, then link mentions to it.

SapBERT links a mention by nearest-neighbour search over the embeddings of every name in
a dictionary (UMLS: 4M concepts, 7.4M-14.8M names). The reference code embeds queries one
at a time, pads every name to 25 tokens and sorts the full score matrix. This index
streams the dictionary through ``model.encode`` in chunks (:mod:`.encoding`), stores the
embeddings as float32 or float16 (in RAM or as an on-disk ``.npy`` memmap; checked by
:mod:`.embeddings`), searches them exactly or with faiss (:mod:`.approximate`) and saves
them as one verified folder (:mod:`.index_folder`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sapbert_st.linking import approximate
from sapbert_st.linking.approximate import INDEX_TYPES, import_faiss
from sapbert_st.linking.checks import check_bool, check_int, check_mentions, check_positive_int
from sapbert_st.linking.dictionary import dictionary_columns
from sapbert_st.linking.embeddings import (
    DTYPES,
    SIMILARITIES,
    check_embeddings_array,
    resolve_similarity,
    scan_embeddings,
)
from sapbert_st.linking.encoding import (
    COMPUTE_DTYPES,
    PROBE_TEXTS,
    IndexMismatchError,
    check_compute_dtype,
    check_fingerprint,
    check_model,
    default_encode_batch_size,
    embedding_dimension,
    encode_texts,
    model_fingerprint,
)
from sapbert_st.linking.index_folder import (
    CONFIG_NAME,
    DICTIONARY_NAME,
    EMBEDDINGS_NAME,
    FAISS_NAME,
    FORMAT_VERSION,
    IndexFolderError,
    read_index_folder,
    write_index_folder,
)
from sapbert_st.linking.name_groups import NameGroups
from sapbert_st.progress import resolve_show_progress_bar

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = [  # the names importable from here before the split stay importable
    "COMPUTE_DTYPES", "CONFIG_NAME", "DICTIONARY_NAME", "DTYPES", "EMBEDDINGS_NAME",
    "FAISS_NAME", "FORMAT_VERSION", "INDEX_TYPES", "PROBE_TEXTS", "SIMILARITIES",
    "DictionaryIndex", "IndexFolderError", "IndexMismatchError", "check_compute_dtype",
    "check_fingerprint", "check_positive_int", "default_encode_batch_size",
    "dictionary_columns", "encode_texts", "import_faiss", "model_fingerprint",
]

#: Unit roundoff of float32; faiss accumulates inner products in float32.
_U32 = 2.0 ** -24

#: Keyword arguments of :meth:`DictionaryIndex.from_embeddings` that tune faiss.
_FAISS_OPTIONS = ("nlist", "pq_m", "pq_nbits", "hnsw_m", "train_size", "nprobe", "ef_search",
                  "rerank", "rerank_factor", "refine_code", "refine_factor", "dedup",
                  "chunk_size", "seed")


def _check_options(index_type, n: int, dim: int, *, nlist=None, pq_m=None, pq_nbits=None,
                   hnsw_m=32, train_size=131072, nprobe=32, ef_search=128, rerank=True,
                   rerank_factor=10, refine_code="SQ8", refine_factor=16, dedup=False,
                   chunk_size=262144, seed=0) -> str | None:
    """Check every index option before any work: the faiss factory string, or None for flat.

    ``n`` counts the vectors faiss will hold (distinct names when ``dedup``); ``index_type``
    must already be resolved from ``"auto"``.
    """
    approximate.check_index_type(index_type)
    approximate.check_refine_code(refine_code)
    check_positive_int(refine_factor, "refine_factor")
    check_bool(dedup, "dedup")
    check_positive_int(nprobe, "nprobe")
    check_positive_int(ef_search, "ef_search")
    check_positive_int(rerank_factor, "rerank_factor")
    check_positive_int(chunk_size, "chunk_size")
    check_bool(rerank, "rerank")
    check_int(seed, "seed", 0)
    if index_type == "flat":
        for argument, value, default in (("nlist", nlist, None), ("pq_m", pq_m, None),
                                         ("pq_nbits", pq_nbits, None)):
            if value is not default:
                check_positive_int(value, argument)
        check_int(hnsw_m, "hnsw_m", 2)
        check_positive_int(train_size, "train_size")
        return None
    return approximate.factory_string(index_type, n, dim, nlist=nlist, pq_m=pq_m,
                                      pq_nbits=pq_nbits, hnsw_m=hnsw_m, train_size=train_size,
                                      refine_code=refine_code)


def _resolve_index_type(index_type, names, dedup: bool | None) -> tuple[str, NameGroups | None]:
    """``"auto"`` -> ``"flat"`` or ``"ivf_pq_refine"`` by the number of distinct names; the
    name groups when they are needed (``"auto"``, or ``dedup`` of an approximate type;
    ``dedup=None``: approximate types deduplicate)."""
    if index_type == "flat" or (index_type != "auto" and dedup is False):
        return index_type, None
    groups = NameGroups(names)
    if index_type == "auto":
        index_type = approximate.auto_index_type(len(groups))
        logger.info("index_type='auto': %r for %d distinct names", index_type, len(groups))
    return index_type, groups


class DictionaryIndex:
    """Nearest-neighbour search over the embeddings of a dictionary of concept names.

    Scores are the **inner product** of the embeddings (``similarity="dot"``, the raw [CLS]
    embeddings as in the reference code, ``Model_Wrapper.get_score_matrix(..., cosine=False)``
    in cambridgeltl/sapbert) or their cosine (``similarity="cosine"`` L2-normalizes names
    and mentions first). :meth:`build` defaults to the model's own
    ``similarity_fn_name`` (:func:`sapbert_st.load_sapbert` sets ``"cosine"`` for models
    built from mean-pooling bases such as all-MiniLM-L6-v2, ``"dot"`` for the published
    SapBERT checkpoints); the index saves it and searches with it ever after.

    Search is exact by default (``index_type="flat"``: faiss brute force, streamed in
    blocks over float16 or memory-mapped storage). For millions of names, approximate
    faiss indexes give candidates that are then re-scored exactly from the stored
    embeddings (``rerank``):

    ============  ===========================  ========================================
    index_type    faiss factory                memory per name (d = 768)
    ============  ===========================  ========================================
    flat          none (exact, ``faiss.knn``)  4 d (float32) or 2 d (float16) bytes
    hnsw          ``HNSW{hnsw_m}``             4 d + ~8 hnsw_m bytes, plus storage
    ivf_pq        ``IVF{nlist},PQ{pq_m}``      pq_m bytes, plus storage (may be on disk)
    ivf_sq8       ``IVF{nlist},SQ8``           d bytes, plus storage
    ivf_fp16      ``IVF{nlist},SQfp16``        2 d bytes, plus storage
    ivf_pq_refine ``IVF{nlist},PQ{pq_m},``     pq_m + d bytes (``refine_code="SQ8"``),
                  ``Refine(SQ8)``              plus storage (may be on disk)
    auto          ``flat`` up to 200,000 distinct names, else ``ivf_pq_refine``
    ============  ===========================  ========================================

    ``ivf_pq_refine`` scans ``nprobe`` lists with the PQ codes, re-scores the best
    ``refine_factor * rerank_factor * k`` of them in RAM from the scalar-quantized vectors
    (``refine_code``: ``SQ4``/``SQ6``/``SQ8``/``SQfp16``/``Flat``), then the best
    ``rerank_factor * k`` exactly from the stored embeddings, so a shallow read from an
    on-disk memmap suffices. From 4096 lists on, its coarse quantizer is an HNSW graph.

    **Deduplicated names** (``dedup=True``, the default of :meth:`build` for approximate
    types): faiss holds one vector per distinct name string; a hit is expanded to every
    row of that string, with the same (exact) score, so all concept ids of a shared name
    are returned, as exact search returns them. :meth:`build` encodes each distinct string
    once, so this loses nothing; :meth:`from_embeddings` checks that the rows of one name
    have identical embeddings.

    Any other faiss factory string is accepted as ``index_type`` too (its HNSW, IVF and
    PQ numbers are checked first: faiss crashes on some). Below 256 names ``ivf_pq`` uses
    fewer bits per code (``PQ{pq_m}x{nbits}``; at least 16 names).

    **No silent corruption.** Names and ids must be non-blank strings; embeddings must be
    finite, not all zero, and unit-norm for ``"cosine"``; the saved folder records content
    hashes of every file and :meth:`load` checks them (:class:`IndexFolderError`).

    **Exactness and ties.** With ``index_type="flat"`` the returned rows are exactly the
    top-k by inner product computed in float64 from the stored embeddings; ties are broken
    by dictionary order (the earlier row first), the rule of a stable sort of the scores.
    faiss computes scores in float32; the index fetches more neighbours than asked until
    the float32 error bound (``d * 2**-24 * |q| * max|x|``) rules out a missed or
    misordered row. Identical names are encoded once, so their scores tie exactly.

    **Distinct concepts.** :meth:`search` returns the top k *distinct* ids (CUIs), each
    with its best-scoring name; ``distinct=False`` returns dictionary rows (names) instead,
    several of which may belong to one concept (this is what the SapBERT/BioSyn accuracy
    protocol ranks).

    Args:
        embeddings: ``(n, d)`` float32 or float16 array, possibly a memmap.
        names: The dictionary names, row-aligned with ``embeddings``.
        ids: The concept id (CUI) of each row; may itself be ``|``-joined.
        model: The model that produced the embeddings; used to encode mentions.
        similarity: ``"dot"`` (SapBERT's) or ``"cosine"``.
        index_type: See the table above.
        faiss_index: A trained and filled faiss index for approximate types.
        fingerprint: From :func:`model_fingerprint`; computed from ``model`` when omitted.
        config: Build parameters to save alongside.
        name_groups: The distinct names of ``names`` when already computed (``dedup``);
            computed here otherwise.

    Use :meth:`build` (from a model), :meth:`from_embeddings` or :meth:`load` rather than
    this constructor.

    Example:
        ::

            from sapbert_st import load_sapbert
            from sapbert_st.linking import DictionaryIndex

            model = load_sapbert("cambridgeltl/SapBERT-from-PubMedBERT-fulltext")
            index = DictionaryIndex.build(model, ["heart attack", "myocardial infarction",
                                                  "diabetes"], ["D009203", "D009203", "D003920"])
            index.search(["mi"], k=2)
            # [[{'cui': 'D009203', 'name': 'myocardial infarction', 'score': ..., 'row': 1},
            #   {'cui': 'D003920', 'name': 'diabetes', 'score': ..., 'row': 2}]]
            index.save("medic-index")
            index = DictionaryIndex.load("medic-index", model=model)
    """

    def __init__(
        self,
        embeddings: np.ndarray | None,
        names,
        ids,
        model: SentenceTransformer | None = None,
        similarity: str = "dot",
        index_type: str = "flat",
        faiss_index: Any = None,
        fingerprint: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        name_groups: NameGroups | None = None,
    ) -> None:
        self.names, self.ids = dictionary_columns(names, ids, check_blank=False)
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity: expected one of {SIMILARITIES}, got {similarity!r}")
        if embeddings is None and faiss_index is None:
            raise ValueError("embeddings: required when there is no faiss index")
        if embeddings is not None:
            embeddings = check_embeddings_array(embeddings)
            if len(embeddings) != len(self.names):
                raise ValueError(f"embeddings: {len(embeddings)} rows for {len(self.names)} "
                                 f"names; expected one row per name")
        if index_type != "flat" and faiss_index is None:
            raise ValueError(f"faiss_index: required for index_type={index_type!r}")
        if len(self.names) == 0:
            raise ValueError("names: the dictionary is empty; expected at least one name")
        self.embeddings = embeddings
        self.dimension = int(embeddings.shape[1]) if embeddings is not None else faiss_index.d
        self.similarity = similarity
        self.index_type = index_type
        self.faiss_index = faiss_index
        self.model = model
        if fingerprint is None and model is not None:
            fingerprint = model_fingerprint(model)
        self.fingerprint = fingerprint
        self.config = dict(config or {})
        self.config.setdefault("similarity", similarity)
        self.config.setdefault("index_type", index_type)
        if "max_norm" not in self.config and embeddings is not None:
            self.config["max_norm"] = scan_embeddings(embeddings).max_norm
        self._max_norm_value = float(self.config.get("max_norm") or 0.0)
        self._ids_list: list[str] | None = None
        self._faiss_gpu = None
        self._name_groups: NameGroups | None = None
        if self.config.get("dedup") and faiss_index is not None:
            self._name_groups = name_groups if name_groups is not None else NameGroups(self.names)
            if len(self._name_groups) != faiss_index.ntotal:
                raise IndexFolderError(f"faiss_index: holds {faiss_index.ntotal} vectors, but "
                                       f"the dictionary has {len(self._name_groups)} distinct "
                                       f"names (config dedup=True); expected one per name")

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        model: SentenceTransformer,
        names,
        cuis=None,
        *,
        similarity: str | None = None,
        index_type: str = "flat",
        dtype: str = "float32",
        compute_dtype: str = "float32",
        batch_size: int | None = None,
        chunk_size: int = 65536,
        embeddings_path: str | os.PathLike | None = None,
        show_progress_bar: bool | None = None,
        devices: Sequence[str] | None = None,
        **index_kwargs: Any,
    ) -> DictionaryIndex:
        """Encode a dictionary with ``model`` and index it.

        Args:
            model: A SapBERT model (e.g. from :func:`sapbert_st.load_sapbert`).
            names: Names (list of str), or a ``datasets.Dataset`` with ``name`` and ``cui``.
                Blank (empty or whitespace-only) names are an error.
            cuis: The concept id of each name (not with a Dataset). Duplicate names under
                different ids are kept, as in the reference code.
            similarity: ``"dot"`` (raw [CLS] inner product, SapBERT's) or ``"cosine"``;
                ``None``: the model's own ``model.similarity_fn_name`` (a ValueError names
                it when it is neither).
            index_type: ``"flat"`` (exact), ``"hnsw"``, ``"ivf_pq"``, ``"ivf_sq8"``,
                ``"ivf_fp16"``, ``"ivf_pq_refine"``, ``"auto"`` (flat up to 200,000 distinct
                names, else ``ivf_pq_refine``) or a faiss factory string. Approximate types
                index each distinct name once (``dedup=True``; see the class docstring).
            dtype: ``"float32"`` or ``"float16"`` storage of the embeddings (halves memory;
                scores then use the float16 values).
            compute_dtype: ``"float32"`` (default), or ``"bfloat16"`` / ``"float16"`` to
                encode names and, later, mentions under ``torch.autocast`` (faster; not
                bit-exact with float32).
            batch_size: Encoding batch size (default: 64 on CPU, 256 on GPUs).
            chunk_size: Names encoded per ``model.encode`` call: bounds the memory used
                beyond the embedding storage.
            embeddings_path: Write the embeddings to this ``.npy`` file as a memmap instead
                of RAM (for dictionaries larger than memory).
            show_progress_bar: ``None``: on when the logger is at INFO.
            devices: Encode in several processes with sentence-transformers' multi-process
                pool, one per entry: ``["cuda:0", "cuda:1"]`` for two GPUs, ``["cpu",
                "cpu"]`` for two CPU processes (:func:`.encoding.encode_texts`). ``None``:
                this process, on ``model.device``.
            **index_kwargs: For approximate types: ``nlist``, ``pq_m``, ``pq_nbits``,
                ``hnsw_m``, ``train_size``, ``nprobe``, ``ef_search``, ``rerank``,
                ``rerank_factor``, ``refine_code``, ``refine_factor``, ``dedup`` (see
                :meth:`from_embeddings`); checked before encoding.

        Raises:
            ValueError: bad arguments, or the model produced NaN/inf (or, for
                ``"cosine"``, zero) embeddings, naming the first such name.
        """
        check_model(model)
        name_array, id_array = dictionary_columns(names, cuis)
        if len(name_array) == 0:
            raise ValueError("names: the dictionary is empty; expected at least one name")
        similarity = resolve_similarity(similarity, model)
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        check_compute_dtype(compute_dtype)  # before the storage is allocated
        unknown = sorted(set(index_kwargs) - set(_FAISS_OPTIONS))
        if unknown:
            raise TypeError(f"build: unexpected keyword arguments {unknown}; expected "
                            f"{list(_FAISS_OPTIONS)}")
        if batch_size is None:
            batch_size = default_encode_batch_size(model)
        batch_size = check_positive_int(batch_size, "batch_size")
        dim = embedding_dimension(model)
        n = len(name_array)
        approximate.check_index_type(index_type)
        index_type, groups = _resolve_index_type(index_type, name_array,
                                                 index_kwargs.get("dedup"))
        index_kwargs.setdefault("dedup", index_type != "flat")
        faiss_rows = len(groups) if index_kwargs["dedup"] and groups is not None else n
        _check_options(index_type, faiss_rows, dim, **index_kwargs)  # fail before encoding
        if embeddings_path is not None:
            storage = np.lib.format.open_memmap(os.fspath(embeddings_path), mode="w+",
                                                dtype=dtype, shape=(n, dim))
        else:
            storage = np.empty((n, dim), dtype=dtype)
        encode_texts(model, name_array, batch_size=batch_size, chunk_size=chunk_size,
                     show_progress_bar=show_progress_bar, out=storage,
                     normalize=similarity == "cosine", compute_dtype=compute_dtype,
                     devices=devices)
        scan = scan_embeddings(storage)
        _check_encoded(scan, name_array, similarity, dtype, compute_dtype)
        config = {"batch_size": batch_size, "dtype": dtype, "compute_dtype": compute_dtype,
                  "max_seq_length": getattr(model, "max_seq_length", None),
                  "max_norm": scan.max_norm}
        return cls.from_embeddings(
            storage, name_array, id_array, model=model, similarity=similarity,
            index_type=index_type, show_progress_bar=show_progress_bar, config=config,
            verify=False, name_groups=groups, **index_kwargs,
        )

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray,
        names,
        cuis=None,
        *,
        model: SentenceTransformer | None = None,
        similarity: str | None = None,
        index_type: str = "flat",
        nlist: int | None = None,
        pq_m: int | None = None,
        pq_nbits: int | None = None,
        hnsw_m: int = 32,
        train_size: int = 131072,
        nprobe: int = 32,
        ef_search: int = 128,
        rerank: bool = True,
        rerank_factor: int = 10,
        refine_code: str = "SQ8",
        refine_factor: int = 16,
        dedup: bool = False,
        chunk_size: int = 262144,
        show_progress_bar: bool | None = None,
        config: dict[str, Any] | None = None,
        seed: int = 0,
        verify: bool = True,
        name_groups: NameGroups | None = None,
    ) -> DictionaryIndex:
        """Index precomputed embeddings (float32/float16 array or memmap), streamed in chunks.

        ``similarity=None`` is ``model.similarity_fn_name`` when ``model`` is given, else
        ``"dot"``. The embeddings must be finite and not all zero; with
        ``similarity="cosine"`` every row must be L2-normalized (within 1%): a ValueError
        names the first bad row.
        Approximate indexes fetch ``rerank_factor * k`` candidates and re-score them
        exactly from the stored embeddings; ``rerank=False`` drops the stored embeddings
        (search then returns faiss's approximate scores). ``pq_nbits`` (``ivf_pq``) defaults
        to 8, fewer below 256 names. Every option is checked before faiss sees it.
        ``verify=False`` together with ``config["max_norm"]`` (the largest row norm)
        skips the checking pass over the embeddings, for huge memmaps already checked.
        ``ivf_pq_refine``: ``refine_code`` is the in-RAM refinement code, ``refine_factor``
        how many PQ candidates per candidate it re-scores. ``dedup=True``: faiss holds one
        vector per distinct name (the rows of one name must have identical embeddings;
        checked unless ``verify=False``); ``index_type="auto"`` chooses by distinct names.
        """
        name_array, id_array = dictionary_columns(names, cuis)
        if len(name_array) == 0:
            raise ValueError("names: the dictionary is empty; expected at least one name")
        embeddings = check_embeddings_array(embeddings)
        n, dim = embeddings.shape
        if n != len(name_array):
            raise ValueError(f"embeddings: {n} rows for {len(name_array)} names; expected one "
                             f"row per name")
        similarity = resolve_similarity(similarity, model)
        check_bool(verify, "verify")
        check_bool(dedup, "dedup")
        approximate.check_index_type(index_type)
        if name_groups is None:
            index_type, name_groups = _resolve_index_type(index_type, name_array, dedup)
        dedup = dedup and index_type != "flat"
        if dedup and name_groups is None:
            name_groups = NameGroups(name_array)
        factory = _check_options(index_type, len(name_groups) if dedup else n, dim, nlist=nlist,
                                 pq_m=pq_m, pq_nbits=pq_nbits, hnsw_m=hnsw_m,
                                 train_size=train_size, nprobe=nprobe, ef_search=ef_search,
                                 rerank=rerank, rerank_factor=rerank_factor,
                                 refine_code=refine_code, refine_factor=refine_factor,
                                 dedup=dedup, chunk_size=chunk_size, seed=seed)
        config = dict(config or {})
        config["dtype"] = str(embeddings.dtype)
        if verify or config.get("max_norm") is None:  # largest row norm: the exactness bound
            scan = scan_embeddings(embeddings)
            scan.check("embeddings", similarity)
            config["max_norm"] = scan.max_norm
            if dedup:
                _check_duplicates_equal(embeddings, name_groups, chunk_size)
        faiss_index = None
        if factory is not None:
            faiss_index = approximate.new_faiss_index(factory, dim)
            approximate.train_and_add(faiss_index, embeddings, factory, train_size=train_size,
                                      chunk_size=chunk_size, seed=seed,
                                      progress=resolve_show_progress_bar(show_progress_bar, logger),
                                      rows=name_groups.first if dedup else None)
            approximate.set_search_params(faiss_index, nprobe, ef_search, refine_factor)
            config.update(factory=factory, nprobe=nprobe, ef_search=ef_search, rerank=rerank,
                          rerank_factor=rerank_factor, train_size=train_size,
                          refine_factor=refine_factor, dedup=dedup)
        index = cls(embeddings if (index_type == "flat" or rerank) else None, name_array,
                    id_array, model=model, similarity=similarity, index_type=index_type,
                    faiss_index=faiss_index, config=config,
                    name_groups=name_groups if dedup else None)
        return index

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None,
                          rerank_factor: int | None = None,
                          refine_factor: int | None = None) -> None:
        """Tune an approximate index after building or loading it (saved with :meth:`save`).

        ``nprobe``: IVF lists scanned per query; ``ef_search``: HNSW search depth (also of
        an HNSW coarse quantizer); ``rerank_factor``: candidates re-scored exactly, as a
        multiple of k; ``refine_factor`` (``ivf_pq_refine``): PQ candidates re-scored in RAM
        per candidate. Larger values raise recall and latency. A value that does not apply
        to this index is an error.
        """
        given = {argument: check_positive_int(value, argument) for argument, value in
                 (("nprobe", nprobe), ("ef_search", ef_search),
                  ("rerank_factor", rerank_factor), ("refine_factor", refine_factor))
                 if value is not None}
        applicable = () if self.faiss_index is None else approximate.search_param_names(
            self.faiss_index)
        reranks = self.embeddings is not None and self.config.get("rerank", True)
        for argument in given:
            if self.index_type == "flat":
                raise ValueError(f"{argument}: only for approximate indexes; this index is "
                                 f"exact (index_type='flat')")
            if argument == "rerank_factor" and not reranks:
                raise ValueError("rerank_factor: this index keeps no embeddings to re-rank "
                                 "(built with rerank=False)")
            if argument != "rerank_factor" and argument not in applicable:
                kind = self.config.get("factory", self.index_type)
                raise ValueError(f"{argument}: does not apply to this {kind!r} index; it takes "
                                 f"{[*applicable, 'rerank_factor'] if reranks else applicable}")
        self.config.update(given)
        if self.faiss_index is not None:
            approximate.set_search_params(self.faiss_index, int(self.config.get("nprobe", 32)),
                                          int(self.config.get("ef_search", 128)),
                                          int(self.config.get("refine_factor", 16)))
            self._faiss_gpu = None

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        model = self.fingerprint["model_name"] if self.fingerprint else None
        return (f"DictionaryIndex(names={len(self)}, dimension={self.dimension}, "
                f"similarity={self.similarity!r}, index_type={self.index_type!r}, "
                f"dtype={self.config.get('dtype')!r}, model={model!r})")

    def id_list(self) -> list[str]:
        """The concept id of every row, as a Python list (computed once, then cached)."""
        if self._ids_list is None:
            self._ids_list = self.ids.to_pylist()
        return self._ids_list

    # ------------------------------------------------------------------ search

    def encode_mentions(self, mentions: Sequence[str], model: SentenceTransformer | None = None,
                        batch_size: int | None = None, show_progress_bar: bool | None = None,
                        check_model: bool = True) -> np.ndarray:
        """Encode mentions with the index's model (or ``model``, after a fingerprint check)."""
        mentions = check_mentions(mentions)
        for i, mention in enumerate(mentions):
            if not mention.strip():
                raise ValueError(f"mentions[{i}]: empty mention {mention!r}; expected text to link")
        if model is None:
            model = self.model
        if model is None:
            raise ValueError("model: this index has no model attached; pass model= to search "
                             "or to DictionaryIndex.load, or use search_embeddings")
        if check_model and self.fingerprint is not None and model is not self.model:
            check_fingerprint(self.fingerprint, model, "DictionaryIndex.search")
        if embedding_dimension(model) != self.dimension:
            raise IndexMismatchError(f"model: embedding dimension {embedding_dimension(model)}, but "
                                     f"the index has dimension {self.dimension}")
        out = np.empty((len(mentions), self.dimension), dtype=np.float32)
        return encode_texts(model, mentions, batch_size=batch_size,
                            show_progress_bar=show_progress_bar, out=out,
                            normalize=self.similarity == "cosine",
                            compute_dtype=self.config.get("compute_dtype", "float32"))

    def search(
        self,
        mentions: Sequence[str],
        k: int = 5,
        *,
        distinct: bool = True,
        model: SentenceTransformer | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Link each mention to its top ``k`` concepts.

        Args:
            mentions: Mention strings (non-empty; longer than ``max_seq_length`` tokens is
                truncated, huge ones cut to characters first: :func:`.encoding.max_text_chars`).
            k: Results per mention. More than the dictionary holds returns all of it.
            distinct: ``True``: the top k distinct ids, each with its best name.
                ``False``: the top k dictionary rows.
            model: Encode with this model instead of the attached one; it must match the
                model the index was built with (else :class:`IndexMismatchError`).

        Returns:
            Per mention, a list of ``{"cui", "name", "score", "row"}`` dicts, best first.
        """
        queries = self.encode_mentions(mentions, model=model, batch_size=batch_size,
                                       show_progress_bar=show_progress_bar)
        return self.search_embeddings(queries, k, distinct=distinct,
                                      show_progress_bar=show_progress_bar)

    def search_embeddings(self, query_embeddings: np.ndarray, k: int = 5, *,
                          distinct: bool = True, query_batch_size: int = 1024,
                          show_progress_bar: bool | None = None) -> list[list[dict[str, Any]]]:
        """Like :meth:`search`, for precomputed (float32) query embeddings."""
        from tqdm.auto import tqdm

        queries = self._check_queries(query_embeddings)
        k = check_positive_int(k, "k")
        results: list[list[dict[str, Any]]] = []
        ids = self.id_list()
        starts = range(0, len(queries), query_batch_size)
        for start in tqdm(starts, desc="Searching", unit="batch",
                          disable=not resolve_show_progress_bar(show_progress_bar, logger) or len(starts) < 2):
            block = queries[start:start + query_batch_size]
            if distinct:
                rows, scores = self._search_distinct(block, k, ids)
            else:
                rows, scores = self.search_rows(block, k)
            used = [r[r >= 0] for r in rows]
            names = self.names.take(np.concatenate(used)).to_pylist() if used else []
            offset = 0
            for row_list, score_list in zip(rows, scores):
                hits = []
                for row, score in zip(row_list, score_list):
                    if row < 0:
                        continue
                    hits.append({"cui": ids[row], "name": names[offset], "score": float(score),
                                 "row": int(row)})
                    offset += 1
                results.append(hits)
        return results

    def _check_queries(self, query_embeddings) -> np.ndarray:
        queries = np.asarray(query_embeddings)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"query_embeddings: expected shape (n, {self.dimension}), got "
                             f"{queries.shape}")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not np.isfinite(queries).all():
            raise ValueError("query_embeddings: contains NaN or infinite values")
        return queries

    def search_rows(self, query_embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` dictionary rows per query: ``(rows, scores)``, both ``(nq, min(k, n))``.

        Exact for ``index_type="flat"``: float64 scores, ties by row order. Rows are -1
        where an approximate index found fewer than k.
        """
        queries = self._check_queries(query_embeddings)
        k = min(check_positive_int(k, "k"), len(self))
        if self.index_type == "flat":
            return self._exact_rows(queries, k)
        return self._approximate_rows(queries, k)

    # exact ---------------------------------------------------------------

    def _tolerance(self, queries: np.ndarray) -> np.ndarray:
        """Bound on |float32 faiss score - exact score| per query (recursive summation)."""
        gamma = self.dimension * _U32 / (1 - self.dimension * _U32)
        qnorm = np.sqrt((queries.astype(np.float64) ** 2).sum(1))
        return 2 * gamma * qnorm * self._max_norm_value + 1e-30

    def _knn_float32(self, queries: np.ndarray, kk: int, block_rows: int = 262144):
        """faiss brute-force top-kk over the stored embeddings, streamed in row blocks."""
        faiss = import_faiss()
        storage = self.embeddings
        in_memory = (storage.dtype == np.float32 and not isinstance(storage, np.memmap)
                     and storage.flags["C_CONTIGUOUS"])
        if in_memory:
            return faiss.knn(queries, storage, kk, metric=faiss.METRIC_INNER_PRODUCT)
        best_d = best_i = None
        for start in range(0, len(storage), block_rows):
            block = np.ascontiguousarray(storage[start:start + block_rows], dtype=np.float32)
            kb = min(kk, len(block))
            d, i = faiss.knn(queries, block, kb, metric=faiss.METRIC_INNER_PRODUCT)
            i = i + start
            if best_d is None:
                best_d, best_i = d, i
            else:
                d = np.concatenate([best_d, d], 1)
                i = np.concatenate([best_i, i], 1)
                order = np.lexsort((i, -d), axis=-1)[:, :kk]
                best_d = np.take_along_axis(d, order, 1)
                best_i = np.take_along_axis(i, order, 1)
        return best_d, best_i

    def _exact_scores(self, queries: np.ndarray, rows: np.ndarray,
                      max_elements: int = 1 << 24) -> np.ndarray:
        """float64 inner products of each query with its candidate rows (-1 -> -inf).

        Processed in query chunks of at most ``max_elements`` gathered float64 values
        (128 MB), so deep re-ranking of many queries stays memory-bounded.
        """
        safe = np.where(rows < 0, 0, rows)
        scores = np.empty(rows.shape, dtype=np.float64)
        per_query = max(1, rows.shape[1] * self.dimension)
        step = max(1, max_elements // per_query)
        for start in range(0, len(rows), step):
            part = safe[start:start + step]
            flat = np.unique(part)
            vectors = np.asarray(self.embeddings[flat], dtype=np.float64)
            position = np.searchsorted(flat, part)
            scores[start:start + step] = np.einsum(
                "qd,qkd->qk", queries[start:start + step].astype(np.float64), vectors[position])
        scores[rows < 0] = -np.inf
        return scores

    @staticmethod
    def _order(rows: np.ndarray, scores: np.ndarray, k: int):
        """Sort each query's candidates by (-score, row): stable by dictionary order."""
        order = np.lexsort((rows, -scores), axis=-1)[:, :k]
        return np.take_along_axis(rows, order, 1), np.take_along_axis(scores, order, 1)

    def _exact_rows(self, queries: np.ndarray, k: int):
        """Exact top-k rows: faiss float32 candidates, certified or redone in float64."""
        n = len(self)
        out_rows = np.empty((len(queries), k), dtype=np.int64)
        out_scores = np.empty((len(queries), k), dtype=np.float64)
        todo = np.arange(len(queries))
        tolerance = self._tolerance(queries)
        for kk in (max(2 * k, k + 16), max(2 * k, k + 16) * 16):
            kk = min(n, kk)
            d, i = self._knn_float32(queries[todo], kk)
            scores = self._exact_scores(queries[todo], i)
            rows, scores = self._order(i, scores, k)
            out_rows[todo], out_scores[todo] = rows, scores
            if kk >= n:
                return out_rows, out_scores
            # A row not fetched has float32 score <= d[:, -1], so exact score <= d[:, -1]
            # + tol; the top k are certain only when that is strictly below the k-th score.
            unsure = d[:, -1] + tolerance[todo] >= scores[:, -1]
            todo = todo[unsure]
            if not len(todo):
                return out_rows, out_scores
        logger.debug("Exact float64 scan for %d queries whose float32 top-%d had near-ties",
                     len(todo), k)
        for start in range(0, len(todo), 64):
            chunk = todo[start:start + 64]
            out_rows[chunk], out_scores[chunk] = self._scan_float64(queries[chunk], k)
        return out_rows, out_scores

    def _scan_float64(self, queries: np.ndarray, k: int, block_rows: int = 65536):
        """Brute force in float64 over all rows: top k by (-score, row)."""
        q = queries.astype(np.float64)
        best_rows = np.empty((len(q), 0), dtype=np.int64)
        best_scores = np.empty((len(q), 0), dtype=np.float64)
        for start in range(0, len(self), block_rows):
            block = np.asarray(self.embeddings[start:start + block_rows], dtype=np.float64)
            scores = np.concatenate([best_scores, q @ block.T], 1)
            rows = np.concatenate(
                [best_rows, np.broadcast_to(np.arange(start, start + len(block)), (len(q), len(block)))], 1)
            kk = min(k, scores.shape[1])
            kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1]
            new_rows = np.empty((len(q), kk), dtype=np.int64)
            new_scores = np.empty((len(q), kk), dtype=np.float64)
            for j in range(len(q)):
                keep = np.flatnonzero(scores[j] >= kth[j])
                order = np.lexsort((rows[j, keep], -scores[j, keep]))[:kk]
                new_rows[j], new_scores[j] = rows[j, keep[order]], scores[j, keep[order]]
            best_rows, best_scores = new_rows, new_scores
        return best_rows, best_scores

    # approximate -----------------------------------------------------------

    # approximate -----------------------------------------------------------

    def _approximate_rows(self, queries: np.ndarray, k: int, kk: int | None = None):
        rerank = self.embeddings is not None and self.config.get("rerank", True)
        factor = int(self.config.get("rerank_factor", 10)) if rerank else 1
        kk = min(len(self), kk or max(k * factor, k))
        if self._name_groups is not None:  # candidates are distinct names
            kk = min(len(self._name_groups), kk)
        d, i = approximate.search(self._search_index(), queries, kk)  # leaves efSearch alone
        i = i.astype(np.int64)
        if self._name_groups is not None:
            i = np.where(i < 0, -1, self._name_groups.first[np.maximum(i, 0)])
        if rerank:
            scores = self._exact_scores(queries, i)
        else:
            scores = np.where(i < 0, -np.inf, d.astype(np.float64))
        if self._name_groups is not None:  # every row of each name, with its score
            first = np.where(i < 0, -1, self._name_groups.first.searchsorted(np.maximum(i, 0)))
            i, scores = self._name_groups.expand(first, scores)
            k = min(k, i.shape[1])
        rows, scores = self._order(i, scores, k)
        rows[~np.isfinite(scores)] = -1
        return rows, scores

    def _search_index(self):
        """The faiss index, moved to the GPUs once when faiss-gpu and a GPU are available."""
        faiss = import_faiss()
        if self._faiss_gpu is None:
            self._faiss_gpu = self.faiss_index
            if hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0:
                try:
                    self._faiss_gpu = faiss.index_cpu_to_all_gpus(self.faiss_index)
                except RuntimeError as exc:  # e.g. an index type without a GPU version
                    logger.warning("Searching on CPU: faiss could not move the index to the "
                                   "GPU (%s)", exc)
        return self._faiss_gpu

    # distinct ----------------------------------------------------------------

    def _search_distinct(self, queries: np.ndarray, k: int, ids: list[str]):
        n = len(self)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf)
        todo = np.arange(len(queries))
        kk = min(n, 4 * k)
        while len(todo):
            rows, scores = self.search_rows(queries[todo], kk)
            unfinished = []
            for local, q in enumerate(todo):
                seen: set[str] = set()
                picked = 0
                for row, score in zip(rows[local], scores[local]):
                    if row < 0 or ids[row] in seen:
                        continue
                    seen.add(ids[row])
                    out_rows[q, picked], out_scores[q, picked] = row, score
                    picked += 1
                    if picked == k:
                        break
                if picked < k and kk < n:
                    unfinished.append(q)
            todo = np.asarray(unfinished, dtype=np.int64)
            kk = min(n, kk * 4)
        return out_rows, out_scores

    # ------------------------------------------------------------------ save / load

    # ------------------------------------------------------------------ save / load

    def save(self, folder: str | os.PathLike) -> None:
        """Write the index to ``folder``: config JSON with content hashes, names and ids
        (Arrow), embeddings (``.npy``), and the faiss index for approximate types
        (the layout: :mod:`sapbert_st.linking.index_folder`)."""
        write_index_folder(folder, self.names, self.ids, self.embeddings, self.faiss_index, {
            "size": len(self), "dimension": self.dimension, "similarity": self.similarity,
            "index_type": self.index_type, "model": self.fingerprint, "config": self.config})

    @classmethod
    def load(cls, folder: str | os.PathLike, model: SentenceTransformer | None = None,
             mmap: bool = False, verify: bool = True) -> DictionaryIndex:
        """Load an index written by :meth:`save`, checking that its files belong together.

        Args:
            folder: The index folder.
            model: The model to encode mentions with; checked against the fingerprint of
                the model the index was built with (:class:`IndexMismatchError`).
            mmap: Memory-map the embeddings instead of reading them into RAM.
            verify: Hash every file against ``index_config.json`` and scan the embeddings
                for NaN/inf (one streaming pass, ~1 GB/s). ``False`` for huge memmapped
                indexes: only the names/ids hashes, a 1024-row sample of the embeddings,
                shapes and the faiss file size are checked.

        Raises:
            FileNotFoundError: the folder or one of its files is missing.
            IndexFolderError: (a ValueError) a file is damaged, or the files are from
                different builds; the message names the file and what differs.
        """
        saved = read_index_folder(folder, mmap=mmap, verify=check_bool(verify, "verify"))
        meta, config = saved.meta, dict(saved.meta["config"])
        if saved.max_norm is not None:  # measured just now: trust it over the file
            config["max_norm"] = saved.max_norm
        if saved.faiss_index is not None:
            approximate.set_search_params(saved.faiss_index, config.get("nprobe", 32),
                                          config.get("ef_search", 128),
                                          config.get("refine_factor", 16))
        fingerprint = meta["model"]
        if model is not None and fingerprint is not None:
            check_fingerprint(fingerprint, model, f"DictionaryIndex.load({folder})")
        index = cls(saved.embeddings, saved.names, saved.ids, model=None,
                    similarity=meta["similarity"], index_type=meta["index_type"],
                    faiss_index=saved.faiss_index, fingerprint=fingerprint, config=config)
        index.model = model
        return index


def _check_duplicates_equal(embeddings: np.ndarray, groups: NameGroups, chunk_size: int) -> None:
    """ValueError unless every row has the embedding of the first row of its name."""
    if not groups.has_duplicates:
        return
    repeats = np.flatnonzero(groups.first[groups.codes] != np.arange(len(groups.codes)))
    for start in range(0, len(repeats), chunk_size):
        rows = repeats[start:start + chunk_size]
        firsts = groups.first[groups.codes[rows]]
        differs = np.flatnonzero((np.asarray(embeddings[rows]) !=
                                  np.asarray(embeddings[firsts])).any(1))
        if len(differs):
            raise ValueError(f"embeddings: rows {int(firsts[differs[0]])} and "
                             f"{int(rows[differs[0]])} have the same name but different "
                             f"embeddings; dedup=True needs one embedding per name (encode "
                             f"with encode_texts, or pass dedup=False)")


def _check_encoded(scan, names, similarity: str, dtype: str, compute_dtype: str) -> None:
    """ValueError naming the first name whose embedding the model got wrong."""
    if scan.first_nonfinite_row is not None:
        row = scan.first_nonfinite_row
        hints = ["check the model's weights"]
        if compute_dtype != "float32":
            hints.append("encode with compute_dtype='float32'")
        if dtype == "float16":
            hints.append("store dtype='float32' (float16 overflows above 65504)")
        raise ValueError(f"names[{row}]: the model produced a non-finite (NaN or infinite) "
                         f"embedding for {names[row].as_py()!r} ({scan.nonfinite_rows} of "
                         f"{scan.rows} names); {', or '.join(hints)}")
    if scan.max_norm == 0:
        raise ValueError(f"model: produced all-zero embeddings for all {scan.rows} names; "
                         f"expected a working encoder")
    if similarity == "cosine" and scan.first_zero_row is not None:
        row = scan.first_zero_row
        raise ValueError(f"names[{row}]: the model produced a zero embedding for "
                         f"{names[row].as_py()!r}, which cannot be L2-normalized for "
                         f"similarity='cosine' ({scan.zero_rows} such names)")
    scan.check("names", similarity)
