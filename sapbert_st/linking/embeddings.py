"""The stored name embeddings: one streaming pass that checks them, measures them and hashes them.

An index keeps an ``(n, d)`` float32 or float16 matrix, in RAM or memory-mapped. A row
that is NaN or infinite is never returned by faiss (so links silently go missing), an
all-zero matrix links everything to row 0, and unnormalized rows make ``"cosine"`` scores
meaningless; :func:`scan_embeddings` finds all three in one pass over bounded chunks,
which also gives the largest row norm (for the exactness bound) and, when asked, the
blake2b content hash the saved-folder format records.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16")
SIMILARITIES = ("dot", "cosine")


def resolve_similarity(similarity: str | None, model=None, argument: str = "similarity") -> str:
    """``similarity``, or with ``None`` the model's own ``similarity_fn_name``.

    ``None`` without a model, or with one that has no ``similarity_fn_name`` (not a
    SentenceTransformer), is ``"dot"`` (SapBERT's). Only ``"dot"`` and ``"cosine"`` can be
    searched; anything else is a ValueError naming ``argument`` and the value.
    """
    if similarity is None:
        own = getattr(model, "similarity_fn_name", None)
        if own is None:
            return "dot"
        if own not in SIMILARITIES:
            raise ValueError(
                f"{argument}: None means the model's own similarity_fn_name, which is "
                f"{own!r}; only {SIMILARITIES} can be searched: pass {argument}='dot' or "
                f"'cosine'")
        return own
    if similarity not in SIMILARITIES:
        raise ValueError(f"{argument}: expected one of {SIMILARITIES} or None (the model's "
                         f"own similarity_fn_name), got {similarity!r}")
    return similarity

#: |norm - 1| accepted for ``similarity="cosine"``: loose enough for rows normalized in
#: bfloat16 or stored as float16, tight enough to catch rows that were never normalized.
UNIT_NORM_TOLERANCE = 1e-2

#: Bytes of float64 norms work per chunk of the scan.
_CHUNK_BYTES = 1 << 25

#: Rows hashed by :func:`sample_digest`.
SAMPLE_ROWS = 1024


def check_embeddings_array(embeddings, where: str = "embeddings") -> np.ndarray:
    """``embeddings`` as a 2-d float32/float16 ndarray (memmaps kept), else a ValueError."""
    if not isinstance(embeddings, np.ndarray):
        embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.dtype not in (np.float32, np.float16):
        raise ValueError(f"{where}: expected a 2-d float32/float16 array, got "
                         f"{embeddings.ndim}-d {embeddings.dtype}")
    return embeddings


@dataclass(frozen=True)
class EmbeddingScan:
    """What :func:`scan_embeddings` found (rows are 0-based; ``None``: no such row)."""

    rows: int
    max_norm: float
    nonfinite_rows: int = 0
    first_nonfinite_row: int | None = None
    zero_rows: int = 0
    first_zero_row: int | None = None
    off_unit_rows: int = 0
    first_off_unit_row: int | None = None
    first_off_unit_norm: float | None = None
    digest: str | None = None

    def problem(self, similarity: str) -> tuple[int | None, str] | None:
        """``(row, description)`` of the first defect, or ``None`` when the rows are usable.

        Zero rows are a defect only for ``"cosine"`` (they cannot be normalized) or when
        every row is zero.
        """
        if self.first_nonfinite_row is not None:
            return self.first_nonfinite_row, (
                f"is not finite ({self.nonfinite_rows} of {self.rows} rows hold NaN or "
                f"infinite values)")
        if self.rows and self.max_norm == 0:
            return None, f"all {self.rows} rows are zero"
        if similarity == "cosine" and self.first_off_unit_row is not None:
            return self.first_off_unit_row, (
                f"has L2 norm {self.first_off_unit_norm:.6g} ({self.off_unit_rows} of "
                f"{self.rows} rows are not unit-norm), but similarity='cosine' needs "
                f"L2-normalized rows: normalize them first "
                f"(x / np.linalg.norm(x, axis=1, keepdims=True)) or use similarity='dot'")
        return None

    def check(self, where: str, similarity: str, error: type[Exception] = ValueError) -> None:
        """Raise ``error`` naming ``where`` and the first bad row; log zero rows."""
        found = self.problem(similarity)
        if found is not None:
            row, description = found
            at = f"row {row} " if row is not None else ""
            raise error(f"{where}: {at}{description}; expected finite, non-zero embeddings")
        if self.zero_rows:
            logger.warning("%s: %d all-zero rows (the first: row %d) score 0 against every "
                           "mention", where, self.zero_rows, self.first_zero_row)


def _chunk_rows(dim: int) -> int:
    return max(1, _CHUNK_BYTES // max(1, 8 * dim))


def _first(mask: np.ndarray, start: int) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) + start if len(hits) else None


def scan_embeddings(embeddings: np.ndarray, digest: bool = False) -> EmbeddingScan:
    """One streaming pass: row norms (in float64), defects, and optionally the blake2b hash.

    The hash covers the raw bytes of the stored dtype in row-major order, so it changes
    with any value, the dtype or the row order. Memory: O(32 MB) beyond the array.
    """
    n, dim = embeddings.shape
    hasher = hashlib.blake2b(digest_size=16) if digest else None
    max_norm2 = 0.0
    found: dict[str, object] = {}
    counts = {"nonfinite": 0, "zero": 0, "off_unit": 0}
    step = _chunk_rows(dim)
    for start in range(0, n, step):
        block = np.ascontiguousarray(embeddings[start:start + step])
        if hasher is not None:
            hasher.update(block)
        norm2 = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        finite = np.isfinite(norm2)  # a NaN or inf value makes its row's norm non-finite
        if not finite.all():
            counts["nonfinite"] += int((~finite).sum())
            found.setdefault("first_nonfinite_row", _first(~finite, start))
            norm2 = np.where(finite, norm2, 0.0)
        if len(norm2):
            max_norm2 = max(max_norm2, float(norm2.max()))
        zero = norm2 == 0
        zero &= finite
        if zero.any():
            counts["zero"] += int(zero.sum())
            found.setdefault("first_zero_row", _first(zero, start))
        off_unit = finite & (np.abs(np.sqrt(norm2) - 1.0) > UNIT_NORM_TOLERANCE)
        if off_unit.any():
            counts["off_unit"] += int(off_unit.sum())
            if "first_off_unit_row" not in found:
                row = _first(off_unit, start)
                found["first_off_unit_row"] = row
                found["first_off_unit_norm"] = float(np.sqrt(norm2[row - start]))
    return EmbeddingScan(
        rows=n, max_norm=float(np.sqrt(max_norm2)), nonfinite_rows=counts["nonfinite"],
        zero_rows=counts["zero"], off_unit_rows=counts["off_unit"],
        digest=hasher.hexdigest() if hasher is not None else None, **found)


def embeddings_digest(embeddings: np.ndarray) -> str:
    """blake2b of the raw bytes (as :func:`scan_embeddings` computes it), streamed."""
    hasher = hashlib.blake2b(digest_size=16)
    step = _chunk_rows(embeddings.shape[1]) * 8  # hashing alone needs no float64 copy
    for start in range(0, len(embeddings), step):
        hasher.update(np.ascontiguousarray(embeddings[start:start + step]))
    return hasher.hexdigest()


def sample_digest(embeddings: np.ndarray) -> str:
    """blake2b of :data:`SAMPLE_ROWS` evenly spaced rows (first and last included) and the shape.

    Reads about 1.5 MB even from a 20 GB memmap, yet tells two builds of the same size apart.
    """
    n = len(embeddings)
    rows = np.unique(np.linspace(0, max(n - 1, 0), min(n, SAMPLE_ROWS)).round().astype(np.int64))
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(repr((tuple(embeddings.shape), str(embeddings.dtype))).encode())
    if n:
        hasher.update(np.ascontiguousarray(embeddings[rows]))
    return hasher.hexdigest()
