"""ActivityNet feature export: slide the frozen backbone over every video and write the localization tools' formats.

Snippet ``k`` of a video is the ``snippet_frames`` consecutive frames starting at frame ``k * stride`` (the
ActionFormer / BMN convention: libs/datasets/anet.py, BMN data_process.py); a video of ``F`` frames gives
``max(1, (F - snippet_frames) // stride + 1)`` snippets. Each snippet is centre-cropped (0.875 of the short side),
resized to the model's input size and normalised, like the downstream test views.

One container is opened per video, and each batch of snippets is read with one seek over the contiguous frame range it
covers; each frame of that range is transformed once, even where snippets overlap (stride < snippet_frames). With
``num_workers`` > 0 the decoding and transforms run in DataLoader worker processes (:class:`SnippetBatches`: worker
``w`` of ``W`` takes videos ``w, w + W, ...``) while the main process runs the backbone; the batches, and so the
features, are the same as in-process (``num_workers`` 0).

Only the videos of the ActivityNet subsets in ``subsets`` are exported (default: training and validation, the subsets
the localization probe fits and scores; ``all``: every video of the manifest). Per video the export writes
``v_<id>.npy`` + ``v_<id>.json`` (ActionFormer layout) and the BMN CSV ``csv_mean_100/v_<id>.csv``: these are the
durable unit, and the export is resumable per video (a video whose sidecar JSON exists is skipped). The G-TAD file
``gtad.h5`` is assembled once at the end from the per-video files of the selected videos
(:func:`~hico_bench.evaluate.feature_formats.assemble_gtad_hdf5`, streamed and renamed into place), so every stage
costs time linear in the number of videos. A video that cannot be decoded is written to ``quarantine.csv`` and left
out; the others are exported. ``export.json`` (the job's declared output) is written last with counts and snippets/s.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from hico_bench.errors import UserError
from hico_bench.io import write_json, write_quarantine

SUBSETS = {"training": "train", "validation": "val", "testing": "test"}
"""ActivityNet subset names (as the ground truth JSON and the localization probe's settings spell them) -> the
manifest's ``split`` values."""
ALL_SUBSETS = "all"
GTAD_FILE = "gtad.h5"


def num_snippets(num_frames: int, snippet_frames: int, stride: int) -> int:
    return max(1, (num_frames - snippet_frames) // stride + 1)


def snippet_batches(reader, model: dict[str, Any], stride: int, snippet_frames: int,
                    batch_size: int) -> Iterator[torch.Tensor]:
    """The snippets of one open video (:class:`~hico_bench.data.video.VideoReader`) in batches of ``batch_size``:
    float (B, 3, snippet_frames, S, S), each batch read with one seek over the frames it covers."""
    from hico_bench.data.transforms import FINETUNE, eval_snippets

    spec = dataclasses.replace(FINETUNE, size=model["size"])
    total = num_snippets(reader.info.num_frames, snippet_frames, stride)
    for first in range(0, total, batch_size):
        ks = np.arange(first, min(first + batch_size, total))
        start = int(ks[0]) * stride
        stop = int(ks[-1]) * stride + snippet_frames
        frames = reader.read_frames(np.arange(start, stop))  # one seek for the whole batch; short files repeat
        # every frame cropped, resized and normalised once, straight into the (B, 3, T, S, S) batch
        yield eval_snippets(frames, ks * stride - start, snippet_frames, spec)


@torch.no_grad()
def video_snippet_features(backbone: torch.nn.Module, reader, model: dict[str, Any], stride: int,
                           snippet_frames: int, batch_size: int, device: torch.device) -> np.ndarray:
    """(T, C) float32 features of one open video (:class:`~hico_bench.data.video.VideoReader`)."""
    out = [backbone(clips.to(device)).float().cpu().numpy()
           for clips in snippet_batches(reader, model, stride, snippet_frames, batch_size)]
    return np.concatenate(out).astype(np.float32)


class SnippetBatches(IterableDataset):
    """The snippet batches of a list of videos, decoded and transformed, for a ``DataLoader(batch_size=None)``.

    Each item is a dict: ``{"video": i, "clips": (B, 3, T, S, S) float, "last": bool}`` for a batch of the ``i``-th
    video in ``paths`` (``last`` on its final batch, which also carries the video's ``fps`` and ``duration``), or
    ``{"video": i, "error": reason}`` when the video cannot be decoded (earlier batches of that video, if any, are
    then to be dropped). A video's batches come in order. Worker ``w`` of ``W`` reads videos ``w, w + W, ...``; in
    the main process (no workers) every video is read in order.
    """

    def __init__(self, paths: Sequence[str], model: dict[str, Any], stride: int, snippet_frames: int,
                 batch_size: int):
        super().__init__()
        self.paths = [str(p) for p in paths]
        self.model = dict(model)
        self.stride, self.snippet_frames, self.batch_size = stride, snippet_frames, batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(worker, len(self.paths), workers):
            yield from self.video(i)

    def video(self, i: int) -> Iterator[dict[str, Any]]:
        from hico_bench.data.video import VideoError, VideoReader

        try:
            with VideoReader(self.paths[i], size=self.model.get("decode_size")) as reader:
                batches = snippet_batches(reader, self.model, self.stride, self.snippet_frames, self.batch_size)
                clips = next(batches)
                for following in batches:  # one batch of look-ahead, so that the last one is marked
                    yield {"video": i, "clips": clips, "last": False}
                    clips = following
                yield {"video": i, "clips": clips, "last": True, "fps": float(reader.info.fps),
                       "duration": float(reader.info.duration)}
        except VideoError as exc:
            yield {"video": i, "error": str(exc)}


def select_subsets(manifest, subsets: Sequence[str], where: str):
    """The rows of ``manifest`` whose ``split`` is one of the ActivityNet ``subsets`` (see :data:`SUBSETS`), or every
    row when ``subsets`` holds ``all``. No row selected is a :class:`UserError` naming ``where``."""
    from hico_bench.errors import choice_error

    if ALL_SUBSETS in subsets:
        selected = manifest
    else:
        for name in subsets:
            if name not in SUBSETS:
                raise choice_error("ActivityNet subset", name, (*SUBSETS, ALL_SUBSETS))
        selected = manifest[manifest["split"].isin([SUBSETS[name] for name in subsets])]
    if len(selected) == 0:
        present = ", ".join(sorted(set(manifest["split"]))) or "none"
        raise UserError(f"the manifest {where} has no video of the subsets {', '.join(subsets) or '(none)'} chosen "
                        f"by export.subsets (its splits: {present}).")
    return selected.reset_index(drop=True)


def _remove_stale_temporaries(out: Path) -> None:
    """Remove what a killed export left half-written (``.tmp-*`` files of :func:`hico_bench.io.atomic_path`, up to
    a whole G-TAD file); one export writes a feature folder at a time."""
    for folder in (out, out / "csv_mean_100"):
        if folder.is_dir():
            for tmp in folder.glob(".tmp-*"):
                tmp.unlink(missing_ok=True)


def export_features(checkpoint: str | None, manifest_path: str, model: dict[str, Any], out_dir: str,
                    settings: dict[str, Any] | None = None, checkpoint_format: str = "auto") -> dict[str, Any]:
    """Export the videos of the manifest in the chosen subsets; returns (and writes to ``export.json``) the summary."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hico_bench.data.manifest import read_manifest
    from hico_bench.evaluate.feature_formats import assemble_gtad_hdf5, bmn_pool, feature_stem, gtad_keys, \
        write_bmn_csv, write_npy_features
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.settings import EXPORT, MODEL

    s = EXPORT.resolve(settings)
    model = MODEL.resolve(model)
    out = Path(out_dir)
    manifest = select_subsets(read_manifest(manifest_path), s["subsets"], manifest_path)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format).to(device).eval()

    video_ids = [str(v) for v in manifest["video_id"]]
    paths = [str(p) for p in manifest["path"]]
    done = [(out / f"{feature_stem(vid)}.json").exists() for vid in video_ids]
    todo = [i for i, finished in enumerate(done) if not finished]
    dataset = SnippetBatches([paths[i] for i in todo], model, s["stride"], s["snippet_frames"], s["batch_size"])
    workers = min(s["num_workers"], len(todo))  # the features do not depend on it
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda")

    t0 = time.perf_counter()
    snippets, exported, failures = 0, 0, []
    pending: dict[int, list[np.ndarray]] = {}  # features of the videos whose batches are still coming
    bar = tqdm(total=len(todo), desc=f"export {out.parent.name}", unit="video", dynamic_ncols=True)
    with bar, torch.no_grad():
        for item in loader:
            row = todo[item["video"]]
            if "error" in item:
                pending.pop(row, None)
                failures.append((paths[row], item["error"]))
                bar.update(1)
                continue
            pending.setdefault(row, []).append(backbone(item["clips"].to(device)).float().cpu().numpy())
            if not item["last"]:
                continue
            feats = np.concatenate(pending.pop(row)).astype(np.float32)
            video_id, fps = video_ids[row], item["fps"]
            meta = {"stride": s["stride"], "frames_per_snippet": s["snippet_frames"], "fps": fps,
                    "duration": item["duration"]}
            write_bmn_csv(out, video_id, bmn_pool(feats, fps, s["stride"]))
            write_npy_features(out, video_id, feats, meta)  # the sidecar is written last: the video is complete
            done[row] = True
            snippets += len(feats)
            exported += 1
            bar.update(1)
            bar.set_postfix(snippets_s=f"{snippets / (time.perf_counter() - t0):.0f}")
    seconds = time.perf_counter() - t0
    write_quarantine(out / "quarantine.csv", failures)
    if failures and len(failures) > s["max_bad_fraction"] * len(manifest):
        raise UserError(f"{len(failures)} of {len(manifest)} ActivityNet videos could not be decoded during the "
                        f"export; see {out / 'quarantine.csv'}.")
    if failures:
        print(f"hico-bench export: {len(failures)} videos could not be decoded and were skipped; "
              f"see {out / 'quarantine.csv'}.", file=sys.stderr, flush=True)

    # The G-TAD file holds exactly the selected videos that have features. It is rebuilt when this run exported
    # something or when it holds another set of videos (a run killed before or during the assembly, other subsets).
    t1 = time.perf_counter()
    in_gtad = [vid for vid, finished in zip(video_ids, done) if finished]
    if exported or gtad_keys(out / GTAD_FILE) != {feature_stem(vid) for vid in in_gtad}:
        assemble_gtad_hdf5(out / GTAD_FILE, out, in_gtad)
    gtad_seconds = time.perf_counter() - t1
    summary = {"videos": len(manifest), "subsets": list(s["subsets"]), "exported": exported,
               "resumed_skipped": len(video_ids) - len(todo), "quarantined": len(failures), "snippets": snippets,
               "seconds": seconds, "snippets_per_s": snippets / seconds if seconds > 0 else None,
               "gtad_videos": len(in_gtad), "gtad_seconds": gtad_seconds, "num_workers": s["num_workers"],
               "stride": s["stride"], "snippet_frames": s["snippet_frames"], "feature_dim": backbone.out_dim,
               "checkpoint": checkpoint, "model": model}
    write_json(out / "export.json", summary)
    return summary
