"""Re-encode videos for fast random access: H.264 mp4, a given short side, a keyframe every second.

Raw downloads usually have a keyframe every few seconds, so each random clip decodes seconds of frames it throws away;
with a keyframe every second and small frames, clip reading is several times faster (``benchmarks/decode.py``).

Every source frame becomes one output frame at the source's average frame rate, so frame ``i`` and the time ``i / fps``
of a video are the same before and after (a variable-rate source becomes constant-rate). Audio is dropped. Each file is
decoded and encoded frame by frame (constant memory) and written atomically, so that an interrupted run resumes where
it stopped: an existing output is taken as done. Files that fail are listed in a quarantine CSV (``path,reason``) and
skipped; a later run tries them again.

The prepared copies mirror the sources' layout under ``out_dir``, relative to the sources' common folder (or a given
``root``): ``<root>/a/b.avi`` becomes ``<out_dir>/a/b.mp4``. :func:`prepared_manifest` rewrites a manifest's paths
(``path`` and the paths inside ``parts``) to these copies.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import pandas as pd
from av.video.frame import PictureType
from tqdm import tqdm

from hico_bench.data.video import VideoError, _open, _stream_info, check_truncation
from hico_bench.errors import UserError
from hico_bench.io import atomic_path, write_text

PathLike = str | os.PathLike


@dataclass(frozen=True)
class PrepareSummary:
    total: int  # distinct source files
    encoded: int  # written by this run
    skipped: int  # already prepared (an earlier run)
    failed: int  # listed in the quarantine CSV
    quarantine_path: str

    def as_dict(self) -> dict:
        return asdict(self)


def prepared_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H, W) with the short side ``short_side`` (even) and the long side scaled and rounded to an even number."""
    if short_side <= 0 or short_side % 2:
        raise UserError(f"prepare short_side must be a positive even number (H.264 needs even sizes): {short_side}.")
    if height <= width:
        return short_side, max(2, 2 * round(width * short_side / height / 2))
    return max(2, 2 * round(height * short_side / width / 2)), short_side


def prepare_video(
    src: PathLike,
    dst: PathLike,
    short_side: int = 128,
    keyframe_interval_s: float = 1.0,
    crf: int = 23,
    preset: str = "veryfast",
) -> int:
    """Re-encode one file; returns the number of frames written. Raises :class:`VideoError` for a broken source."""
    container = _open(src)
    try:
        info = _stream_info(container)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rate = Fraction(rate).limit_denominator(1001)
        height, width = prepared_size(info.height, info.width, short_side)
        keyint = max(1, int(round(keyframe_interval_s * float(rate))))
        written = 0
        with atomic_path(dst) as tmp:
            with av.open(str(tmp), mode="w") as out:
                ost = out.add_stream("libx264", rate=rate)
                ost.width, ost.height, ost.pix_fmt = width, height, "yuv420p"
                ost.codec_context.thread_count = 1
                ost.options = {
                    "crf": str(crf),
                    "preset": preset,
                    "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0",
                }
                time_base = Fraction(1) / rate
                try:
                    # The decoder gives frames in display order; their timestamps are replaced by a plain count.
                    for frame in container.decode(stream):
                        small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                        small.pts, small.time_base = written, time_base
                        small.pict_type = PictureType.NONE  # x264 would turn the source's I-frames into keyframes
                        for packet in ost.encode(small):
                            out.mux(packet)
                        written += 1
                except av.error.FFmpegError as exc:
                    raise VideoError(f"fails to decode or re-encode after frame {written} ({exc})") from None
                if written == 0:
                    raise VideoError("holds no decodable frame")
                check_truncation(info.num_frames, written, float(rate))
                for packet in ost.encode():
                    out.mux(packet)
        return written
    finally:
        container.close()


def _task(args: tuple) -> tuple[str, str | None]:
    """Worker: (src, None) on success, (src, reason) on failure; never raises."""
    src, dst, short_side, keyframe_interval_s, crf, preset = args
    try:
        prepare_video(src, dst, short_side, keyframe_interval_s, crf, preset)
        return src, None
    except VideoError as exc:
        return src, str(exc)
    except Exception as exc:  # an encoder or file-system failure: quarantine the file, keep going
        return src, f"{exc.__class__.__name__}: {exc}"


