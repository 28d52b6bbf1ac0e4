"""Approximate faiss indexes: factory strings, parameter checks, training, per-search settings.

faiss aborts the interpreter on some parameters (``HNSW0``: an assertion; ``HNSW1``: a
segfault; ``PQ8x0``: a floating-point exception) and answers others with C++ tracebacks
(``nprobe=0``, fewer training vectors than lists or centroids, a PQ size that does not
divide the dimension). Every parameter is therefore checked here before faiss sees it,
including the numbers inside a user's factory string, and faiss's own errors are re-raised
as ValueErrors naming the argument.

Searches never change the index: a search that needs a deeper HNSW beam than configured
passes ``faiss.SearchParametersHNSW`` to that one call instead of setting ``efSearch``.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import numpy as np

from sapbert_st.linking.checks import check_int, check_positive_int

logger = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "hnsw", "ivf_pq", "ivf_sq8", "ivf_fp16", "ivf_pq_refine", "auto")

#: Codes the in-RAM refinement stage of ``ivf_pq_refine`` may keep (faiss ``Refine(...)``).
REFINE_CODES = ("SQ4", "SQ6", "SQ8", "SQfp16", "Flat")

#: ``index_type="auto"``: exact search up to this many distinct names, ``ivf_pq_refine`` above.
AUTO_FLAT_MAX = 200_000

#: From this many IVF lists on, the coarse quantizer is an HNSW graph (``IVF{nlist}_HNSW32``):
#: a flat quantizer compares every query with every list centroid.
HNSW_QUANTIZER_MIN_NLIST = 4096

#: Largest float32 block handed to one ``faiss.add`` call. faiss holds a few working copies of
#: each block (residuals, codes), so at UMLS size 262,144 x 768 rows cost ~2 GB above the
#: index itself; 128 MiB blocks keep that under 0.5 GB (7.4M x 768: build peak 8.84 -> 7.56 GB).
ADD_BLOCK_BYTES = 128 * 2**20

#: Fewest bits per product-quantizer code; ``ivf_pq`` needs ``2**MIN_PQ_NBITS`` names.
MIN_PQ_NBITS = 4
#: faiss's largest product-quantizer code.
MAX_PQ_NBITS = 16

_HNSW = re.compile(r"(HNSW|NSG)(\d+)")
_IVF = re.compile(r"IVF(\d+)")
_PQ = re.compile(r"(?<![A-Za-z])PQ(\d+)(?:x(\d+))?")
_TRANSFORMS = re.compile(r"PCA|OPQ|RR\d|ITQ")


def import_faiss():
    """Import faiss lazily, with an install hint."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "DictionaryIndex needs faiss: pip install faiss-cpu (or faiss-gpu-cu12 for GPUs), "
            'or pip install "sapbert-st[faiss]"'
        ) from exc
    return faiss


def _faiss_message(exc: Exception) -> str:
    """The useful last part of a faiss C++ error (what follows "at file.cpp:NN: ")."""
    text = str(exc).strip()
    found = re.search(r"\.(?:cpp|h):\d+: (?:Error: )?(.*)", text)
    message = found.group(1) if found else text
    return message.splitlines()[0] if message else type(exc).__name__


def check_index_type(index_type) -> str:
    if not isinstance(index_type, str) or not index_type.strip():
        raise ValueError(f"index_type: expected one of {INDEX_TYPES} or a faiss factory "
                         f"string, got {index_type!r}")
    return index_type


def auto_index_type(n: int) -> str:
    """``index_type="auto"``: ``"flat"`` (exact) up to :data:`AUTO_FLAT_MAX` distinct names,
    else ``"ivf_pq_refine"`` (see ``benchmarks/README.md``, search sweep)."""
    return "flat" if n <= AUTO_FLAT_MAX else "ivf_pq_refine"


def check_refine_code(refine_code) -> str:
    if refine_code not in REFINE_CODES:
        raise ValueError(f"refine_code: expected one of {REFINE_CODES}, got {refine_code!r}")
    return refine_code


