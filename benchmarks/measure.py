"""What the speed benchmarks share: a description of the machine, best-of-n timing, and
writing the result JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine() -> dict:
    """CPU, RAM, library versions, thread counts and the load average when the run started."""
    import faiss
    import numpy as np
    import torch

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpu_count": os.cpu_count(), "ram_gb": round(pages / 1e9, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
            "load_average_at_start": os.getloadavg()}


def fastest(run: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """(fastest wall seconds, result of the last run) over ``repeats`` runs of ``run``.

    The usual ``timeit`` rule: slower runs measure interference, not the method.
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def write_result(result: dict, output: str | os.PathLike) -> None:
    """Write ``result`` as indented JSON to ``output`` (creating its folder) and print it."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
