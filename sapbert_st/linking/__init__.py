"""Entity linking: nearest-neighbour search over a dictionary of concept names.

Modules, bottom up: ``checks`` (argument checks), ``dictionary`` (names and ids),
``encoding`` (``encode_texts``, model fingerprints), ``embeddings`` (checks and hashes of
the stored embeddings), ``approximate`` (faiss), ``index_folder`` (the saved folder) and
``index`` (:class:`DictionaryIndex`), ``sparse`` (:class:`SparseIndex`: char n-gram TF-IDF
candidates), ``fusion`` (:class:`HybridFusion`: dense + sparse), ``rerank``
(:class:`CrossEncoderReranker`) and ``rerank_training`` (its hard negatives and training),
and ``pipeline`` (:class:`Linker`: the stages together).
"""

from sapbert_st.linking.encoding import IndexMismatchError, encode_texts, model_fingerprint
from sapbert_st.linking.fusion import HybridFusion
from sapbert_st.linking.index import DictionaryIndex
from sapbert_st.linking.index_folder import IndexFolderError
from sapbert_st.linking.pipeline import LinkCandidate, Linker
from sapbert_st.linking.rerank import CrossEncoderReranker, load_cross_encoder
from sapbert_st.linking.rerank_training import mine_reranker_examples, train_reranker
from sapbert_st.linking.sparse import SparseIndex, SparseIndexError

__all__ = ["CrossEncoderReranker", "DictionaryIndex", "HybridFusion", "IndexFolderError",
           "IndexMismatchError", "LinkCandidate", "Linker", "SparseIndex", "SparseIndexError",
           "encode_texts", "load_cross_encoder", "mine_reranker_examples", "model_fingerprint",
           "train_reranker"]
