"""Shared test helpers: tiny real videos written with the project's own writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_test_video(
    path: str | os.PathLike,
    num_frames: int = 20,
    fps: float = 10,
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
) -> Path:
    """Write a tiny H.264 mp4 (a bright square moving over a gradient, ``size`` = (H, W), even) and return its path.

    Parent folders are created. Frames differ from one another, so decoding errors show up as wrong pixels.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(0, 200, h, dtype=np.uint8)[:, None]
    base[..., 2] = rng.integers(0, 200)
    side = max(2, min(h, w) // 4)
    frames = np.repeat(base[None], num_frames, axis=0)
    for t in range(num_frames):
        y = (t * 2) % (h - side)
        x = (t * 3) % (w - side)
        frames[t, y : y + side, x : x + side] = 255
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from hico_bench.data.video import write_video

    write_video(path, frames, fps)
    return path


ROWS, COLS = 3, 4  # 12 bits: frame indices up to 4095


def index_frame(i: int, h: int, w: int) -> np.ndarray:
    """A frame showing ``i`` in binary: 12 flat blocks, dark (0) or bright (1), robust to H.264 loss and resizing."""
    img = np.empty((h, w, 3), np.uint8)
    for b in range(ROWS * COLS):
        r, c = divmod(b, COLS)
        img[r * h // ROWS:(r + 1) * h // ROWS, c * w // COLS:(c + 1) * w // COLS] = 230 if (i >> b) & 1 else 25
    return img


def frame_index(img: np.ndarray) -> int:
    """Read back the index written by :func:`index_frame` from the middle half of each block (any frame size)."""
    h, w = img.shape[:2]
    grey = img.mean(axis=2)
    value = 0
    for b in range(ROWS * COLS):
        r, c = divmod(b, COLS)
        y0, y1 = int((r + 0.25) * h / ROWS), int(np.ceil((r + 0.75) * h / ROWS))
        x0, x1 = int((c + 0.25) * w / COLS), int(np.ceil((c + 0.75) * w / COLS))
        value |= int(grey[y0:y1, x0:x1].mean() > 128) << b
    return value


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, num_frames=20, fps=10, size=(32, 32), seed=0) -> Path``: see :func:`write_test_video`."""
    return write_test_video
