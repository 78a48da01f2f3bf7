"""Feature files in the layouts that temporal action localization tools read (ActionFormer, BMN, G-TAD).

* ActionFormer layout: one ``v_<id>.npy`` per video, a T x C float32 array (snippets x channels), with a sidecar
  ``v_<id>.json`` holding ``stride``, ``frames_per_snippet``, ``fps``, ``feature_dim``, ``duration`` and
  ``num_snippets``. Snippet ``k`` covers frames ``[k * stride, k * stride + frames_per_snippet)``, so its centre is
  at ``(k * stride + frames_per_snippet / 2) / fps`` seconds. The sidecar is written after the array, so a video whose
  sidecar exists is complete.
* BMN layout: ``csv_mean_100/v_<id>.csv``, 100 rows (time) x C columns with the header ``f0,...,f{C-1}`` and no index
  column, rescaled from T snippets by BMN's ``poolData`` (:func:`bmn_pool`).
* G-TAD layout: one HDF5 file with a dataset ``v_<id>`` (T x C) per video. An export assembles it once, at the end,
  from the per-video ``.npy`` files (:func:`assemble_gtad_hdf5`: one video in memory at a time, written under a
  temporary name and renamed), so that its cost is one pass over the features however many videos there are.

Video ids are always given bare (the YouTube id, without ``v_``); the ``v_`` prefix is added here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np
from scipy.interpolate import interp1d

from hico_bench.errors import UserError
from hico_bench.io import atomic_path, write_json

PREFIX = "v_"
META_KEYS = ("stride", "frames_per_snippet", "fps", "feature_dim", "duration", "num_snippets")
REQUIRED_META = ("stride", "frames_per_snippet", "fps", "duration")


def feature_stem(video_id: str) -> str:
    """The file stem / HDF5 key of a video: ``v_<id>``."""
    return f"{PREFIX}{video_id}"


def _as_features(feats: np.ndarray) -> np.ndarray:
    arr = np.asarray(feats)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"features must be a non-empty T x C array, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def write_npy_features(out_dir: str | os.PathLike, video_id: str, feats: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write ``v_<id>.npy`` (T x C float32) and its sidecar ``v_<id>.json``, each atomically; return the .npy path.

    ``meta`` must give ``stride`` and ``frames_per_snippet`` (frames), ``fps`` and ``duration`` (seconds);
    ``feature_dim`` and ``num_snippets`` are taken from ``feats`` (and must agree when given). Extra keys are kept.
    """
    arr = _as_features(feats)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"feature metadata of video {video_id!r} lacks {', '.join(missing)}")
    sidecar = dict(meta)
    for key, value in (("feature_dim", arr.shape[1]), ("num_snippets", arr.shape[0])):
        if key in sidecar and int(sidecar[key]) != value:
            raise ValueError(
                f"feature metadata of video {video_id!r} says {key}={sidecar[key]} but the array has {value}"
            )
        sidecar[key] = int(value)
    sidecar["stride"] = int(sidecar["stride"])
    sidecar["frames_per_snippet"] = int(sidecar["frames_per_snippet"])
    sidecar["fps"] = float(sidecar["fps"])
    sidecar["duration"] = float(sidecar["duration"])
    out_dir = Path(out_dir)
    npy_path = out_dir / f"{feature_stem(video_id)}.npy"
    with atomic_path(npy_path) as tmp:
        np.save(tmp, arr)
    write_json(out_dir / f"{feature_stem(video_id)}.json", sidecar)
    return npy_path


def read_npy_features(feat_dir: str | os.PathLike, video_id: str) -> tuple[np.ndarray, dict]:
    """Read ``v_<id>.npy`` and its sidecar from ``feat_dir``; return (T x C float32 array, metadata dict)."""
    stem = Path(feat_dir) / feature_stem(video_id)
    npy_path, json_path = stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".json")
    for path in (npy_path, json_path):
        if not path.is_file():
            raise UserError(f"feature file {path} does not exist.")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"feature sidecar {json_path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise UserError(f"feature sidecar {json_path} lacks the key {missing[0]!r} (it needs {', '.join(META_KEYS)}).")
    feats = np.load(npy_path)
    if feats.ndim != 2 or feats.shape != (int(meta["num_snippets"]), int(meta["feature_dim"])):
        raise UserError(
            f"feature file {npy_path} has shape {feats.shape} but its sidecar says "
            f"{meta['num_snippets']} x {meta['feature_dim']}."
        )
    return feats.astype(np.float32, copy=False), meta


def snippet_centres(meta: Mapping[str, Any], num_snippets: int | None = None) -> np.ndarray:
    """Centre time (s) of every snippet: ``(k * stride + frames_per_snippet / 2) / fps`` for k = 0..T-1."""
    n = int(meta["num_snippets"] if num_snippets is None else num_snippets)
    k = np.arange(n, dtype=np.float64)
    return (k * float(meta["stride"]) + float(meta["frames_per_snippet"]) / 2.0) / float(meta["fps"])


