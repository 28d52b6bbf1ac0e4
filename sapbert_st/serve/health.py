"""What ``GET /health`` reports: which model and index are served, their sizes, the versions.

The fingerprints let a client check that two replicas serve the same thing: the model's
is :func:`~sapbert_st.linking.model_fingerprint`'s digest (probe embeddings), the index's
a blake2b of its names and ids. They are computed once, when the app is created.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from typing import Any

from sapbert_st.linking import Linker
from sapbert_st.linking.dictionary import strings_digest

_PACKAGES = ("sapbert-st", "sentence-transformers", "transformers", "torch", "faiss-cpu",
             "fastapi", "pydantic", "uvicorn")


def versions() -> dict[str, str | None]:
    """Installed versions of Python and of the packages the service runs on."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def linker_stages(linker: Linker) -> list[str]:
    """The stages a mention goes through, in order."""
    return (["dense"] + (["sparse"] if getattr(linker, "sparse", None) is not None else [])
            + (["rerank"] if getattr(linker, "reranker", None) is not None else []))


def service_info(linker: Linker, annotate: bool) -> dict[str, Any]:
    """The static part of ``/health``: model, index, kb, stages, versions."""
    import pyarrow.compute as pc

    index = linker.index
    fingerprint = index.fingerprint or {}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(strings_digest(index.names).encode())
    digest.update(strings_digest(index.ids).encode())
    return {
        "model": {"name": fingerprint.get("model_name"),
                  "dimension": fingerprint.get("dimension", index.dimension),
                  "max_seq_length": fingerprint.get("max_seq_length"),
                  "fingerprint": fingerprint.get("digest")},
        "index": {"names": len(index), "concepts": int(pc.count_distinct(index.ids).as_py()),
                  "similarity": index.similarity, "index_type": index.index_type,
                  "dtype": index.config.get("dtype"), "fingerprint": digest.hexdigest()},
        "kb": {"concepts": len(linker.kb)} if linker.kb is not None else None,
        "stages": linker_stages(linker),
        "reranker_reads_context": bool(getattr(linker.reranker, "use_context", False)),
        "threshold": linker.threshold,
        "annotate": annotate,
        "versions": versions(),
    }


def resident_memory_mb() -> float | None:
    """This process's resident set size in MB (Linux ``/proc``), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