def pq_nbits_for(train_count: int, pq_nbits: int | None) -> int:
    """Bits per PQ code: 8 (faiss's default), fewer when there are under 256 training vectors."""
    if pq_nbits is not None:
        pq_nbits = check_int(pq_nbits, "pq_nbits", 1, MAX_PQ_NBITS)
        if train_count < 2 ** pq_nbits:
            raise ValueError(f"pq_nbits: {pq_nbits}-bit codes need at least {2 ** pq_nbits} "
                             f"training vectors, got {train_count}; lower pq_nbits or raise "
                             f"train_size")
        return pq_nbits
    nbits = min(8, math.floor(math.log2(max(train_count, 1))))
    if nbits < MIN_PQ_NBITS:
        raise ValueError(f"index_type='ivf_pq': needs at least {2 ** MIN_PQ_NBITS} names to "
                         f"train its product quantizer, got {train_count}; use "
                         f"index_type='flat' (exact, and fast at this size)")
    if nbits < 8:
        logger.info("ivf_pq: %d training vectors < 256, so %d-bit codes", train_count, nbits)
    return nbits


def factory_string(index_type: str, n: int, dim: int, *, nlist: int | None = None,
                   pq_m: int | None = None, pq_nbits: int | None = None, hnsw_m: int = 32,
                   train_size: int = 131072, refine_code: str = "SQ8") -> str:
    """The faiss factory string for ``index_type`` (see :class:`DictionaryIndex`), checked.

    ``nlist`` defaults to ``4 sqrt(n)`` lists (at most ``n / 39`` and the training sample);
    ``pq_m`` to ``d / 8`` subquantizers. ``ivf_pq_refine`` is ``IVF{nlist},PQ{pq_m}`` (an
    HNSW coarse quantizer from :data:`HNSW_QUANTIZER_MIN_NLIST` lists on) whose candidates
    faiss re-scores in RAM from ``refine_code`` vectors (``Refine(SQ8)``: d bytes a name).
    ``"auto"`` must be resolved first (:func:`auto_index_type`). A factory string passes
    through :func:`check_factory`.
    """
    check_index_type(index_type)
    check_refine_code(refine_code)
    hnsw_m = check_int(hnsw_m, "hnsw_m", 2)
    train_count = min(n, check_positive_int(train_size, "train_size"))
    for argument, value in (("nlist", nlist), ("pq_m", pq_m), ("pq_nbits", pq_nbits)):
        if value is not None:
            check_positive_int(value, argument)
    if index_type == "hnsw":
        factory = f"HNSW{hnsw_m}"
    elif index_type == "ivf_pq_refine":
        nlist = _nlist(n, train_count, train_size, nlist)
        coarse = f"IVF{nlist}_HNSW32" if nlist >= HNSW_QUANTIZER_MIN_NLIST else f"IVF{nlist}"
        pq = _pq(dim, train_count, pq_m, pq_nbits)
        factory = f"{coarse},{pq},Refine({refine_code})"
    elif index_type == "auto":
        raise ValueError("index_type='auto': resolve it with auto_index_type(n) first")
    elif index_type in ("ivf_pq", "ivf_sq8", "ivf_fp16"):
        nlist = _nlist(n, train_count, train_size, nlist)
        codes = {"ivf_sq8": "SQ8", "ivf_fp16": "SQfp16"}
        factory = f"IVF{nlist},{codes.get(index_type) or _pq(dim, train_count, pq_m, pq_nbits)}"
    else:
        factory = index_type
    check_factory(factory, dim, train_count)
    return factory