def bmn_pool(
    feats: np.ndarray, fps: float, stride: int, num_bins: int = 100, samples_per_bin: int = 3
) -> np.ndarray:
    """Rescale T snippet features to ``num_bins`` rows as BMN's ``poolData(pool_type="mean")`` does.

    With ``st = stride / fps`` seconds per snippet, snippet ``i`` sits at ``x_i = st/2 + i*st`` and the features are
    linearly interpolated (scipy ``interp1d``) between these points. The covered time ``T * st`` (BMN's
    ``corrected_second``, so a BMN ``video_info`` row needs ``featureFrame = T * stride``) is cut into ``num_bins``
    equal bins; each bin is clipped to ``[x_0 + 1e-4, x_{T-1} - 1e-4]`` and averaged over ``samples_per_bin`` evenly
    spaced samples from its start to its end. A bin wholly before ``x_0`` or after ``x_{T-1}`` is all zeros. A single
    snippet is repeated ``num_bins`` times. Returns a ``num_bins`` x C float32 array.
    """
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"features must be a non-empty T x C array, got shape {arr.shape}")
    if samples_per_bin < 2:
        raise ValueError("samples_per_bin must be at least 2 (the samples run from a bin's start to its end)")
    if fps <= 0 or stride <= 0 or num_bins < 1:
        raise ValueError("fps, stride and num_bins must be positive")
    num_snippets = arr.shape[0]
    if num_snippets == 1:
        return np.repeat(arr, num_bins, axis=0).astype(np.float32)
    st = float(stride) / float(fps)
    x = st / 2.0 + np.arange(num_snippets) * st
    covered = num_snippets * st
    bins = np.arange(num_bins, dtype=np.float64)
    lo = np.maximum(x[0] + 1e-4, bins / num_bins * covered)
    hi = np.minimum(x[-1] - 1e-4, (bins + 1) / num_bins * covered)
    inside = ~((hi < x[0]) | (lo > x[-1]))
    steps = np.arange(samples_per_bin, dtype=np.float64) / (samples_per_bin - 1)
    samples = lo[inside, None] + (hi - lo)[inside, None] * steps[None, :]  # (bins inside, samples)
    values = interp1d(x, arr, axis=0)(samples.ravel()).reshape(samples.shape + (arr.shape[1],))
    out = np.zeros((num_bins, arr.shape[1]), dtype=np.float64)
    out[inside] = values.mean(axis=1)
    return out.astype(np.float32)


def write_bmn_csv(out_dir: str | os.PathLike, video_id: str, pooled: np.ndarray) -> Path:
    """Write ``out_dir/csv_mean_<rows>/v_<id>.csv`` (BMN layout: header ``f0..f{C-1}``, no index), atomically.

    With the default 100 bins of :func:`bmn_pool` the folder is ``csv_mean_100``. Values are written with 7
    significant digits (float32 precision).
    """
    arr = _as_features(pooled)
    header = ",".join(f"f{i}" for i in range(arr.shape[1]))
    path = Path(out_dir) / f"csv_mean_{arr.shape[0]}" / f"{feature_stem(video_id)}.csv"
    with atomic_path(path) as tmp:
        np.savetxt(tmp, arr, fmt="%.7g", delimiter=",", header=header, comments="")
    return path


def write_gtad_hdf5(path: str | os.PathLike, feats_by_video: Mapping[str, np.ndarray]) -> list[str]:
    """Add one float32 dataset ``v_<id>`` (T x C) per video to the HDF5 file ``path`` (G-TAD layout), atomically.

    Videos already in the file are left as they are. The new file is built beside the old one (a copy of it plus the
    new datasets) and renamed onto it; when nothing is new the file is not touched. Returns the ids that were added.
    Every call copies the whole file, so adding videos one call at a time costs time quadratic in the number of
    videos: an export assembles its file once with :func:`assemble_gtad_hdf5` instead.
    """
    path = Path(path)
    present = gtad_keys(path)
    present = set() if present is None else present
    new = [vid for vid in feats_by_video if feature_stem(vid) not in present]
    if not new:
        return []
    with atomic_path(path) as tmp:
        if path.exists():
            shutil.copyfile(path, tmp)
            mode = "a"
        else:
            mode = "w"
        with h5py.File(tmp, mode) as f:
            for vid in new:
                f.create_dataset(feature_stem(vid), data=_as_features(feats_by_video[vid]))
    return new


def gtad_keys(path: str | os.PathLike) -> set[str] | None:
    """The dataset names (``v_<id>``) of the G-TAD file ``path``; None when it does not exist.

    A file that exists but is not a readable HDF5 file is a :class:`UserError`.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            return set(f.keys())
    except OSError as exc:
        raise UserError(f"G-TAD feature file {path} exists but is not a readable HDF5 file ({exc}).") from None


def assemble_gtad_hdf5(path: str | os.PathLike, feat_dir: str | os.PathLike, video_ids: Iterable[str]) -> int:
    """Write the G-TAD file ``path``: one float32 dataset ``v_<id>`` (T x C) per video of ``video_ids``, copied from
    ``feat_dir/v_<id>.npy`` (checked against its sidecar by :func:`read_npy_features`).

    The videos are streamed: one array is in memory at a time, and each is written once, so the cost is linear in the
    features' size. The file is built under a temporary name beside ``path`` and renamed onto it at the end (an
    interrupted call leaves ``path`` as it was). Datasets are contiguous and uncompressed, in h5py's default (earliest)
    file format version, as :func:`write_gtad_hdf5` writes them, so that older HDF5 libraries read the file too.
    Returns the number of videos.
    """
    count = 0
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for vid in video_ids:
            feats, _ = read_npy_features(feat_dir, vid)
            f.create_dataset(feature_stem(vid), data=_as_features(feats))
            count += 1
    return count
