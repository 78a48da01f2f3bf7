"""Probe every listed video, quarantine the broken ones, write the manifest (CONTRIBUTING.md, "The manifest").

The manifest is the one table every later stage reads: one row per video with the columns of
:data:`MANIFEST_COLUMNS` (readers' extra columns, such as Kinetics' ``time_start``/``time_end``, follow them).
Videos that are missing, empty, truncated or undecodable are left out and written, with the reason, to a quarantine
CSV (``path,reason``); too many of them is a :class:`~hico_bench.errors.UserError`.

Probing runs in a thread pool: PyAV releases the GIL while demuxing and decoding (two threads probe about twice as
fast as one on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import av
import pandas as pd
from tqdm import tqdm

from hico_bench.data import formats
from hico_bench.data.video import VideoError, VideoInfo, probe
from hico_bench.errors import UserError, choice_error
from hico_bench.io import atomic_path, write_quarantine

MANIFEST_COLUMNS = (
    "video_id", "path", "split", "label", "label_index", "duration", "fps", "num_frames", "segments", "parts",
)
_STR_COLUMNS = ("video_id", "path", "split", "label", "segments", "parts")
_INT_COLUMNS = ("label_index", "num_frames")
_FLOAT_COLUMNS = ("duration", "fps")
EXTRA_COLUMN_TYPES = {"time_start": "int64", "time_end": "int64", "annotated_duration": "float64"}
"""Types of the extra columns the readers add (Kinetics' clip window, ActivityNet's annotated duration)."""


# ------------------------------------------------------------------------------------------------------------ probing


def _probe_path(path: str) -> tuple[str, VideoInfo | None, str]:
    """(path, info, "") or (path, None, reason). PyAV/OS errors that escape :func:`probe` count as broken too."""
    try:
        return path, probe(path, verify=True), ""
    except VideoError as exc:
        return path, None, str(exc)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return path, None, f"cannot be probed ({exc.__class__.__name__}: {exc})"


def _map_bounded(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """``fn`` over ``items`` in a thread pool, results in completion order, at most a few tasks per worker in flight
    (so that millions of segment files do not become millions of pending futures)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    items = iter(items)
    window = 8 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = set()
        for item in items:
            pending.add(pool.submit(fn, item))
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        for future in pending:
            yield future.result()


def _parts(row: Mapping, row_number: int) -> list[tuple[float, float, str]]:
    text = row.get("parts", "")
    if not isinstance(text, str) or not text:
        return []
    try:
        return [(float(s), float(e), str(p)) for s, e, p in json.loads(text)]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"listing row {row_number} has a malformed parts value ({exc})") from None


def build_manifest(
    listing: pd.DataFrame,
    quarantine_path: str | os.PathLike,
    max_bad_fraction: float = 0.05,
    workers: int = 2,
    desc: str = "",
) -> pd.DataFrame:
    """Probe every video of a listing (see :mod:`hico_bench.data.formats`) and return the manifest.

    ``duration``, ``fps`` and ``num_frames`` come from the file. For a row with ``parts`` (the 5-s segment layout)
    every piece is probed; ``duration`` is the last piece's end from the index file (as HiCo takes it), ``fps`` the
    first piece's and ``num_frames`` the pieces' sum. A video any of whose files is broken is left out and each broken
    file is written to ``quarantine_path`` as ``path,reason`` (always written, header included). More than
    ``max_bad_fraction`` of the videos broken -> :class:`UserError`. Rows keep the listing's order.
    """
    what = desc or "the listing"
    if listing is None or len(listing) == 0:
        raise UserError(f"No videos are listed for {what}; check the annotation files and video folders in the config.")
    missing = [c for c in formats.LISTING_COLUMNS if c not in listing.columns]
    if missing:
        raise ValueError(f"the listing lacks the column(s) {', '.join(missing)}")

    rows = listing.reset_index(drop=True).to_dict("records")
    parts_of_row = [_parts(row, i) for i, row in enumerate(rows)]
    files_of_row = [[p for _, _, p in parts] if parts else [str(row["path"])] for row, parts in zip(rows, parts_of_row)]
    unique = list(dict.fromkeys(p for files in files_of_row for p in files))

    results: dict[str, tuple[VideoInfo | None, str]] = {}
    bar = tqdm(total=len(unique), desc=f"probe {desc}".strip(), unit="video", file=sys.stderr, dynamic_ncols=True)
    with bar:
        for path, info, reason in _map_bounded(_probe_path, unique, workers):
            results[path] = (info, reason)
            bar.update(1)

    kept, quarantined, bad_rows = [], [], 0
    for row, parts, files in zip(rows, parts_of_row, files_of_row):
        broken = [(p, results[p][1]) for p in files if results[p][0] is None]
        if broken:
            bad_rows += 1
            quarantined.extend(broken)
            continue
        infos = [results[p][0] for p in files]
        duration = parts[-1][1] if parts else infos[0].duration
        kept.append({**row, "duration": duration, "fps": infos[0].fps, "num_frames": sum(i.num_frames for i in infos)})

    quarantined = list(dict.fromkeys(quarantined))
    write_quarantine(quarantine_path, quarantined)
    if bad_rows > max_bad_fraction * len(rows):
        raise UserError(
            f"{bad_rows} of {len(rows)} videos of {what} are missing or broken, more than the allowed "
            f"{max_bad_fraction:.1%}; see {os.path.abspath(quarantine_path)} for each file and why."
        )
    extra = [c for c in listing.columns if c not in MANIFEST_COLUMNS]
    manifest = pd.DataFrame(kept, columns=[*MANIFEST_COLUMNS, *extra])
    return _typed(manifest)


