"""SapBERT's training objective: online hard-pair mining + Multi-Similarity loss."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import all_gather, all_gather_with_grad
from torch import Tensor, nn

SAPBERT_CITATION = """
@inproceedings{liu-etal-2021-self,
    title = "Self-Alignment Pretraining for Biomedical Entity Representations",
    author = "Liu, Fangyu and Shareghi, Ehsan and Meng, Zaiqiao and Basaldella, Marco and Collier, Nigel",
    booktitle = "Proceedings of the 2021 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies",
    year = "2021",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2021.naacl-main.334",
    pages = "4228--4238",
}
"""

MULTI_SIMILARITY_CITATION = """
@inproceedings{wang2019multi,
    title = "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning",
    author = "Wang, Xun and Han, Xintong and Huang, Weilin and Dong, Dengke and Scott, Matthew R.",
    booktitle = "Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition",
    pages = "5022--5030",
    year = "2019",
}
"""

_LABEL_HINT = (
    "OnlineMiningMultiSimilarityLoss needs one integer label per row: the id of the "
    "concept (e.g. UMLS CUI) the names belong to. Map CUIs to ids first: "
    "`dataset = dataset.class_encode_column('label')` on a datasets.Dataset, or "
    "`ids = {c: i for i, c in enumerate(sorted(set(cuis)))}` and `label=ids[cui]`; merge "
    "equivalent ids (e.g. ontology xrefs) beforehand with `sapbert_st.data.concept_id_map`. "
    "sapbert_st's pair loaders (`sapbert_st.data.build_pairs`) already give an integer "
    "`label` column."
)

#: Label columns sentence-transformers' data collator turns into the ``labels`` tensor.
LABEL_COLUMNS = ("label", "labels", "score", "scores")


class OnlineMiningMultiSimilarityLoss(nn.Module):
    """Online hard-pair mining + Multi-Similarity loss over a batch of synonym names.

    Both names of every (name1, name2) pair are embedded, the 2B embeddings are
    concatenated with their labels repeated, and mined together (paper Eq. 1): a pair of
    rows is kept if it belongs to some triplet (a, p, n) with
    ``d(a, n) - d(a, p) <= margin``, where ``d`` is the L2 distance between normalized
    embeddings. The Multi-Similarity loss (paper Eq. 2) over the kept pairs, on cosine
    similarities ``S``, is averaged over all 2B rows::

        L_i = 1/alpha * log(1 + sum_{p in P_i} exp(-alpha (S_ip - base)))
            + 1/beta  * log(1 + sum_{n in N_i} exp( beta (S_in - base)))

    The mined pairs are found without enumerating triplets: (a, p) is kept iff the
    nearest negative of ``a`` satisfies the margin condition, (a, n) iff the farthest
    positive does. Time and memory are O(B^2 * D) and O(B^2), where the reference
    (pytorch-metric-learning's ``TripletMarginMiner``) materializes O(B^3) triplets.
    Values and gradients equal that reference, including its rule that a batch with at
    most one mined triplet gives zero loss.

    Args:
        model: The SentenceTransformer to train.
        alpha: Positive scale, finite and > 0; paper code default 1 (paper Table 9 lists 2).
        beta: Negative scale, finite and > 0; paper code default 60 (paper Table 9 lists 50).
        base: Similarity offset lambda, finite; paper code default 0.5 (paper Table 9 lists 0.5).
        margin: Triplet margin of the miner (epsilon in Eq. 1), finite and >= 0; default 0.2.
        mining: ``False`` uses every positive and negative pair in the batch (the
            "mining switched off" ablation of paper Table 2).
        gather_across_devices: Under ``torch.distributed`` (DDP), mine over the global
            batch: embeddings are gathered with gradient and labels without. The
            reference code did the same with ``DataParallel``. Needs a data-parallel
            trainer (on CPU: ``use_cpu=True``, as :func:`sapbert_st.train_sapbert` sets);
            identical batches on every process raise ``RuntimeError``.

    Defaults follow the code that produced the released checkpoints
    (cambridgeltl/sapbert ``src/metric_learning.py``: ``MultiSimilarityLoss(alpha=1,
    beta=60, base=0.5)`` with ``TripletMarginMiner(margin=0.2, type_of_triplets="all")``)
    rather than the paper's Table 9 (alpha=2, beta=50), because only the former is known
    to reproduce the published numbers.

    References:
        - Liu et al., Self-Alignment Pretraining for Biomedical Entity Representations,
          NAACL 2021. https://arxiv.org/abs/2010.11784
        - Wang et al., Multi-Similarity Loss with General Pair Weighting for Deep Metric
          Learning, CVPR 2019. https://arxiv.org/abs/1904.06627
        - Reference implementation: https://github.com/cambridgeltl/sapbert

    Requirements:
        1. Integer labels: one concept id per row (pairs share the label of their concept).
        2. Several concepts per batch, several names per concept (pairs give at least two).
        3. Finite embeddings. A NaN or inf row raises ``FloatingPointError`` naming the
           batch rows, in the forward pass: such a row gives a normal-looking loss but NaN
           gradients, and one AdamW step would write NaN into almost every weight.

    Inputs:
        +---------------------------------------+-----------------------+
        | Texts                                 | Labels                |
        +=======================================+=======================+
        | (name1, name2) synonym pairs          | integer concept id    |
        +---------------------------------------+-----------------------+
        | single names                          | integer concept id    |
        +---------------------------------------+-----------------------+

    Example:
        ::

            from torch.utils.data import DataLoader
            from sentence_transformers import InputExample
            from sapbert_st import OnlineMiningMSLoss, load_sapbert, paper_fit_kwargs

            model = load_sapbert("bert-base-uncased")
            examples = [InputExample(texts=["heart attack", "myocardial infarction"], label=0),
                        InputExample(texts=["flu", "influenza"], label=1)]
            loader = DataLoader(examples, batch_size=256, shuffle=True)
            model.fit(train_objectives=[(loader, OnlineMiningMSLoss(model))],
                      **paper_fit_kwargs(model.device))  # without: a 10,000-step warm-up
    """

    def __init__(
        self,
        model: SentenceTransformer,
        alpha: float = 1.0,
        beta: float = 60.0,
        base: float = 0.5,
        margin: float = 0.2,
        mining: bool = True,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__()
        _check_hyperparameters(alpha, beta, base, margin)
        self.model = model
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.base = float(base)
        self.margin = float(margin)
        self.mining = bool(mining)
        self.gather_across_devices = bool(gather_across_devices)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        sentence_features = list(sentence_features)
        if len(sentence_features) not in (1, 2):
            raise ValueError(
                f"OnlineMiningMultiSimilarityLoss takes one text column (name) or two "
                f"(name1, name2) plus a label column; got {len(sentence_features)} text "
                f"columns. Drop the others, e.g. dataset.select_columns(['name1', 'name2', "
                f"'label'])."
            )
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """Loss from already computed embeddings, one tensor per text column.

        Raises:
            ValueError: The batch is empty, or the labels are missing or not integers.
            FloatingPointError: An embedding is NaN or infinite (raised before any
                backward pass, so the optimizer never takes a step with NaN gradients).
            RuntimeError: ``gather_across_devices`` and every process holds the same
                batch: the trainer is not data-parallel (see ``_gather``).
        """
        embeddings = list(embeddings)
        if not embeddings or len(embeddings[0]) == 0:
            raise ValueError(
                "OnlineMiningMultiSimilarityLoss: empty batch (no embeddings); expected at "
                "least 2 rows of names with their labels"
            )
        labels = _check_labels(labels, len(embeddings[0]))
        if not self.gather_across_devices:  # gathered batches are checked after the gather
            _check_finite(embeddings)
        embeddings = torch.cat(embeddings, dim=0)
        labels = labels.to(embeddings.device).repeat(len(embeddings) // len(labels))
        if self.gather_across_devices:
            embeddings, labels = _gather(embeddings, labels)
        return multi_similarity_loss(
            embeddings, labels, alpha=self.alpha, beta=self.beta, base=self.base,
            margin=self.margin if self.mining else None,
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "base": self.base,
            "margin": self.margin,
            "mining": self.mining,
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        return SAPBERT_CITATION + MULTI_SIMILARITY_CITATION


#: Short alias, as the paper and the reference code call it.
OnlineMiningMSLoss = OnlineMiningMultiSimilarityLoss


def check_label_column(dataset: Any, argument: str = "dataset") -> None:
    """Refuse a dataset whose label column cannot hold concept ids, with the mapping hint.

    sentence-transformers' data collator turns the label column into a tensor before the
    loss sees a batch, so string labels (CUIs) fail there with torch's ``too many
    dimensions 'str'``. This reads only the column's feature type (and its first value for
    the message). Integer, ``ClassLabel`` and float columns pass (float labels are checked
    per batch by the loss); a dataset without features (e.g. a streamed
    ``IterableDataset``) or without a label column is not checked here.

    Args:
        dataset: A ``datasets.Dataset`` (or anything with ``features``).
        argument: How the message names the dataset.

    Raises:
        ValueError: naming the column, its type and first value, and how to map CUIs.
    """
    features = getattr(dataset, "features", None)
    if not features:
        return
    column = next((c for c in LABEL_COLUMNS if c in features), None)
    if column is None:
        return
    feature = features[column]
    dtype = getattr(feature, "dtype", None)
    if type(feature).__name__ == "ClassLabel" or (
        isinstance(dtype, str) and dtype.startswith(("int", "uint", "float"))
    ):
        return
    kind = "string" if dtype in ("string", "large_string") else f"{feature}"
    try:
        first = f" (first row: {dataset[0][column]!r:.80})"
    except Exception:  # noqa: BLE001 - the first value only decorates the message
        first = ""
    raise ValueError(f"{argument}: the {column!r} column holds {kind} values{first}. {_LABEL_HINT}")


def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    alpha: float = 1.0,
    beta: float = 60.0,
    base: float = 0.5,
    margin: float | None = 0.2,
) -> Tensor:
    """Functional form of :class:`OnlineMiningMultiSimilarityLoss` on embeddings (N, D).

    ``margin=None`` switches mining off (all pairs). Computed in float32 with autocast
    disabled, so bf16/fp16 training never produces inf/NaN here.

    Raises:
        ValueError: ``embeddings`` is empty or not 2-D, ``labels`` does not have one
            entry per row, or a hyperparameter is out of range (see the class).
        FloatingPointError: A row of ``embeddings`` is NaN or infinite. Such a row gives
            a normal-looking loss but NaN gradients, and one optimizer step would then
            write NaN into almost every weight.
    """
    _check_hyperparameters(alpha, beta, base, margin)
    if embeddings.dim() != 2 or len(embeddings) == 0:
        raise ValueError(
            f"multi_similarity_loss: expected embeddings of shape (N, D) with N >= 1, got "
            f"{tuple(embeddings.shape)}"
        )
    if labels.shape != (len(embeddings),):
        raise ValueError(
            f"multi_similarity_loss: expected one label per row ({len(embeddings)}), got "
            f"labels of shape {tuple(labels.shape)}"
        )
    _check_finite([embeddings])
    device_type = embeddings.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        x = F.normalize(embeddings.float(), p=2, dim=1)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
        pos_mask = same & ~eye
        neg_mask = ~same
        if margin is not None:
            pos_mask, neg_mask = _mine_pairs(x.detach(), pos_mask, neg_mask, margin)
        # pytorch-metric-learning returns zero loss when at most one triplet (or, without
        # mining, at most one pair of each kind) is found; the released checkpoints were
        # trained with that rule, so keep it.
        if pos_mask.sum() <= 1 and neg_mask.sum() <= 1:
            return (embeddings * 0).sum()
        sim = x @ x.t()
        pos_loss = _log_one_plus_sum_exp(alpha * (base - sim), pos_mask) / alpha
        neg_loss = _log_one_plus_sum_exp(beta * (sim - base), neg_mask) / beta
        return (pos_loss + neg_loss).mean()


def _mine_pairs(x: Tensor, pos_mask: Tensor, neg_mask: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Pairs in some triplet with ``d(a,n) - d(a,p) <= margin``, in O(N^2).

    Floating-point subtraction is monotone, so "some negative n satisfies the condition
    for (a, p)" is exactly "the nearest negative of a does", and likewise for negatives
    with the farthest positive: the kept pairs are bit-for-bit those of full enumeration.
    """
    dist = torch.cdist(x, x, p=2)
    inf = torch.tensor(float("inf"), device=x.device)
    nearest_neg = torch.where(neg_mask, dist, inf).amin(dim=1, keepdim=True)
    farthest_pos = torch.where(pos_mask, dist, -inf).amax(dim=1, keepdim=True)
    mined_pos = pos_mask & ((nearest_neg - dist) <= margin)
    mined_neg = neg_mask & ((dist - farthest_pos) <= margin)
    return mined_pos, mined_neg


