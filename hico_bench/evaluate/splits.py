"""One task's metrics over the official splits (UCF101 / HMDB51 splits 1-3) and their mean."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hico_bench.errors import UserError
from hico_bench.io import read_json


def merge_split_metrics(paths: Sequence[str | Path]) -> dict:
    """The first file's description with ``metrics`` = the mean over splits and ``splits`` = each split's metrics."""
    results = []
    for path in paths:
        try:
            results.append(read_json(path))
        except (OSError, ValueError) as exc:
            raise UserError(f"metrics file {path} cannot be read ({exc}).") from None
    keys = set(results[0]["metrics"])
    for path, r in zip(paths, results):
        if set(r["metrics"]) != keys:
            raise UserError(f"metrics file {path} has other metrics than {paths[0]}; they cannot be averaged.")
    numeric = [k for k in keys if isinstance(results[0]["metrics"][k], (int, float))]
    merged = dict(results[0])
    merged["split"] = [r["split"] for r in results] if len(results) > 1 else results[0]["split"]
    merged["metrics"] = {k: float(np.mean([r["metrics"][k] for r in results])) for k in sorted(numeric)}
    merged["splits"] = {str(r["split"]): r["metrics"] for r in results}
    merged["seconds"] = float(sum(r.get("seconds", 0.0) for r in results))
    return merged
