"""Backbones from checkpoints, and frozen features: per video (probe, retrieval) and per snippet (localization).

Video features: ``views`` clips evenly spaced from the start to the end of the video (centres
``linspace(clip_t / 2, duration - clip_t / 2, views)``), one centre crop each, passed through the frozen backbone in
eval mode and averaged: the VCOP retrieval protocol (xudejing/video-clip-order-prediction, ``retrieve_clips.py``).
They are computed once per checkpoint and dataset and cached in one ``.npz`` that the probe and retrieval both read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hico_bench.errors import UserError
from hico_bench.io import atomic_path


def load_backbone(checkpoint: str | os.PathLike | None, model: dict[str, Any], seed: int = 0,
                  checkpoint_format: str = "auto") -> torch.nn.Module:
    """The backbone named in ``model`` with the checkpoint's weights, or at random init (seeded) when None.

    The checkpoint may be any file :func:`hico_bench.models.pretrained.load_pretrained` reads, in the format
    ``checkpoint_format`` (``"auto"``: detected): this project's pretraining checkpoint, the official HiCo /
    TAdaConv ``.pyth`` of the backbone, or a plain state dict. A hico-bench checkpoint of another backbone than the
    config's is an error naming both. The checkpoint path draws from torch's RNG exactly as the random init does.
    """
    from hico_bench.models.backbones import build_backbone
    from hico_bench.models.pretrained import load_pretrained

    torch.manual_seed(seed)
    kwargs = model.get("backbone_kwargs", {})
    clip = (model["frames"], model["size"]) if "frames" in model else None
    if checkpoint is None:
        return build_backbone(model["backbone"], clip, **kwargs)
    return load_pretrained(checkpoint, model["backbone"], format=checkpoint_format, clip=clip, **kwargs)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def frozen_views(manifest, model: dict[str, Any], views: int, cache_frames: bool = False):
    """The clips a frozen backbone sees per video (features, the attentive probe): ``views`` clips evenly spaced from
    the start to the end of the video (the VCOP protocol), one centre crop each; items are (views, label, index)."""
    from hico_bench.data.datasets import ClipDataset
    from hico_bench.data.sampling import evenly_spaced_clip_starts

    return ClipDataset(manifest, frames=model["frames"], sampling_rate=model["sampling_rate"],
                       target_fps=model["target_fps"], size=model["size"], mode="test", num_views=views, crops=1,
                       decode_size=model.get("decode_size"), view_starts=evenly_spaced_clip_starts,
                       cache_frames=cache_frames)


@torch.no_grad()
def video_features(backbone: torch.nn.Module, manifest, model: dict[str, Any], views: int = 10,
                   batch_size: int = 8, num_workers: int = 0, cache_frames: bool = False,
                   desc: str = "features") -> np.ndarray:
    """(N, C) float32: the mean over ``views`` centre-cropped clips of each video, evenly spaced from its start to
    its end (:func:`hico_bench.data.sampling.evenly_spaced_clip_starts`)."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    dataset = frozen_views(manifest, model, views, cache_frames)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = _device()
    backbone = backbone.to(device).eval()
    out = np.zeros((len(dataset), backbone.out_dim), dtype=np.float32)
    for clips, _label, index in tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True):
        b, v = clips.shape[:2]
        feats = backbone(clips.flatten(0, 1).to(device)).float().view(b, v, -1).mean(1)
        out[index.numpy()] = feats.cpu().numpy()
    return out


def cache_video_features(checkpoint: str | None, manifest_path: str, model: dict[str, Any], out_path: str,
                         settings: dict[str, Any] | None = None, checkpoint_format: str = "auto") -> dict[str, Any]:
    """Extract train- and test-split features of one dataset and save them as one ``.npz`` (see
    :func:`load_features`).

    ``settings``: :data:`hico_bench.settings.FEATURES` (missing keys take their defaults).
    """
    from hico_bench.data.manifest import read_manifest
    from hico_bench.settings import FEATURES, MODEL

    s = FEATURES.resolve(settings)
    model = MODEL.resolve(model)
    views = s["views"]
    t0 = time.perf_counter()
    manifest = read_manifest(manifest_path)
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format)
    arrays = {}
    for split in ("train", "test"):
        part = manifest[manifest["split"] == split].reset_index(drop=True)
        if part.empty:
            raise UserError(f"manifest {manifest_path} has no {split}-split videos.")
        arrays[f"{split}_x"] = video_features(backbone, part, model, views, s["batch_size"], s["num_workers"],
                                              s["cache_frames"], desc=f"features {split} {Path(manifest_path).stem}")
        arrays[f"{split}_y"] = part["label_index"].to_numpy(np.int64)
        arrays[f"{split}_ids"] = np.asarray(part["video_id"].astype(str).tolist(), dtype=str)
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, views=views, seconds=time.perf_counter() - t0, model=json.dumps(model))
    return arrays


def load_features(path: str | os.PathLike) -> dict[str, Any]:
    """A features file of :func:`cache_video_features`: ``train_x`` / ``test_x`` (N, C) float32, ``train_y`` /
    ``test_y`` class indices, ``train_ids`` / ``test_ids``, ``views``, ``seconds`` and ``model`` (the backbone and
    clip geometry it was extracted with)."""
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"features file {path} cannot be read ({exc}).") from None
    missing = [k for k in ("train_x", "train_y", "test_x", "test_y", "views", "seconds", "model") if k not in data]
    if missing:
        raise UserError(f"features file {path} lacks {missing[0]!r}; write it with `hico-bench features`.")
    data["model"] = json.loads(str(data["model"]))
    return data