# ------------------------------------------------------------------------------------------------------ reading/writing


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    for column in _STR_COLUMNS:
        df[column] = df[column].fillna("").astype(str)
    for column in _INT_COLUMNS:
        df[column] = df[column].astype("int64")
    for column in _FLOAT_COLUMNS:
        df[column] = df[column].astype("float64")
    return df


def _parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a manifest atomically: Parquet when ``path`` ends in ``.parquet`` (needs pyarrow), else CSV."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"a manifest needs the column(s) {', '.join(missing)}")
    path = Path(path)
    parquet = path.suffix.lower() == ".parquet"
    if parquet and not _parquet_available():
        raise UserError(
            f"Cannot write the manifest {path} as Parquet because pyarrow is not installed; give it a .csv name "
            "(or install pyarrow)."
        )
    with atomic_path(path) as tmp:
        if parquet:
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`, with its column types (``segments``/``parts`` ``""`` when
    empty). A missing file, a missing column or a non-numeric value is a :class:`UserError`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"The manifest {path} does not exist; build it with `hico-bench manifest`.")
    if path.suffix.lower() == ".parquet":
        if not _parquet_available():
            raise UserError(f"Cannot read the Parquet manifest {path} because pyarrow is not installed.")
        df = pd.read_parquet(path)
    else:
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        except pd.errors.EmptyDataError:
            raise UserError(f"The manifest {path} is empty (not even a header line).") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"The manifest {path} lacks the column(s) {', '.join(missing)}.")
    numeric = {c: "int64" for c in _INT_COLUMNS} | {c: "float64" for c in _FLOAT_COLUMNS} | EXTRA_COLUMN_TYPES
    for column, dtype in numeric.items():
        if column not in df.columns or df[column].dtype.kind in "iuf":
            continue
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() | ((values % 1 != 0) if dtype == "int64" else False)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise UserError(
                f"{path}, line {row + 2}: column {column} holds {df[column].iloc[row]!r}, which is not "
                f"{'an integer' if dtype == 'int64' else 'a number'}."
            )
        df[column] = values.astype(dtype)
    return _typed(df)


# ------------------------------------------------------------------------------------------------- datasets by kind


def _keys(kind: str, paths: Mapping, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for key in paths:
        if key not in required and key not in optional:
            raise choice_error(f"path key for {kind}", key, (*required, *optional))
    for key in required:
        if key not in paths or paths[key] in (None, ""):
            raise UserError(f"The paths of the {kind} dataset lack the key {key!r} (needed: {', '.join(required)}).")


def _list_k400(paths: Mapping, split: int) -> pd.DataFrame:
    _keys("k400", paths, ("csv", "videos"), ("layout",))
    return formats.read_kinetics(paths["csv"], paths["videos"], layout=paths.get("layout") or "auto")


def _list_uk400(paths: Mapping, split: int) -> pd.DataFrame:
    layout = paths.get("layout") or "full"
    if layout == "full":  # segments_list may be set too (the config keeps both); it is not read
        _keys("uk400", paths, ("csv", "videos"), ("layout", "segments_list"))
        return formats.read_untrimmed_kinetics(paths["csv"], paths["videos"])
    if layout == "segments":
        _keys("uk400", paths, ("segments_list", "videos"), ("layout", "csv"))
        labels = paths.get("csv") or None
        return formats.read_kinetics_segments(paths["segments_list"], paths["videos"], csv_path=labels)
    raise choice_error("uk400 layout", layout, ("full", "segments"))


def _list_ucf101(paths: Mapping, split: int) -> pd.DataFrame:
    _keys("ucf101", paths, ("root", "splits_dir"))
    return formats.read_ucf101(paths["root"], paths["splits_dir"], split=split)


def _list_hmdb51(paths: Mapping, split: int) -> pd.DataFrame:
    _keys("hmdb51", paths, ("root", "splits_dir"))
    return formats.read_hmdb51(paths["root"], paths["splits_dir"], split=split)


def _list_activitynet(paths: Mapping, split: int) -> pd.DataFrame:
    _keys("activitynet", paths, ("json", "videos"))
    return formats.read_activitynet(paths["json"], paths["videos"])


def _list_hacs(paths: Mapping, split: int) -> pd.DataFrame:
    layout = paths.get("layout") or "full"
    if layout == "full":  # segments_list may be set too (the config keeps both); it is not read
        _keys("hacs", paths, ("json", "videos"), ("layout", "segments_list"))
        return formats.read_hacs(paths["json"], paths["videos"])
    if layout == "segments":
        _keys("hacs", paths, ("segments_list", "videos"), ("layout", "json"))
        return formats.read_hacs_segments(paths["segments_list"], paths["videos"], json_path=paths.get("json") or None)
    raise choice_error("hacs layout", layout, ("full", "segments"))


LISTERS: dict[str, Callable[[Mapping, int], pd.DataFrame]] = {
    "k400": _list_k400,
    "uk400": _list_uk400,
    "hacs": _list_hacs,
    "ucf101": _list_ucf101,
    "hmdb51": _list_hmdb51,
    "activitynet": _list_activitynet,
}


def build_dataset_manifest(
    kind: str,
    paths: Mapping[str, object],
    out_path: str | os.PathLike,
    quarantine_path: str | os.PathLike,
    max_bad_fraction: float = 0.05,
    workers: int = 2,
    split: int = 1,
) -> pd.DataFrame:
    """List a real dataset, probe it, write its manifest to ``out_path`` and its quarantine CSV; return the manifest.

    ``kind`` and the keys of ``paths`` it takes (a value marked "one or more" may be a list):

    - ``k400``: ``csv`` (official CSV(s), one or more), ``videos`` (folder(s), one or more), optional ``layout``
      (``auto`` | ``label`` | ``flat`` | ``cvdf``, default ``auto``);
    - ``uk400``: ``layout`` ``full`` (default): ``csv``, ``videos`` (whole source videos); ``layout`` ``segments``:
      ``segments_list`` (``training.txt``, one or more), ``videos`` (the folder of 5-s pieces), optional ``csv``
      (labels by id);
    - ``ucf101``: ``root`` (the UCF-101 class folders), ``splits_dir`` (``ucfTrainTestlist``);
    - ``hmdb51``: ``root`` (the class folders), ``splits_dir`` (``testTrainMulti_7030_splits``);
    - ``activitynet``: ``json`` (ActivityNet v1.3 or HACS segments JSON), ``videos`` (folder(s), one or more);
    - ``hacs`` (its training subset): ``layout`` ``full`` (default): ``json`` (``HACS_segments_v1.1.1.json``),
      ``videos`` (the download's ``ROOT_DIR`` of ``<CLASSNAME>/v_<id>.mp4``, one or more); ``layout`` ``segments``:
      ``segments_list`` (HiCo's ``DATA_ROOT_DIR/training.txt``), ``videos`` (``DATA_ROOT_DIR``, whose ``training/``
      folder holds the pieces), optional ``json`` (labels by id).

    ``split`` (1, 2 or 3) picks the UCF101/HMDB51 split. An unknown kind or key is a :class:`UserError` listing the
    valid ones.
    """
    if kind not in LISTERS:
        raise choice_error("dataset kind", kind, LISTERS)
    listing = LISTERS[kind](paths, split)
    manifest = build_manifest(listing, quarantine_path, max_bad_fraction=max_bad_fraction, workers=workers, desc=kind)
    write_manifest(manifest, out_path)
    return manifest
