"""The dictionary of an index: names and their concept ids as two aligned Arrow string columns.

Names and ids come from lists or from a ``datasets.Dataset`` with ``name`` and ``cui``
columns. Missing (None) and blank (empty or whitespace-only) values are rejected, naming
the row; tabs and newlines inside a value are kept (escaping them is the CLI's business).
:func:`strings_digest` hashes a column for the saved-folder format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows hashed per step by :func:`strings_digest` (bounds the copies it makes).
_DIGEST_ROWS = 1 << 20


def as_string_array(values, argument: str, check_blank: bool = False) -> pa.Array:
    """``values`` (a list of str, or an Arrow string array) as a ``large_string`` Arrow array.

    Raises TypeError for anything but a sequence of str and ValueError for missing values
    and, with ``check_blank``, for empty or whitespace-only ones.
    """
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            raise TypeError(f"{argument}: expected strings, got an arrow array of {array.type}")
    else:
        _check_container(values, argument)
        values = list(values)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise TypeError(f"{argument}[{i}]: expected a str, got {type(value).__name__} "
                                f"{value!r}")
        array = pa.array(values, type=pa.large_string())
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"{argument}: {array.null_count} missing (None) values, the first at "
                         f"{argument}[{row}]")
    array = array.cast(pa.large_string())
    if check_blank:
        check_not_blank(array, argument)
    return array


def _check_container(values, argument: str) -> None:
    """Reject the containers that ``list()`` would silently turn into the wrong strings."""
    if values is None:
        raise TypeError(f"{argument}: expected a list of strings, got None")
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{argument}: expected a list of strings, got one string {values!r}")
    if isinstance(values, Mapping):
        raise TypeError(f"{argument}: expected a list of strings, got a {type(values).__name__}; "
                        f"pass its keys and values as two lists (names=list(d), "
                        f"cuis=list(d.values()))")
    if isinstance(values, AbstractSet):
        raise TypeError(f"{argument}: expected a list of strings, got a {type(values).__name__} "
                        f"(unordered, so it cannot stay aligned with the ids)")
    if hasattr(values, "columns") and hasattr(values, "iloc"):  # a pandas DataFrame
        raise TypeError(f"{argument}: expected a list of strings or a datasets.Dataset, got a "
                        f"DataFrame; pass df['name'] and df['cui'], or "
                        f"datasets.Dataset.from_pandas(df)")
    if not hasattr(values, "__iter__"):
        raise TypeError(f"{argument}: expected a list of strings, got {type(values).__name__} "
                        f"{values!r}")


def check_not_blank(array: pa.Array, argument: str) -> None:
    """ValueError naming the first empty or whitespace-only value of ``array``."""
    import pyarrow.compute as pc

    blank = pc.or_(pc.equal(pc.binary_length(array), 0), pc.utf8_is_space(array))
    count = pc.sum(blank).as_py() or 0
    if count:
        row = int(np.flatnonzero(blank.to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"{argument}[{row}]: blank value {array[row].as_py()!r} ({count} blank "
                         f"in all); expected text, e.g. drop the empty rows first")


def dictionary_columns(names, cuis=None, argument: str = "names",
                       check_blank: bool = True) -> tuple[pa.Array, pa.Array]:
    """Names and ids from lists, or from a ``datasets.Dataset`` with ``name`` and ``cui`` columns.

    Returns two aligned ``large_string`` arrays. ``check_blank=False`` accepts blank values
    (only for indexes that were saved with them).
    """
    if names is None:
        raise TypeError(f"{argument}: expected a list of names or a datasets.Dataset with "
                        f"'name' and 'cui' columns, got None")
    column_names = getattr(names, "column_names", None)
    if isinstance(column_names, dict):  # a DatasetDict
        raise TypeError(f"{argument}: expected one dictionary, got a {type(names).__name__} with "
                        f"splits {sorted(column_names)}; pass one split, e.g. {argument}['train']")
    if column_names is not None:
        missing = {"name", "cui"} - set(column_names)
        if missing:
            raise ValueError(f"{argument}: the dataset needs columns 'name' and 'cui', "
                             f"got {column_names}")
        if cuis is not None:
            raise ValueError(f"{argument}: pass cuis=None with a dataset (its 'cui' column is used)")
        arrow = names.with_format("arrow")  # respects filtered/shuffled views
        names, cuis = arrow["name"], arrow["cui"]
    if cuis is None:
        raise ValueError(f"{argument}: cuis is required with a list of names")
    name_array = as_string_array(names, argument, check_blank)
    id_array = as_string_array(cuis, "cuis", check_blank)
    if len(name_array) != len(id_array):
        raise ValueError(f"{argument}: {len(name_array)} names but {len(id_array)} cuis; "
                         f"expected one cui per name")
    return name_array, id_array


def strings_digest(values) -> str:
    """blake2b of a string column's values, independent of its chunking and offset width.

    Streams the value lengths and the UTF-8 bytes in steps of 2**20 rows (no full copy).
    """
    import pyarrow as pa

    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    lengths = hashlib.blake2b(digest_size=16)
    data = hashlib.blake2b(digest_size=16)
    count = 0
    for chunk in chunks:
        chunk = chunk.cast(pa.large_string())
        for start in range(0, len(chunk), _DIGEST_ROWS):
            part = chunk.slice(start, _DIGEST_ROWS)
            _, offsets_buffer, data_buffer = part.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=len(part) + 1,
                                    offset=part.offset * 8)
            lengths.update(np.diff(offsets).astype("<i8").tobytes())
            if data_buffer is not None and offsets[-1] > offsets[0]:
                data.update(memoryview(data_buffer)[int(offsets[0]):int(offsets[-1])])
            count += len(part)
    total = hashlib.blake2b(digest_size=16)
    total.update(count.to_bytes(8, "little") + lengths.digest() + data.digest())
    return total.hexdigest()
