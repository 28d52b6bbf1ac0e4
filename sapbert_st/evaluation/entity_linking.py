"""EntityLinkingEvaluator: acc@k of dictionary retrieval, the SapBERT / BioSyn protocol."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from sapbert_st.data.normalization import check_lowercase, normalize_name
from sapbert_st.linking.dictionary import dictionary_columns
from sapbert_st.linking.embeddings import resolve_similarity
from sapbert_st.linking.index import DictionaryIndex
from sapbert_st.progress import resolve_show_progress_bar

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def split_composite(text: str) -> list[str]:
    """Split a composite mention or gold id on ``|`` and ``+``, as the reference does."""
    return text.replace("+", "|").split("|")


def _query_columns(mentions, gold) -> tuple[list[str], list[str]]:
    column_names = getattr(mentions, "column_names", None)
    if column_names is not None:
        if gold is not None:
            raise ValueError("gold: pass gold=None with a queries dataset (its 'gold' or "
                             "'cuis' column is used)")
        if "mention" not in column_names or not ({"gold", "cuis"} & set(column_names)):
            raise ValueError(f"mentions: the queries dataset needs a 'mention' column and a "
                             f"'gold' or 'cuis' column, got {column_names}")
        dataset = mentions
        mentions = list(dataset["mention"])
        if "gold" in column_names:
            gold = list(dataset["gold"])
        else:
            gold = ["|".join(cuis) for cuis in dataset["cuis"]]
    if isinstance(mentions, str) or isinstance(gold, str):
        raise TypeError("mentions and gold: expected lists of strings, got a single string")
    if gold is None:
        raise ValueError("gold: required with a list of mentions (one gold id string each, "
                         "e.g. 'D019572|D010871')")
    mentions, gold = list(mentions), list(gold)
    if len(mentions) != len(gold):
        raise ValueError(f"gold: {len(gold)} gold ids for {len(mentions)} mentions; expected "
                         f"one per mention")
    if not mentions:
        raise ValueError("mentions: no queries; expected at least one mention")
    for i, (mention, ids) in enumerate(zip(mentions, gold)):
        if not isinstance(mention, str):
            raise TypeError(f"mentions[{i}]: expected a str, got {type(mention).__name__} "
                            f"{mention!r}")
        if not isinstance(ids, str):
            raise TypeError(f"gold[{i}]: expected a str like 'D019572|D010871', got "
                            f"{type(ids).__name__} {ids!r}")
        if any(not part.strip() for part in split_composite(mention)):
            raise ValueError(f"mentions[{i}]: empty mention or empty composite part in "
                             f"{mention!r}; expected text between the '|'/'+' separators")
        if any(not part.strip() for part in split_composite(ids)):
            raise ValueError(f"gold[{i}]: empty id in {ids!r} (mention {mention!r})")
    return mentions, gold


class EntityLinkingEvaluator(SentenceEvaluator):
    """Accuracy@k of linking mentions to a dictionary, exactly as SapBERT and BioSyn score it.

    For each call the dictionary is encoded with the model and every mention is linked by
    exact nearest-neighbour search (:class:`~sapbert_st.linking.DictionaryIndex`, by the
    model's own ``similarity_fn_name`` unless ``similarity`` is given). With ``index=`` a
    prebuilt (e.g. loaded) index is searched instead and nothing is re-encoded but the
    mentions: the same protocol, with the index's dictionary and similarity. The protocol follows
    ``evaluation/utils.py`` of cambridgeltl/sapbert (``predict_topk``,
    ``check_label``, ``evaluate_topk_acc``), itself BioSyn's:

    1. A composite mention is split on ``|`` and ``+`` and each part is retrieved on its
       own; the gold string is split the same way into a set of gold ids.
    2. Each part's top k are dictionary **rows** (names), not distinct concepts: two
       synonyms of one concept take two of the k places, as in the reference.
    3. A row is correct when its id, split on ``|`` (dictionary ids may be ``|``-joined),
       shares any id with the query's whole gold set (composite gold ids are not aligned
       to parts).
    4. A part is correct at k when any of its top-k rows is; a query is correct at k only
       when all its parts are. ``acc@k`` is the fraction of correct queries.

    **Ties** are broken by dictionary order (the earlier row first), the result of a
    stable sort of the float64 scores. The reference leaves ties to ``torch.argsort`` on
    GPU (unspecified order), so it may differ from this only on exactly tied scores, e.g.
    one name listed under two CUIs.

    Mentions and names are used as given by default: the reference lowercases both when
    loading (the ``sapbert_st.data`` loaders do too, unless ``lowercase=False``). With
    ``lowercase=True`` / ``False`` the evaluator normalises them itself
    (:func:`~sapbert_st.data.normalization.normalize_name`: NFC, and lowercasing only
    with ``True``), so that a cased model (XLM-R, the cross-lingual SapBERT) is scored on
    cased names.

    After a call, ``ranks`` holds each query's rank (1-based) at which it first becomes
    correct, ``inf`` beyond ``max(accuracy_at_k)``: the per-query record behind ``acc@k``,
    for error analysis and paired comparisons of two models on the same queries.

    Args:
        mentions: Query mentions (list of str), or a ``datasets.Dataset`` with ``mention``
            and ``gold`` (or ``cuis``) columns, as the ``sapbert_st.data`` loaders return.
        gold: One gold id string per mention, e.g. ``"D019572|D010871"`` (not with a
            Dataset).
        dictionary_names: Dictionary names, or a Dataset with ``name`` and ``cui`` columns
            (not with ``index``).
        dictionary_cuis: The id of each name (not with a Dataset).
        batch_size: Encoding batch size (default: 64 on CPU, 256 on GPUs).
        show_progress_bar: ``None``: on when the logger is at INFO.
        name: Prefix of the metric names (``f"{name}_acc@{k}"``) and of the CSV file.
        write_csv: Write the metrics to ``entity_linking_evaluation_{name}_results.csv`` in
            ``output_path``.
        accuracy_at_k: The k values to report; the reference reports acc@1 and acc@5.
        save_predictions: Also write each query's top candidates as JSON
            (``entity_linking_predictions_{name}.json``, the reference's layout).
        similarity: ``"dot"`` (SapBERT's) or ``"cosine"``; ``None``: the evaluated model's
            own ``model.similarity_fn_name`` (with ``index``: the index's; a different
            explicit value is an error).
        dtype: Dictionary embedding storage, ``"float32"`` or ``"float16"``.
        index: A :class:`~sapbert_st.linking.DictionaryIndex` to search instead of encoding
            ``dictionary_names`` on every call. Mentions are encoded with the evaluated
            model, which must match the one that built the index (its fingerprint), or
            with the index's own model when the evaluator is called with ``model=None``.
            An approximate index gives approximate accuracies (a warning says so).
        lowercase: ``None`` (default): mentions and names as given. ``True``: NFC and
            lowercase both (the English recipe); ``False``: NFC only, case kept (the
            cross-lingual recipe). With ``index`` only the mentions are normalised (the
            index holds its names as they were indexed).

    References:
        - Liu et al., "Self-Alignment Pretraining for Biomedical Entity Representations",
          NAACL 2021. https://arxiv.org/abs/2010.11784
        - https://github.com/cambridgeltl/sapbert (``evaluation/utils.py``)
        - Sung et al., "Biomedical Entity Representations with Synonym Marginalization",
          ACL 2020 (BioSyn). https://github.com/dmis-lab/BioSyn

    Example:
        ::

            from sapbert_st import load_sapbert
            from sapbert_st.evaluation import EntityLinkingEvaluator

            model = load_sapbert("cambridgeltl/SapBERT-from-PubMedBERT-fulltext")
            evaluator = EntityLinkingEvaluator(
                ["pineal tumours|retinal tumors", "dm"], ["D019572|D010871", "D009223"],
                ["pinealoma", "retinal neoplasm", "myotonic dystrophy"],
                ["D019572", "D010871", "D009223"], name="ncbi-test",
            )
            evaluator(model)  # {'ncbi-test_acc@1': ..., 'ncbi-test_acc@5': ...}
    """

    def __init__(
        self,
        mentions,
        gold: Sequence[str] | None = None,
        dictionary_names=None,
        dictionary_cuis: Sequence[str] | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        name: str = "",
        write_csv: bool = True,
        accuracy_at_k: Sequence[int] = (1, 5),
        save_predictions: bool = False,
        similarity: str | None = None,
        dtype: str = "float32",
        index: DictionaryIndex | None = None,
        lowercase: bool | None = None,
    ) -> None:
        super().__init__()
        self.mentions, self.gold = _query_columns(mentions, gold)
        if lowercase is not None:
            check_lowercase(lowercase)
            self.mentions = [normalize_name(m, lowercase) for m in self.mentions]
        self.lowercase = lowercase
        if similarity is not None:
            resolve_similarity(similarity)
        if index is not None:
            if not isinstance(index, DictionaryIndex):
                raise TypeError(f"index: expected a DictionaryIndex, got {type(index).__name__}")
            if dictionary_names is not None or dictionary_cuis is not None:
                raise ValueError("dictionary_names: pass either a dictionary or index=, not "
                                 "both (the index holds its dictionary)")
            if similarity is not None and similarity != index.similarity:
                raise ValueError(f"similarity: {similarity!r}, but the index was built with "
                                 f"similarity={index.similarity!r}; pass similarity=None or "
                                 f"rebuild the index")
            if index.index_type != "flat":
                logger.warning("index: approximate (index_type=%r); acc@k will be approximate, "
                               "not the exact protocol", index.index_type)
            self.dictionary_names, self.dictionary_cuis = index.names, index.ids
        else:
            if dictionary_names is None:
                raise ValueError("dictionary_names: required (a list of names or a Dataset "
                                 "with 'name' and 'cui' columns), or pass index=")
            self.dictionary_names, self.dictionary_cuis = dictionary_columns(
                dictionary_names, dictionary_cuis, argument="dictionary_names")
            if lowercase is not None:
                import pyarrow as pa

                self.dictionary_names = pa.array(
                    [normalize_name(n, lowercase) for n in self.dictionary_names.to_pylist()],
                    type=self.dictionary_names.type)
        if len(self.dictionary_names) == 0:
            raise ValueError("dictionary_names: the dictionary is empty; expected at least "
                             "one name")
        self.index = index
        ks = list(accuracy_at_k)
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"accuracy_at_k: expected positive ints, got {accuracy_at_k!r}")
        self.accuracy_at_k = sorted(set(ks))
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.name = name
        self.write_csv = write_csv
        self.save_predictions = save_predictions
        self.similarity = similarity
        #: The similarity of the last call (``similarity``, the model's or the index's own).
        self.similarity_used: str | None = index.similarity if index is not None else None
        self.dtype = dtype
        self.primary_metric = f"acc@{1 if 1 in self.accuracy_at_k else self.accuracy_at_k[0]}"
        self.csv_file = f"entity_linking_evaluation{'_' + name if name else ''}_results.csv"
        self.csv_headers = ["epoch", "steps"] + [f"acc@{k}" for k in self.accuracy_at_k]
        self.predictions_file = f"entity_linking_predictions{'_' + name if name else ''}.json"

        self._parts = [split_composite(m) for m in self.mentions]
        self._gold_sets = [set(split_composite(g)) for g in self.gold]
        self.predictions: list[dict[str, Any]] | None = None
        self.ranks: np.ndarray | None = None

    def __call__(self, model: SentenceTransformer, output_path: str | None = None,
                 epoch: int = -1, steps: int = -1) -> dict[str, float]:
        if epoch != -1:
            out_txt = f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
        else:
            out_txt = ""
        logger.info("Entity linking evaluation of the model on the %s dataset%s:",
                    self.name or "given", out_txt)
        metrics = self.compute_metrics(model)
        for key, value in metrics.items():
            logger.info("%-8s %.4f", key, value)

        if output_path is not None and self.write_csv:
            os.makedirs(output_path, exist_ok=True)
            path = os.path.join(output_path, self.csv_file)
            new = not os.path.isfile(path)
            with open(path, "a" if not new else "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(self.csv_headers)
                writer.writerow([epoch, steps] + [metrics[f"acc@{k}"] for k in self.accuracy_at_k])
        if output_path is not None and self.save_predictions:
            os.makedirs(output_path, exist_ok=True)
            with open(os.path.join(output_path, self.predictions_file), "w",
                      encoding="utf-8") as handle:
                json.dump({"queries": self.predictions, **metrics}, handle, indent=1)

        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_metrics(self, model: SentenceTransformer | None) -> dict[str, float]:
        """Encode the dictionary (unless the evaluator has an ``index``) and the mention
        parts, retrieve, and score (no side effects except ``self.predictions``,
        ``self.ranks`` and ``self.similarity_used``)."""
        show = resolve_show_progress_bar(self.show_progress_bar, logger)
        if self.index is not None:
            index = self.index
            encoder = model if model is not None else index.model
            check = model is not None  # against the fingerprint the index was built with
        else:
            index = DictionaryIndex.build(
                model, self.dictionary_names, self.dictionary_cuis, similarity=self.similarity,
                dtype=self.dtype, batch_size=self.batch_size, show_progress_bar=show,
            )
            encoder, check = None, False
        self.similarity_used = getattr(index, "similarity", self.similarity)
        unique_parts = list(dict.fromkeys(p for parts in self._parts for p in parts))
        position = {part: i for i, part in enumerate(unique_parts)}
        encode_kwargs = {"model": encoder} if encoder is not None else {}
        embeddings = index.encode_mentions(unique_parts, batch_size=self.batch_size,
                                           show_progress_bar=show, check_model=check,
                                           **encode_kwargs)
        top = max(self.accuracy_at_k)
        rows, scores = index.search_rows(embeddings, top)
        ids = index.id_list()
        row_ids: dict[int, set[str]] = {}

        def ids_of(row: int) -> set[str]:
            if row not in row_ids:
                row_ids[row] = set(ids[row].split("|"))
            return row_ids[row]

        # first_hit[q] = smallest rank (1-based) at which every part has a correct row
        first_hit = np.full(len(self.mentions), np.inf)
        predictions = []
        names = None
        if self.save_predictions:
            names = index.names.take(np.unique(rows[rows >= 0])).to_pylist()
            name_of = dict(zip(np.unique(rows[rows >= 0]).tolist(), names))
        for q, (parts, gold) in enumerate(zip(self._parts, self._gold_sets)):
            worst = 0.0
            mentions_out = []
            for part in parts:
                p = position[part]
                labels = [bool(ids_of(int(r)) & gold) for r in rows[p] if r >= 0]
                rank = next((i + 1 for i, label in enumerate(labels) if label), np.inf)
                worst = max(worst, rank)
                if self.save_predictions:
                    mentions_out.append({
                        "mention": part, "golden_cui": self.gold[q],
                        "candidates": [
                            {"name": name_of[int(r)], "labelcui": ids[int(r)], "label": int(label),
                             "score": float(s)}
                            for r, s, label in zip(rows[p], scores[p], labels)
                        ],
                    })
            first_hit[q] = worst
            if self.save_predictions:
                predictions.append({"mentions": mentions_out})
        self.predictions = predictions if self.save_predictions else None
        self.ranks = first_hit
        return {f"acc@{k}": float(np.mean(first_hit <= k)) for k in self.accuracy_at_k}

    @property
    def description(self) -> str:
        return "Entity Linking"

    def get_config_dict(self) -> dict[str, Any]:
        return {"accuracy_at_k": self.accuracy_at_k,
                "similarity": self.similarity or self.similarity_used, "lowercase": self.lowercase,
                "dictionary_size": len(self.dictionary_names), "queries": len(self.mentions)}