def _log_one_plus_sum_exp(x: Tensor, mask: Tensor) -> Tensor:
    """Row-wise ``log(1 + sum_{mask} exp(x))``, stable, 0 for rows with an empty mask."""
    x = x.masked_fill(~mask, torch.finfo(x.dtype).min)
    x = torch.cat([x, x.new_zeros(len(x), 1)], dim=1)
    return torch.logsumexp(x, dim=1).masked_fill(~mask.any(dim=1), 0.0)


_NON_FINITE_HINT = (
    "a weight of the model is NaN/inf (a diverged earlier step or a corrupt checkpoint), or "
    "fp16 overflowed; lower the learning rate or use fp32 (or bf16)"
)


def _check_hyperparameters(alpha: float, beta: float, base: float, margin: float | None) -> None:
    """alpha and beta finite and > 0, base finite, margin finite and >= 0 (or None)."""
    for arg, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"{arg} must be > 0 and finite, got {value!r}")
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base):
        raise ValueError(
            f"base must be a finite similarity offset (the paper's lambda, 0.5 by default), "
            f"got {base!r}"
        )
    if margin is not None and (
        isinstance(margin, bool) or not isinstance(margin, (int, float))
        or not (math.isfinite(margin) and margin >= 0)
    ):
        raise ValueError(
            f"margin must be >= 0 and finite (the miner's epsilon, 0.2 by default; "
            f"mining=False uses every pair), got {margin!r}"
        )


