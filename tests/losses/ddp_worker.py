"""Run by torchrun from test_online_mining_multi_similarity.py: compare DDP-gathered loss to one process."""

import json
import os

import torch
import torch.distributed as dist

from sapbert_st.losses import OnlineMiningMultiSimilarityLoss, multi_similarity_loss


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    g = torch.Generator().manual_seed(0)
    sizes = [10, 6]  # unequal local batches, as the last batch of an epoch can be
    total = sum(sizes)
    first = torch.randn(total, 16, generator=g)
    second = first + 0.3 * torch.randn(total, 16, generator=g)
    labels = torch.randint(0, 5, (total,), generator=g)
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])

    a = first[lo:hi].clone().requires_grad_(True)
    b = second[lo:hi].clone().requires_grad_(True)
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), gather_across_devices=True)
    loss = loss_fn.compute_loss_from_embeddings([a, b], labels[lo:hi])
    loss.backward()

    # the same global batch in one process, in gathered order: [r0: a, b, r1: a, b]
    parts, part_labels = [], []
    for r in range(world):
        s, e = sum(sizes[:r]), sum(sizes[: r + 1])
        parts += [first[s:e], second[s:e]]
        part_labels += [labels[s:e], labels[s:e]]
    full = torch.cat(parts).requires_grad_(True)
    reference = multi_similarity_loss(full, torch.cat(part_labels))
    reference.backward()
    offset = sum(2 * n for n in sizes[:rank])
    n = sizes[rank]
    ref_grad_a = full.grad[offset: offset + n]
    ref_grad_b = full.grad[offset + n: offset + 2 * n]
    # every rank back-propagates the same global loss, so local gradients are world_size
    # times the true ones; DDP's gradient averaging divides them back.
    diff = max((a.grad / world - ref_grad_a).abs().max().item(),
               (b.grad / world - ref_grad_b).abs().max().item())
    out = os.environ["SAPBERT_DDP_OUT"]
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": world, "loss": loss.item(), "reference_loss": reference.item(),
                   "max_grad_diff": diff}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
