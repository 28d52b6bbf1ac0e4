"""A :class:`~sapbert_st.linking.Linker` from a :class:`~sapbert_st.kb.KnowledgeBase`.

Every name of every concept (canonical name and aliases) becomes a row of the dense
:class:`~sapbert_st.linking.DictionaryIndex`; the kb stays attached to the linker, so each
result carries the concept's canonical name and semantic types and linking can be
restricted to types (``linker.link(mentions, types=["T047"])``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sapbert_st.kb import KnowledgeBase
from sapbert_st.linking.index import DictionaryIndex
from sapbert_st.linking.pipeline import Linker

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def build_linker(model: SentenceTransformer, kb: KnowledgeBase, *,
                 threshold: float | None = None, **index_options: Any) -> Linker:
    """Index every name of ``kb`` with ``model`` and return a :class:`Linker` with ``kb``.

    Args:
        model: The bi-encoder (e.g. from :func:`sapbert_st.load_sapbert`).
        kb: The knowledge base.
        threshold: The linker's NIL threshold (None: never NIL).
        index_options: Passed to :meth:`DictionaryIndex.build` (``similarity``,
            ``index_type``, ``dtype``, ``embeddings_path`` for an on-disk memmap, ...).

    Example:
        ::

            kb = KnowledgeBase.read_jsonl("medic.jsonl")
            linker = build_linker(load_sapbert(path), kb, threshold=0.8)
            linker.save("medic-linker")
    """
    if not isinstance(kb, KnowledgeBase):
        raise TypeError(f"kb: expected a KnowledgeBase, got {type(kb).__name__}")
    if not len(kb):
        raise ValueError("kb: the knowledge base is empty; expected at least one concept")
    names, ids = kb.dictionary()
    index = DictionaryIndex.build(model, names, ids, **index_options)
    return Linker(index, kb=kb, threshold=threshold)