def _check_finite(columns: list[Tensor]) -> None:
    """Raise FloatingPointError naming the batch rows whose embedding is NaN or inf."""
    bad = [torch.nonzero(~torch.isfinite(e.detach()).all(dim=1)).flatten().tolist() for e in columns]
    if not any(bad):
        return
    rows = sorted({r for column in bad for r in column})
    where = "" if len(columns) == 1 else " (" + "; ".join(
        f"text column {i + 1}: rows {_short(column)}" for i, column in enumerate(bad) if column
    ) + ")"
    raise FloatingPointError(
        f"OnlineMiningMultiSimilarityLoss: the embeddings of {len(rows)} of "
        f"{len(columns[0])} batch rows are NaN or inf: rows {_short(rows)}{where}. "
        f"Stopped before the backward pass, so no NaN gradient reached the weights. Likely "
        f"cause: {_NON_FINITE_HINT}."
    )


def _short(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, rows[:limit]))
    return f"[{shown}{', ...' if len(rows) > limit else ''}]"


def _check_labels(labels: Tensor | None, batch_size: int) -> Tensor:
    if labels is None:
        raise ValueError(f"labels are missing. {_LABEL_HINT}")
    if not isinstance(labels, Tensor):
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"labels must be integers, got {labels!r:.80}. {_LABEL_HINT}") from exc
    if labels.dtype.is_floating_point:
        if not torch.all(labels == labels.round()):
            raise ValueError(
                f"labels must be integer concept ids, got floats such as "
                f"{labels[labels != labels.round()][:3].tolist()}. {_LABEL_HINT}"
            )
        labels = labels.long()
    elif labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"labels must be integer concept ids, got dtype {labels.dtype}. {_LABEL_HINT}")
    if labels.dim() != 1 or len(labels) != batch_size:
        raise ValueError(
            f"expected one label per row ({batch_size}), got labels of shape {tuple(labels.shape)}"
        )
    return labels


