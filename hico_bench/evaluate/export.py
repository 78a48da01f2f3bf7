"""ActivityNet feature export: slide the frozen backbone over every video and write the localization tools' formats.

Snippet ``k`` of a video is the ``snippet_frames`` consecutive frames starting at frame ``k * stride`` (the
ActionFormer / BMN convention; formats.md section 3); a video of ``F`` frames gives
``max(1, (F - snippet_frames) // stride + 1)`` snippets. Each snippet is centre-cropped (0.875 of the short side),
resized to the model's input size and normalised, like the downstream test views.

One container is opened per video, and each batch of snippets is read with one seek over the contiguous frame range it
covers; each frame of that range is transformed once, even where snippets overlap (stride < snippet_frames). Per video
the export writes ``v_<id>.npy`` + ``v_<id>.json`` (ActionFormer layout), the BMN CSV ``csv_mean_100/v_<id>.csv`` and a
dataset ``v_<id>`` in ``gtad.h5``. It is resumable per video: a video whose sidecar JSON exists is skipped. A video that
cannot be decoded is written to ``quarantine.csv`` and left out; the others are exported. ``export.json`` (the job's
declared output) is written last with counts and snippets/s.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hico_bench.errors import UserError
from hico_bench.io import write_json, write_quarantine

def num_snippets(num_frames: int, snippet_frames: int, stride: int) -> int:
    return max(1, (num_frames - snippet_frames) // stride + 1)


@torch.no_grad()
def video_snippet_features(backbone: torch.nn.Module, reader, model: dict[str, Any], stride: int,
                           snippet_frames: int, batch_size: int, device: torch.device) -> np.ndarray:
    """(T, C) float32 features of one open video (:class:`~hico_bench.data.video.VideoReader`)."""
    from hico_bench.data.transforms import FINETUNE, eval_snippets

    spec = dataclasses.replace(FINETUNE, size=model["size"])
    total = num_snippets(reader.info.num_frames, snippet_frames, stride)
    out = []
    for first in range(0, total, batch_size):
        ks = np.arange(first, min(first + batch_size, total))
        start = int(ks[0]) * stride
        stop = int(ks[-1]) * stride + snippet_frames
        frames = reader.read_frames(np.arange(start, stop))  # one seek for the whole batch; short files repeat
        # every frame cropped, resized and normalised once, straight into the (B, 3, T, S, S) batch
        clips = eval_snippets(frames, ks * stride - start, snippet_frames, spec)
        out.append(backbone(clips.to(device)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def export_features(checkpoint: str | None, manifest_path: str, model: dict[str, Any], out_dir: str,
                    settings: dict[str, Any] | None = None, checkpoint_format: str = "auto") -> dict[str, Any]:
    """Export every video of the manifest; returns (and writes to ``export.json``) the summary."""
    from tqdm import tqdm

    from hico_bench.data.manifest import read_manifest
    from hico_bench.data.video import VideoError, VideoReader
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.evaluate.feature_formats import bmn_pool, feature_stem, write_bmn_csv, write_gtad_hdf5, \
        write_npy_features

    from hico_bench.settings import EXPORT, MODEL

    s = EXPORT.resolve(settings)
    model = MODEL.resolve(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(manifest_path)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format).to(device).eval()

    t0 = time.perf_counter()
    snippets, exported, skipped, failures = 0, 0, 0, []
    bar = tqdm(manifest.itertuples(index=False), total=len(manifest), desc=f"export {out.parent.name}",
               unit="video", dynamic_ncols=True)
    for row in bar:
        video_id = str(row.video_id)
        if (out / f"{feature_stem(video_id)}.json").exists():
            skipped += 1
            continue
        try:
            with VideoReader(row.path, size=model.get("decode_size")) as reader:
                feats = video_snippet_features(backbone, reader, model, s["stride"], s["snippet_frames"],
                                               s["batch_size"], device)
                fps, duration = reader.info.fps, reader.info.duration
        except VideoError as exc:
            failures.append((row.path, str(exc)))
            continue
        meta = {"stride": s["stride"], "frames_per_snippet": s["snippet_frames"], "fps": fps, "duration": duration}
        write_bmn_csv(out, video_id, bmn_pool(feats, fps, s["stride"]))
        write_gtad_hdf5(out / "gtad.h5", {video_id: feats})
        write_npy_features(out, video_id, feats, meta)  # the sidecar is written last: the video is complete
        snippets += len(feats)
        exported += 1
        bar.set_postfix(snippets_s=f"{snippets / (time.perf_counter() - t0):.0f}")
    seconds = time.perf_counter() - t0
    write_quarantine(out / "quarantine.csv", failures)
    if failures and len(failures) > s["max_bad_fraction"] * len(manifest):
        raise UserError(f"{len(failures)} of {len(manifest)} ActivityNet videos could not be decoded during the "
                        f"export; see {out / 'quarantine.csv'}.")
    if failures:
        print(f"hico-bench export: {len(failures)} videos could not be decoded and were skipped; "
              f"see {out / 'quarantine.csv'}.", file=sys.stderr, flush=True)
    summary = {"videos": len(manifest), "exported": exported, "resumed_skipped": skipped,
               "quarantined": len(failures), "snippets": snippets, "seconds": seconds,
               "snippets_per_s": snippets / seconds if seconds > 0 else None,
               "stride": s["stride"], "snippet_frames": s["snippet_frames"], "feature_dim": backbone.out_dim,
               "checkpoint": checkpoint, "model": model}
    write_json(out / "export.json", summary)
    return summary

