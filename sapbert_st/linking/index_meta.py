"""``sapbert_st_cli.json``: written next to an index so that ``link --index`` finds its model.

It lives beside the index (not in the CLI) because the quickstart writes it too: the CLI
and the quickstart both import it from here, and nothing here imports either.

``sapbert-st index`` and the quickstart write it; ``sapbert-st link --index`` reads it
when no ``--model`` is given. It is parsed defensively: a file that is not UTF-8, not
JSON, not an object or lacks a ``model`` string is an error naming the file and what was
expected, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sapbert_st.linking.index_folder import IndexFolderError

INDEX_META = "sapbert_st_cli.json"


def index_meta_text(model: str, dictionary: str, max_seq_length: int | None) -> str:
    """The JSON text of the file: the model's folder (absolute) or Hub id, the dictionary
    spec it was built from and the token limit it was encoded with."""
    return json.dumps({"model": model, "dictionary": dictionary,
                       "max_seq_length": max_seq_length}, indent=2) + "\n"


def write_index_meta(folder: str | os.PathLike, model: str, dictionary: str,
                     max_seq_length: int | None) -> Path:
    path = Path(folder) / INDEX_META
    path.write_text(index_meta_text(model, dictionary, max_seq_length), encoding="utf-8")
    return path


def read_index_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``{"model": str, "max_seq_length": int | None, "dictionary": str | None}`` of an index.

    Raises:
        IndexFolderError: the file is missing, unreadable, not UTF-8 JSON, or its fields have the
            wrong type; the message names the file and says to pass ``--model`` instead.
    """
    path = Path(folder) / INDEX_META
    expected = ("expected the JSON object that `sapbert-st index` writes; rebuild the index or "
                "pass --model")
    if not path.is_file():
        raise IndexFolderError(f"--index {folder}: no {INDEX_META} saying which model built it; "
                         f"pass --model")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise IndexFolderError(f"{path}: not UTF-8 (byte {exc.start}: {exc.object[exc.start:exc.start + 4]!r}); "
                         f"{expected}") from exc
    except json.JSONDecodeError as exc:
        raise IndexFolderError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
                         f"{exc.colno}); {expected}") from exc
    except OSError as exc:
        raise IndexFolderError(f"{path}: cannot read it ({exc.strerror or exc}); pass --model") from exc
    if not isinstance(data, dict):
        raise IndexFolderError(f"{path}: expected a JSON object with a 'model' field, got a JSON "
                         f"{type(data).__name__}; rebuild the index or pass --model")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise IndexFolderError(f"{path}: 'model': expected the model folder or Hub id as a string, got "
                         f"{model!r}; rebuild the index or pass --model")
    length = data.get("max_seq_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 2):
        raise IndexFolderError(f"{path}: 'max_seq_length': expected an integer >= 2 or null, got "
                         f"{length!r}; fix it or pass --model and --max-seq-length")
    dictionary = data.get("dictionary")
    return {"model": model, "max_seq_length": length,
            "dictionary": dictionary if isinstance(dictionary, str) else None}
