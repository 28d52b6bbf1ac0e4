"""train_sapbert under torchrun: 2 CPU processes (gloo) train as one process on the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_bert
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_training_worker.py")
BATCH = 8  # pairs per process and step; the single-process reference takes 2 * BATCH


def free_port() -> int:
    """A loopback port nobody listens on now (two test runs at once must not collide)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(next(folder.rglob("model.safetensors")))


@pytest.mark.slow
def test_two_processes_train_as_one_process_on_the_global_batch(tmp_path):
    """torchrun on CPU: DDP over gloo, sharded batches, the global batch mined; rank 0 saves.

    One process with the two processes' batches together (``2 * BATCH`` pairs a step, in
    the same order) is the reference. SGD, not AdamW, so that a gradient of the wrong
    scale (mined twice, or not averaged) moves the weights differently instead of being
    normalised away. Before training, each process runs a plain
    ``SentenceTransformerTrainer``, which transformers leaves not parallel on CPU: the
    loss refuses its identical batches.
    """
    from ddp_training_worker import train

    model_dir = build_tiny_bert(tmp_path / "bert", dropout=0.0)
    out = tmp_path / "ddp"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(WORKER),
         str(model_dir), str(out), str(BATCH)],
        check=False, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    for report in ranks:
        assert report["world_size"] == 2, report
        assert (report["plain_trainer_error"] or "").startswith(
            f"gather_across_devices=True: all 2 processes hold the same batch of {2 * BATCH} "
            f"rows"), f"a trainer that is not parallel was not refused: {report}"
        assert "use_cpu=True" in report["plain_trainer_error"]
    assert ranks[0]["saves"] == [str(out / "model")] and ranks[1]["saves"] == []
    assert [r["evaluations"] for r in ranks] == [1, 0]

    single = train(str(model_dir), str(tmp_path / "single"), 2 * BATCH)
    assert single == {"saves": [str(tmp_path / "single" / "model")], "evaluations": 1}
    initial = weights(model_dir)
    ddp, reference = weights(out / "model"), weights(tmp_path / "single" / "model")
    assert ddp.keys() == reference.keys()
    moved = max((reference[k] - initial[k]).abs().max().item() for k in initial)
    diff = max((ddp[k] - reference[k]).abs().max().item() for k in reference)
    assert moved > 5e-3  # the steps did train
    assert diff <= 2e-6, f"DDP weights differ from one process on the global batch by {diff}"