def prepare_videos(
    items: pd.DataFrame | Sequence[tuple[PathLike, PathLike]],
    out_dir: PathLike,
    short_side: int = 128,
    keyframe_interval_s: float = 1.0,
    workers: int = 2,
    quarantine_path: PathLike | None = None,
    crf: int = 23,
    preset: str = "veryfast",
    root: PathLike | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Re-encode many videos in parallel (a process pool of ``workers``; 1 or 0 runs them here).

    ``items`` is a manifest (its ``path`` column and the paths in ``parts``; destinations mirror the sources under
    ``out_dir``, see :func:`prepared_path`) or a list of ``(src, dst)`` pairs (a relative ``dst`` is under ``out_dir``).
    Existing outputs are skipped. Failures go to ``quarantine_path`` (default ``<out_dir>/prepare_quarantine.csv``),
    which is rewritten on every run with that run's failures.
    """
    out_dir = Path(out_dir)
    prepared_size(2, 2, short_side)  # validates short_side
    if keyframe_interval_s <= 0:
        raise UserError(f"prepare keyframe_interval_s must be positive, got {keyframe_interval_s}.")
    pairs = _pairs(items, out_dir, root)
    quarantine_path = Path(quarantine_path) if quarantine_path is not None else out_dir / "prepare_quarantine.csv"
    todo = [(src, dst) for src, dst in pairs if not dst.exists()]
    failures: list[tuple[str, str]] = []
    tasks = [(str(src), str(dst), short_side, keyframe_interval_s, crf, preset) for src, dst in todo]
    with tqdm(total=len(tasks), desc="prepare", unit="video", file=sys.stderr, disable=not progress) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                src, reason = _task(task)
                if reason is not None:
                    failures.append((src, reason))
                bar.update()
        else:
            failures.extend(_run_pool(tasks, workers, bar))
    _write_quarantine(quarantine_path, failures)
    return PrepareSummary(
        total=len(pairs),
        encoded=len(todo) - len(failures),
        skipped=len(pairs) - len(todo),
        failed=len(failures),
        quarantine_path=str(quarantine_path),
    )


def _run_pool(tasks: list[tuple], workers: int, bar: tqdm) -> list[tuple[str, str]]:
    failures = []
    # fork: the workers need no re-import of the package (torch makes that take seconds); they touch no threads.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures = {pool.submit(_task, task): task[0] for task in tasks}
        for future in as_completed(futures):
            try:
                src, reason = future.result()
            except Exception as exc:  # the worker process died (a crash inside FFmpeg takes the pool with it)
                src, reason = futures[future], f"the worker process failed ({exc.__class__.__name__}: {exc})"
            if reason is not None:
                failures.append((src, reason))
            bar.update()
    return failures


def _write_quarantine(path: Path, failures: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(sorted(failures))
    write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------------------------------
# Paths: where each prepared copy lives, and the manifest that points at them


def manifest_sources(manifest: pd.DataFrame) -> list[str]:
    """Every file a manifest reads: its ``path`` column and the paths inside ``parts`` (5-s segment layout)."""
    if "path" not in manifest.columns:
        raise UserError("the manifest has no 'path' column, so there is nothing to prepare.")
    sources = [str(p) for p in manifest["path"]]
    if "parts" in manifest.columns:
        for row, parts in enumerate(manifest["parts"]):
            for part in _parse_parts(parts, row):
                sources.append(str(part[2]))
    return list(dict.fromkeys(sources))


def _parse_parts(parts, row: int) -> list:
    if not isinstance(parts, str) or not parts.strip():
        return []
    try:
        value = json.loads(parts)
    except json.JSONDecodeError:
        raise UserError(f"manifest row {row}: 'parts' is not valid JSON.") from None
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 3 for p in value):
        raise UserError(f"manifest row {row}: 'parts' must be a JSON list of [start_s, end_s, path].")
    return value


def source_root(sources: Iterable[PathLike]) -> Path:
    """The deepest folder that holds every source (absolute paths, symlinks kept)."""
    folders = [os.path.dirname(os.path.abspath(s)) for s in sources]
    if not folders:
        raise UserError("there are no videos to prepare.")
    return Path(os.path.commonpath(folders))


def prepared_path(src: PathLike, root: PathLike, out_dir: PathLike) -> Path:
    """``<out_dir>/<src relative to root>`` with the suffix ``.mp4``."""
    rel = os.path.relpath(os.path.abspath(src), os.path.abspath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise UserError(f"video {src} is not under the prepare root {root}.")
    return Path(out_dir) / Path(rel).with_suffix(".mp4")


def _pairs(items, out_dir: Path, root: PathLike | None) -> list[tuple[Path, Path]]:
    if isinstance(items, pd.DataFrame):
        sources = manifest_sources(items)
        base = Path(root) if root is not None else source_root(sources)
        pairs = [(Path(s), prepared_path(s, base, out_dir)) for s in sources]
    else:
        pairs = list(dict.fromkeys((Path(s), out_dir / Path(d)) for s, d in items))
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        other = seen.setdefault(dst, src)
        if other != src:
            raise UserError(f"videos {other} and {src} would both be prepared as {dst}; rename one of them.")
    return pairs


def prepared_manifest(manifest: pd.DataFrame, out_dir: PathLike, root: PathLike | None = None) -> pd.DataFrame:
    """The manifest with ``path`` (and the paths in ``parts``) pointing at the prepared copies under ``out_dir``.

    ``root`` must be the one given to :func:`prepare_videos` (default: the sources' common folder, the same default).
    Rows whose prepared file (or any of its parts) does not exist, because it failed and was quarantined, are left
    out. Duration, fps and frame count are unchanged by preparing.
    """
    out_dir = Path(out_dir)
    base = Path(root) if root is not None else source_root(manifest_sources(manifest))
    result = manifest.copy()
    keep = []
    paths = []
    parts_column = []
    for row, (path, parts) in enumerate(
        zip(manifest["path"], manifest["parts"] if "parts" in manifest.columns else [""] * len(manifest))
    ):
        new_path = prepared_path(path, base, out_dir)
        new_parts = [[p[0], p[1], str(prepared_path(p[2], base, out_dir))] for p in _parse_parts(parts, row)]
        files = [new_path] + [Path(p[2]) for p in new_parts]
        keep.append(all(f.exists() for f in files))
        paths.append(str(new_path))
        parts_column.append(json.dumps(new_parts) if new_parts else parts)
    result["path"] = paths
    if "parts" in manifest.columns:
        result["parts"] = parts_column
    return result[keep].reset_index(drop=True)
