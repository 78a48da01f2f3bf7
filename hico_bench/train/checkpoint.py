"""Checkpoints that hold only tensors and plain data, written atomically, and found again for auto-resume.

A checkpoint loads with ``torch.load(path, weights_only=True)``: no code runs from a data file. It holds the model,
the optimiser, the step and epoch, the run's settings and every RNG state (Python, NumPy, torch CPU and CUDA), so that
a run killed mid-epoch and resumed from it ends with the same weights as an uninterrupted one.

Files of one run folder:
- resume points (only the newest few are kept): ``checkpoint_epoch_NNNN.pt`` after NNNN whole epochs (every
  ``checkpoint_every`` epochs, and at the end of training), and ``checkpoint_epoch_NNNN_batch_BBBBBB.pt`` after NNNN
  whole epochs and BBBBBB batches of the next one (written when a stop signal arrives mid-epoch, or every
  ``checkpoint_minutes``); the newest is the one furthest into the run;
- ``checkpoint_last.pt`` once, at the end of pretraining: the run's declared output, so its presence means the run
  finished.

Fine-tuning keeps its resume points in the folder :func:`resume_dir_for` derives from its metrics file.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from hico_bench.errors import UserError
from hico_bench.io import atomic_path

RESUME_FILE = re.compile(r"^checkpoint_epoch_(\d{4,})(?:_batch_(\d{6,}))?\.pt$")
LAST = "checkpoint_last.pt"


def resume_point_path(run_dir: str | Path, epoch: int, batch: int = 0) -> Path:
    """The resume point after ``epoch`` whole epochs and ``batch`` batches of the next one."""
    name = f"checkpoint_epoch_{epoch:04d}" + (f"_batch_{batch:06d}" if batch else "")
    return Path(run_dir) / f"{name}.pt"


def resume_dir_for(out: str | Path) -> Path:
    """The run folder of a job whose one output is the file ``out``: ``out`` without its suffix, plus ``.resume``
    (``results/eval/.../splits/ft_ucf101_split1.json`` -> ``.../splits/ft_ucf101_split1.resume``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.resume")


def rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain Python values (NumPy's array turned into a tensor)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(x):
    if isinstance(x, tuple):
        return [_to_plain(v) for v in x]
    return x


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); a missing or unreadable file is a :class:`UserError`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user-facing problem
        raise UserError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}: {exc}).") from None


def _resume_points(run_dir: Path) -> list[tuple[tuple[int, int], Path]]:
    """``((epoch, batch), path)`` of every resume point in ``run_dir``, oldest first."""
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        if m := RESUME_FILE.match(p.name):
            found.append(((int(m.group(1)), int(m.group(2) or 0)), p))
    return sorted(found)


def newest_resume_point(run_dir: str | Path) -> Path | None:
    """The resume point furthest into the run in ``run_dir`` (complete by construction), or None."""
    found = _resume_points(Path(run_dir))
    return found[-1][1] if found else None


def prune_resume_points(run_dir: str | Path, keep: int = 2) -> None:
    """Delete all but the ``keep`` newest resume points."""
    for _, p in _resume_points(Path(run_dir))[:-keep]:
        p.unlink(missing_ok=True)


def write_resume_point(run_dir: str | Path, epoch: int, batch: int, state: dict[str, Any], *, main: bool,
                       log: TextIO | None = None) -> Path:
    """Save ``state`` as the resume point after ``epoch`` epochs and ``batch`` batches of the run in ``run_dir`` and
    keep the two newest; only where ``main`` (rank 0), after flushing the run's per-step ``log`` so that the log is
    never behind a resume point. Returns the point's path (on every rank)."""
    path = resume_point_path(run_dir, epoch, batch)
    if main:
        if log is not None:
            log.flush()
        save_checkpoint(path, state)
        prune_resume_points(run_dir)
    return path


def changed_keys(a: dict, b: dict) -> list[str]:
    """The keys whose values differ between ``a`` and ``b`` (a key only one of them has counts), sorted."""
    missing = object()
    return sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))


def truncate_log(path: Path, step: int) -> None:
    """Keep the JSON lines of a per-step log up to ``step`` (those after it are repeated by the resumed run)."""
    import json

    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep))