def _nlist(n: int, train_count: int, train_size: int, nlist: int | None) -> int:
    if nlist is None:
        nlist = max(1, min(65536, int(4 * math.sqrt(n))))
        return min(nlist, max(1, n // 39), train_count)  # faiss wants >= 39 points per list
    if nlist > train_count:
        raise ValueError(f"nlist: {nlist} lists need at least {nlist} training vectors, but "
                         f"the dictionary and train_size={train_size} give {train_count}; "
                         f"lower nlist or raise train_size")
    return nlist


def _pq(dim: int, train_count: int, pq_m: int | None, pq_nbits: int | None) -> str:
    if pq_m is None:
        pq_m = next(m for m in (dim // 8, dim // 4, dim // 2, dim) if m and dim % m == 0)
    elif dim % pq_m:
        divisors = [m for m in range(1, dim + 1) if dim % m == 0]
        raise ValueError(f"pq_m: {pq_m} subquantizers do not divide the dimension {dim}; "
                         f"expected one of {divisors}")
    nbits = pq_nbits_for(train_count, pq_nbits)
    return f"PQ{pq_m}" if nbits == 8 else f"PQ{pq_m}x{nbits}"


def check_factory(factory: str, dim: int, train_count: int) -> None:
    """ValueError for the numbers in a factory string that faiss crashes or fails on.

    Checks ``HNSW{m}``/``NSG{r}`` (>= 2), ``IVF{nlist}`` (1 to the training vectors) and
    ``PQ{m}x{nbits}`` (m divides the dimension, nbits in 1..16, 2**nbits training
    vectors). Anything else is left to faiss (:func:`new_faiss_index`).
    """
    argument = f"index_type={factory!r}"
    for kind, value in _HNSW.findall(factory):
        if int(value) < 2:
            raise ValueError(f"{argument}: {kind}{value} needs at least 2 neighbours per node "
                             f"(faiss crashes on fewer); expected e.g. {kind}32")
    for value in _IVF.findall(factory):
        if not 1 <= int(value) <= train_count:
            raise ValueError(f"{argument}: IVF{value} needs 1 to {train_count} lists (one "
                             f"training vector each at least; the dictionary and train_size "
                             f"give {train_count})")
    for m, nbits in _PQ.findall(factory):
        if int(m) < 1 or (not _TRANSFORMS.search(factory) and dim % int(m)):
            raise ValueError(f"{argument}: PQ{m} needs a number of subquantizers that divides "
                             f"the dimension {dim}")
        if nbits and not 1 <= int(nbits) <= MAX_PQ_NBITS:
            raise ValueError(f"{argument}: PQ{m}x{nbits} needs 1 to {MAX_PQ_NBITS} bits per code")
        if 2 ** int(nbits or 8) > train_count:
            raise ValueError(f"{argument}: PQ{m}x{nbits or 8} needs at least "
                             f"{2 ** int(nbits or 8)} training vectors, got {train_count}")


def new_faiss_index(factory: str, dim: int):
    """``faiss.index_factory`` for inner-product search; faiss errors become ValueErrors."""
    faiss = import_faiss()
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"index_type: faiss cannot build {factory!r} for inner-product search "
                         f"({_faiss_message(exc)}); expected one of {INDEX_TYPES} or a faiss "
                         f"factory string such as 'IVF1024,PQ32'") from exc
    ivf = _ivf_of(index)
    for part in (index, ivf, getattr(index, "base_index", None)):
        part = faiss.downcast_index(part) if part is not None and part is not index else part
        if part is not None and hasattr(part, "do_polysemous_training"):
            part.do_polysemous_training = False  # only for Hamming filtering; slow
    return index


def train_and_add(faiss_index, embeddings: np.ndarray, factory: str, *, train_size: int,
                  chunk_size: int, seed: int, progress: bool, rows: np.ndarray | None = None):
    """Train ``faiss_index`` on a seeded sample of ``train_size`` rows, then add every row,
    in blocks of at most ``chunk_size`` rows and ``ADD_BLOCK_BYTES`` bytes.

    ``rows`` (increasing row numbers): index only these rows, in this order (one row per
    distinct name for a deduplicated index); faiss then numbers them 0, 1, ...
    """
    from tqdm.auto import tqdm

    n = len(embeddings) if rows is None else len(rows)

    def take(positions):
        return embeddings[positions] if rows is None else embeddings[rows[positions]]

    try:
        if not faiss_index.is_trained:
            size = min(n, train_size)
            rng = np.random.default_rng(seed)
            sample_rows = np.sort(rng.choice(n, size=size, replace=False))
            sample = np.ascontiguousarray(take(sample_rows), dtype=np.float32)
            logger.info("Training faiss %s on %d of %d vectors", factory, size, n)
            faiss_index.train(sample)
            del sample
        _reserve_refine_codes(faiss_index, n)
        bar = tqdm(total=n, desc=f"Adding to faiss {factory}", unit="name", disable=not progress)
        block_rows = max(1, min(chunk_size, ADD_BLOCK_BYTES // (4 * embeddings.shape[1])))
        for start in range(0, n, block_rows):
            block = np.ascontiguousarray(take(slice(start, start + block_rows)),
                                         dtype=np.float32)
            faiss_index.add(block)
            bar.update(len(block))
        bar.close()
    except RuntimeError as exc:
        raise ValueError(f"index_type={factory!r}: faiss failed to train or fill the index "
                         f"({_faiss_message(exc)})") from exc
    return faiss_index


def _reserve_refine_codes(faiss_index, n: int) -> None:
    """Allocate the code array of an ``IndexRefine``'s refinement stage for ``n`` vectors up
    front: filled chunk by chunk, it would grow by doubling, and each reallocation holds the
    old and the new copy at once (at UMLS size, gigabytes)."""
    faiss = import_faiss()
    refine = getattr(faiss.downcast_index(faiss_index), "refine_index", None)
    if refine is None:
        return
    refine = faiss.downcast_index(refine)
    codes = getattr(refine, "codes", None)
    if refine.ntotal == 0 and hasattr(codes, "resize"):
        codes.resize(n * refine.code_size)  # keeps the capacity when shrunk back
        codes.resize(0)


def _ivf_of(faiss_index):
    try:
        return import_faiss().extract_index_ivf(faiss_index)
    except (RuntimeError, AttributeError, TypeError):
        return None


def _hnsw_quantizer(ivf):
    quantizer = import_faiss().downcast_index(ivf.quantizer)
    return getattr(quantizer, "hnsw", None)


def search_param_names(faiss_index) -> tuple[str, ...]:
    """Which of ``nprobe`` / ``ef_search`` / ``refine_factor`` apply to ``faiss_index``."""
    names = ()
    ivf = _ivf_of(faiss_index)
    if ivf is not None:
        names += ("nprobe",)
    if getattr(faiss_index, "hnsw", None) is not None or (
            ivf is not None and _hnsw_quantizer(ivf) is not None):
        names += ("ef_search",)
    if hasattr(faiss_index, "k_factor"):
        names += ("refine_factor",)
    return names


def set_search_params(faiss_index, nprobe: int, ef_search: int, refine_factor: int = 16) -> None:
    """Set the configured search depth on ``faiss_index`` (where it applies).

    An HNSW coarse quantizer searches ``max(ef_search, nprobe)`` deep (it must return
    ``nprobe`` lists); an ``IndexRefine`` re-scores ``refine_factor * k`` PQ candidates.
    """
    nprobe = check_positive_int(nprobe, "nprobe")
    ef_search = check_positive_int(ef_search, "ef_search")
    refine_factor = check_positive_int(refine_factor, "refine_factor")
    ivf = _ivf_of(faiss_index)
    if ivf is not None:
        ivf.nprobe = nprobe
        quantizer_hnsw = _hnsw_quantizer(ivf)
        if quantizer_hnsw is not None:
            quantizer_hnsw.efSearch = max(ef_search, nprobe)
    hnsw = getattr(faiss_index, "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = ef_search
    if hasattr(faiss_index, "k_factor"):
        faiss_index.k_factor = float(refine_factor)


def search(faiss_index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``faiss_index.search(queries, k)`` without changing the index.

    An HNSW beam narrower than ``k`` is widened for this call only (``SearchParametersHNSW``);
    the configured ``efSearch`` stays, so later searches and :meth:`save` see it unchanged.
    """
    hnsw = getattr(faiss_index, "hnsw", None)
    params: Any = None
    if hnsw is not None and hnsw.efSearch < k:
        params = import_faiss().SearchParametersHNSW()
        params.efSearch = int(k)
    if params is None:
        return faiss_index.search(queries, k)
    return faiss_index.search(queries, k, params=params)