def _gather(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """All-gather embeddings (with gradient) and labels across ranks; ranks may differ in size."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return embeddings, labels
    size = torch.tensor([len(labels)], device=labels.device)
    sizes = all_gather(size).tolist()
    longest = max(sizes)
    pad = longest - len(labels)
    padded_emb = F.pad(embeddings, (0, 0, 0, pad))
    padded_lab = F.pad(labels, (0, pad), value=-1)
    gathered_emb = all_gather_with_grad(padded_emb)
    gathered_lab = all_gather(padded_lab)
    world = len(sizes)
    if world > 1 and len(set(sizes)) == 1:  # the same on every rank, so all ranks raise
        emb_copies = gathered_emb.detach().view(world, longest, -1)
        lab_copies = gathered_lab.view(world, longest)
        if bool((emb_copies == emb_copies[:1]).all() and (lab_copies == lab_copies[:1]).all()):
            raise RuntimeError(
                f"gather_across_devices=True: all {world} processes hold the same batch of "
                f"{longest} rows, so the loss would mine {world} copies of it (every name a "
                f"positive of its own copy). The trainer is not data-parallel: under torchrun "
                f"without CUDA, transformers leaves it NOT_PARALLEL unless use_cpu=True "
                f"(sapbert_st.paper_training_args and train_sapbert set it)"
            )
    keep = torch.cat([torch.arange(n, device=labels.device) + r * longest for r, n in enumerate(sizes)])
    return gathered_emb[keep], gathered_lab[keep]
