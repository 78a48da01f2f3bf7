"""Readers of the real annotation formats -> a listing DataFrame (each reader names the public source of its format).

A *listing* has the manifest columns except the probed ones (see :data:`LISTING_COLUMNS`): ``video_id``, ``path``
(absolute), ``split`` (``train``/``val``/``test``), ``label`` (``""`` when unlabelled), ``label_index`` (-1 when
unlabelled), ``segments`` and ``parts`` (JSON strings or ``""``). Readers never open a video: a listed file that does
not exist stays in the listing with the path where it was expected, and the manifest step
(:mod:`hico_bench.data.manifest`) quarantines it.

Where a reader takes an annotation file or a video folder, it accepts one path or a list of them (for example
Kinetics' ``train.csv`` and ``val.csv`` together, so that one class index covers both). Relative paths are taken from
the working directory. A malformed line raises :class:`~hico_bench.errors.UserError` naming the file and its 1-based
line number (or the JSON key).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pandas as pd

from hico_bench.errors import UserError, choice_error

LISTING_COLUMNS = ("video_id", "path", "split", "label", "label_index", "segments", "parts")
"""Columns every reader returns, in this order (readers may add extra columns after them)."""

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp", ".ogv")
"""File suffixes taken as videos when a folder is searched; when one id has several files, earlier suffixes win."""

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
"""Split spellings found in the real annotation files, mapped to the manifest's ``train``/``val``/``test``."""

KINETICS_LAYOUTS = ("auto", "label", "flat", "cvdf")
SEGMENT_SECONDS = 5
"""Length of HiCo's pre-cut pieces: every piece starts at a multiple of it (the official HiCo code,
``datasets/base/long_video.py``, looks a piece up by ``int(startms / 1000)`` with ``video_length = 5``)."""

PathLike = str | os.PathLike
OneOrMore = PathLike | Sequence[PathLike]


# ----------------------------------------------------------------------------------------------------------- helpers


def _as_paths(value: OneOrMore, what: str) -> list[Path]:
    """One path or a list of paths -> absolute paths that exist (UserError naming the first one that does not)."""
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    if not items:
        raise UserError(f"No {what} was given.")
    out = []
    for item in items:
        path = Path(os.path.abspath(os.path.expanduser(os.fspath(item))))
        if not path.exists():
            raise UserError(f"The {what} {path} does not exist.")
        out.append(path)
    return out


def _dir(value: OneOrMore, what: str) -> list[Path]:
    paths = _as_paths(value, what)
    for path in paths:
        if not path.is_dir():
            raise UserError(f"The {what} {path} is not a folder.")
    return paths


def _line_error(path: Path, line: int, problem: str) -> UserError:
    return UserError(f"{path}, line {line}: {problem}.")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines of a text file (CRLF and a BOM are fine)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, text in enumerate(f, start=1):
                text = text.strip()
                if text:
                    yield number, text
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None


def _int(text: str, path: Path, line: int, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _line_error(path, line, f"{what} must be an integer, found {text.strip()!r}") from None


def _split(text: str, path: Path, line: int | None = None, key: str | None = None) -> str:
    name = SPLIT_NAMES.get(text.strip().lower())
    if name is None:
        problem = f"unknown split {text!r} (expected train, val/validate/validation or test)"
        if key is not None:
            raise UserError(f"{path}, key {key}: {problem}.")
        raise _line_error(path, line or 0, problem)
    return name


def _class_index(labels: Iterable[str]) -> dict[str, int]:
    """Label name -> index into the sorted unique names (empty labels ignored)."""
    return {name: i for i, name in enumerate(sorted({label for label in labels if label}))}


def _frame(rows: list[dict], extra: Sequence[str] = ()) -> pd.DataFrame:
    columns = [*LISTING_COLUMNS, *extra]
    df = pd.DataFrame(rows, columns=columns)
    for column in ("video_id", "path", "split", "label", "segments", "parts"):
        df[column] = df[column].astype(str)
    df["label_index"] = df["label_index"].astype("int64")
    return df.reset_index(drop=True)


def _row(video_id: str, path: Path | str, split: str, label: str, classes: dict[str, int], **extra) -> dict:
    return {
        "video_id": video_id,
        "path": str(path),
        "split": split,
        "label": label,
        "label_index": classes[label] if label else -1,
        "segments": "",
        "parts": "",
        **extra,
    }


class _VideoIndex:
    """Every video file under some folders (one recursive walk), looked up by file name or by stem.

    Lists keep the walk order: folders in the given order, shallower files before deeper ones, names sorted.
    """

    def __init__(self, roots: Sequence[Path]):
        self.by_name: dict[str, list[Path]] = {}
        self.by_stem: dict[str, list[Path]] = {}
        self._by_prefix: dict[str, list[Path]] = {}
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                dirnames.sort()
                for name in sorted(filenames):
                    stem, ext = os.path.splitext(name)
                    if ext.lower() not in VIDEO_EXTENSIONS or name.startswith(".tmp-"):
                        continue
                    path = Path(dirpath) / name
                    self.by_name.setdefault(name, []).append(path)
                    self.by_stem.setdefault(stem, []).append(path)
                    self._by_prefix.setdefault(stem[:11], []).append(path)

    @staticmethod
    def best(paths: Sequence[Path]) -> Path:
        """The preferred one of several files for one video: by suffix order in VIDEO_EXTENSIONS, then walk order."""
        return min(paths, key=lambda p: VIDEO_EXTENSIONS.index(p.suffix.lower()))

    def stems(self, *stems: str) -> list[Path]:
        return [p for stem in stems for p in self.by_stem.get(stem, [])]

    def starting_with(self, youtube_id: str) -> list[Path]:
        """Files whose stem starts with the id (the CVDF rule: ``str(p.stem)[:11]`` is the YouTube id)."""
        if len(youtube_id) >= 11:
            return [p for p in self._by_prefix.get(youtube_id[:11], []) if p.stem.startswith(youtube_id)]
        return [p for stem, paths in self.by_stem.items() if stem.startswith(youtube_id) for p in paths]


class _CaseAwareResolver:
    """Resolve ``root/relative`` against what exists on disk, matching each path component case-insensitively
    when the exact spelling is absent (UCF101's ``HandstandPushups/v_HandStandPushups_*.avi``)."""

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def _entries(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            self._listings[folder] = {}
            for name in names:
                self._listings[folder].setdefault(name.lower(), name)
        return self._listings[folder]

    def resolve(self, relative: str) -> Path:
        exact = self.root / relative
        if exact.exists():
            return exact
        current = self.root
        for part in Path(relative).parts:
            actual = self._entries(current).get(part.lower())
            if actual is None:
                return exact  # not on disk in any spelling: listed as written, quarantined later
            current = current / actual
        return current


# ---------------------------------------------------------------------------------------------------------- Kinetics


def _read_kinetics_csv(path: Path) -> list[dict]:
    """Rows of an official Kinetics CSV: ``label,youtube_id,time_start,time_end,split[,is_cc]`` or the test CSV
    without ``label``. The header decides which columns are present."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UserError(
                    f"{path} is empty; expected a header line such as label,youtube_id,time_start,time_end,split."
                )
            header = [name.strip() for name in header]
            missing = [c for c in ("youtube_id", "time_start", "time_end", "split") if c not in header]
            if missing:
                raise _line_error(
                    path, 1,
                    f"the header lacks the column(s) {', '.join(missing)} "
                    "(expected label,youtube_id,time_start,time_end,split[,is_cc])",
                )
            col = {name: i for i, name in enumerate(header)}
            for fields in reader:
                line = reader.line_num
                if not any(field.strip() for field in fields):
                    continue
                if len(fields) != len(header):
                    problem = f"expected {len(header)} comma-separated fields as in the header, found {len(fields)}"
                    raise _line_error(path, line, problem)
                youtube_id = fields[col["youtube_id"]].strip()
                if not youtube_id:
                    raise _line_error(path, line, "the youtube_id field is empty")
                start = _int(fields[col["time_start"]], path, line, "time_start")
                end = _int(fields[col["time_end"]], path, line, "time_end")
                if end <= start:
                    raise _line_error(path, line, f"time_end {end} is not after time_start {start}")
                rows.append({
                    "youtube_id": youtube_id,
                    "label": fields[col["label"]].strip() if "label" in col else "",
                    "time_start": start,
                    "time_end": end,
                    "split": _split(fields[col["split"]], path, line),
                })
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return rows


def kinetics_clip_name(youtube_id: str, time_start: int, time_end: int) -> str:
    """The official trimmed-clip file name, e.g. ``0wR5jVB-WPk_000417_000427.mp4`` (ActivityNet Crawler/Kinetics)."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


def kinetics_label_dirs(label: str) -> list[str]:
    """Folder names a class may have on disk: the CSV label itself, mmaction2's spaces->``_`` rename, and its older
    rename that also turns parentheses into ``-``."""
    underscored = label.replace(" ", "_")
    names = [label, underscored, underscored.replace("(", "-").replace(")", "-")]
    return list(dict.fromkeys(names))



def read_kinetics(csv_path: OneOrMore, videos_dir: OneOrMore, layout: str = "auto") -> pd.DataFrame:
    """Trimmed Kinetics from the official CSV(s) -> listing, plus ``time_start``/``time_end``.

    The CSVs are ActivityNet's ``Crawler/Kinetics/data/kinetics-400_*.csv`` (or the CVDF mirror's
    ``{train,val,test}.csv``): ``label,youtube_id,time_start,time_end,split[,is_cc]``, the test CSV without
    ``label``. Clip files are named ``{id}_{start:06d}_{end:06d}.mp4`` (the crawler's ``download.py``). ``layout``
    says where they are:

    - ``label``: ``<videos_dir>/<label>/`` (or mmaction2's renamed folder, see :func:`kinetics_label_dirs`);
    - ``flat``: ``<videos_dir>/`` itself;
    - ``cvdf``: any video file below ``videos_dir`` whose stem starts with the 11-character YouTube id (the CVDF
      mirror; a stem holding ``_{start:06d}_`` is preferred);
    - ``auto``: one walk of ``videos_dir``: the exact file name (in the row's label folder first, then anywhere),
      else the ``cvdf`` rule.

    Several folders are searched in order. ``video_id`` is the YouTube id; class indices are the sorted unique labels
    of all the CSVs given. A clip found nowhere is listed where the layout expects it.
    """
    if layout not in KINETICS_LAYOUTS:
        raise choice_error("Kinetics layout", layout, KINETICS_LAYOUTS)
    csvs = _as_paths(csv_path, "Kinetics annotation CSV")
    dirs = _dir(videos_dir, "Kinetics video folder")
    records = [r for path in csvs for r in _read_kinetics_csv(path)]
    classes = _class_index(r["label"] for r in records)
    index = _VideoIndex(dirs) if layout in ("auto", "cvdf") else None

    rows = []
    for r in records:
        yid, label = r["youtube_id"], r["label"]
        name = kinetics_clip_name(yid, r["time_start"], r["time_end"])
        label_dirs = kinetics_label_dirs(label) if label else []
        if layout == "label":
            found = next((d / ld / name for d in dirs for ld in label_dirs if (d / ld / name).is_file()), None)
        elif layout == "flat":
            found = next((d / name for d in dirs if (d / name).is_file()), None)
        else:
            found = None
            if layout == "auto":
                exact = index.by_name.get(name, [])
                found = next((p for p in exact if p.parent.name in label_dirs), exact[0] if exact else None)
            if found is None:
                same_id = index.starting_with(yid)
                window = f"_{r['time_start']:06d}_"
                found = next((p for p in same_id if window in p.stem), same_id[0] if same_id else None)
        if found is None:
            found = _expected_kinetics_path(dirs[0], label_dirs, name, layout)
        rows.append(_row(yid, found, r["split"], label, classes, time_start=r["time_start"], time_end=r["time_end"]))
    return _frame(rows, extra=("time_start", "time_end"))


def _expected_kinetics_path(root: Path, label_dirs: list[str], name: str, layout: str) -> Path:
    """Where a clip that was not found should have been: its label folder (an existing spelling if any) or flat."""
    if label_dirs and layout in ("label", "auto"):
        existing = next((ld for ld in label_dirs if (root / ld).is_dir()), None)
        if existing is not None:
            return root / existing / name
        if layout == "label":
            return root / label_dirs[0] / name
    return root / name


def read_untrimmed_kinetics(csv_path: OneOrMore, videos_dir: OneOrMore) -> pd.DataFrame:
    """Untrimmed Kinetics ("UK-400"): one full source video per YouTube id, joined to the CSV(s).

    The HiCo README defines it as the Kinetics-400 videos not cut to their 10-s window.

    A video is any file below ``videos_dir`` with a suffix in :data:`VIDEO_EXTENSIONS` whose stem is the id or
    ``v_<id>``. An id on several CSV rows gives one row, with the label and split of its first row. An id with no file
    is listed as ``<videos_dir>/<id>.mp4``.
    """
    csvs = _as_paths(csv_path, "Kinetics annotation CSV")
    dirs = _dir(videos_dir, "untrimmed Kinetics video folder")
    records = [r for path in csvs for r in _read_kinetics_csv(path)]
    classes = _class_index(r["label"] for r in records)
    index = _VideoIndex(dirs)
    rows, seen = [], set()
    for r in records:
        yid = r["youtube_id"]
        if yid in seen:
            continue
        seen.add(yid)
        candidates = index.stems(yid, f"v_{yid}")
        path = index.best(candidates) if candidates else dirs[0] / f"{yid}.mp4"
        rows.append(_row(yid, path, r["split"], r["label"], classes))
    return _frame(rows)


def _split_of_list(path: Path) -> str:
    split = SPLIT_NAMES.get(path.stem.lower())
    if split is None:
        raise UserError(
            f"Cannot tell the split of the segment list {path} from its name; "
            "name it training.txt, validation.txt or testing.txt, or give the split."
        )
    return split


def read_kinetics_segments(
    list_path: OneOrMore,
    segments_dir: PathLike,
    csv_path: OneOrMore | None = None,
    split: str | None = None,
) -> pd.DataFrame:
    """HiCo's 5-s segment layout of untrimmed videos -> one row per video.

    The layout of the HiCo README ("Data Preparation") as its ``datasets/base/long_video.py`` reads it.

    ``list_path`` (``training.txt`` ...) has lines ``youtube_id,startms,endms`` grouped by video and ordered in time;
    the split comes from the list's name (training/validation/testing) unless ``split`` is given. Every piece must
    start at a multiple of 5 s, at the end of the previous one (the first at 0), and last at most 5 s (so only a
    video's last piece can be shorter). Pieces are files ``v_{id}_{startms}_{endms}.mp4`` (the list's own digits,
    normally 7) in ``segments_dir`` or, HiCo's HACS layout, in ``segments_dir/<list name>/`` when that folder exists.

    ``parts`` = JSON ``[[start_s, end_s, path], ...]`` (the video's duration is the last end); ``path`` = the first
    piece. ``csv_path`` (Kinetics CSVs) attaches labels by id; otherwise rows are unlabelled.
    """
    if split is not None and split not in SPLIT_NAMES:
        raise choice_error("split", split, ("train", "val", "test"))
    lists = _as_paths(list_path, "segment list")
    root = _dir(segments_dir, "segment folder")[0]
    labels: dict[str, str] = {}
    if csv_path is not None:
        for r in (r for path in _as_paths(csv_path, "Kinetics annotation CSV") for r in _read_kinetics_csv(path)):
            labels.setdefault(r["youtube_id"], r["label"])
    return _segment_listing(lists, root, labels, split)


def _segment_listing(
    lists: list[Path], root: Path, labels: dict[str, str], split: str | None, classes: dict[str, int] | None = None
) -> pd.DataFrame:
    """One row per video of HiCo's segment lists (see :func:`read_kinetics_segments`), labelled from ``labels``
    (class indices: ``classes``, by default the sorted labels)."""
    classes = _class_index(labels.values()) if classes is None else classes
    step = SEGMENT_SECONDS * 1000

    rows = []
    for path in lists:
        list_split = SPLIT_NAMES[split] if split is not None else _split_of_list(path)
        folder = str(root / path.stem if (root / path.stem).is_dir() else root)
        videos: dict[str, list] = {}
        current = None
        for line, text in _lines(path):
            fields = [f.strip() for f in text.split(",")]
            if len(fields) != 3:
                problem = f"expected 3 comma-separated fields video,startms,endms, found {len(fields)}"
                raise _line_error(path, line, problem)
            vid, start_text, end_text = fields
            start = _int(start_text, path, line, "startms")
            end = _int(end_text, path, line, "endms")
            pieces = videos.get(vid)
            if vid != current:
                if pieces is not None:
                    problem = f"video {vid} appears again after other videos (lines must be grouped by video)"
                    raise _line_error(path, line, problem)
                pieces = videos[vid] = []
                current = vid
            if start % step:
                raise _line_error(path, line, f"piece start {start} ms is not a multiple of {SEGMENT_SECONDS} s")
            expected = pieces[-1][1] if pieces else 0
            if start != expected:
                raise _line_error(
                    path, line,
                    f"piece of video {vid} starts at {start} ms but the previous one ends at {expected} ms "
                    "(pieces must be consecutive and ordered in time)",
                )
            if not 0 < end - start <= step:
                problem = f"piece {start}-{end} ms must last more than 0 and at most {SEGMENT_SECONDS} s"
                raise _line_error(path, line, problem)
            pieces.append((start, end, os.path.join(folder, f"v_{vid}_{start_text}_{end_text}.mp4")))
        for vid, pieces in videos.items():
            parts = [[s / 1000, e / 1000, p] for s, e, p in pieces]
            row = _row(vid, pieces[0][2], list_split, labels.get(vid, ""), classes)
            row["parts"] = json.dumps(parts)
            rows.append(row)
    return _frame(rows)


# ---------------------------------------------------------------------------------------------------- UCF101, HMDB51


def _check_split_number(split: int, dataset: str) -> int:
    if split not in (1, 2, 3):
        raise choice_error(f"{dataset} split", split, (1, 2, 3))
    return int(split)


def read_ucf101_classes(class_ind: Path) -> list[str]:
    """Class names from ``classInd.txt`` (lines ``1 ApplyEyeMakeup`` ... numbered 1, 2, 3, ... in order)."""
    names = []
    for line, text in _lines(class_ind):
        fields = text.split()
        if len(fields) != 2:
            raise _line_error(class_ind, line, f"expected 'number ClassName', found {len(fields)} fields")
        number = _int(fields[0], class_ind, line, "the class number")
        if number != len(names) + 1:
            raise _line_error(class_ind, line, f"class number {number} is out of order (expected {len(names) + 1})")
        names.append(fields[1])
    if not names:
        raise UserError(f"{class_ind} lists no classes.")
    return names


def read_ucf101(root: PathLike, splits_dir: PathLike, split: int = 1) -> pd.DataFrame:
    """UCF101 train/test lists of one split (the official ``UCF101TrainTestSplits-RecognitionTask.zip``) -> listing.

    ``splits_dir`` holds ``classInd.txt``, ``trainlist0N.txt`` (``Class/v_Class_gXX_cYY.avi <1-based label>``) and
    ``testlist0N.txt`` (no label: the class of the folder name); the ``ucfTrainTestlist/`` folder of the official zip
    may be given or its parent. ``label_index`` = classInd number - 1. Files are resolved case-aware against ``root``
    (the list's ``HandstandPushups/v_HandStandPushups_*`` spelling and its sed-ed variants); ``video_id`` is the file
    stem on disk; the class name stays classInd's.
    """
    split = _check_split_number(split, "UCF101")
    root_dir = _dir(root, "UCF101 video folder")[0]
    lists_dir = _dir(splits_dir, "UCF101 split folder")[0]
    if not (lists_dir / "classInd.txt").exists() and (lists_dir / "ucfTrainTestlist" / "classInd.txt").exists():
        lists_dir = lists_dir / "ucfTrainTestlist"
    classes = read_ucf101_classes(_as_paths(lists_dir / "classInd.txt", "UCF101 class list")[0])
    index = {name: i for i, name in enumerate(classes)}
    by_lower = {name.lower(): name for name in classes}
    resolver = _CaseAwareResolver(root_dir)

    rows = []
    for kind in ("train", "test"):
        list_path = _as_paths(lists_dir / f"{kind}list{split:02d}.txt", f"UCF101 {kind} list")[0]
        for line, text in _lines(list_path):
            fields = text.split()
            if len(fields) not in (1, 2) or (kind == "train" and len(fields) != 2):
                expected = "'Class/video.avi label'" if kind == "train" else "'Class/video.avi'"
                raise _line_error(list_path, line, f"expected {expected}, found {len(fields)} fields")
            relative = fields[0].replace("\\", "/")
            folder = relative.split("/")[0] if "/" in relative else ""
            if not folder:
                problem = f"the path {relative!r} has no class folder (expected Class/video.avi)"
                raise _line_error(list_path, line, problem)
            name = by_lower.get(folder.lower())
            if len(fields) == 2:
                number = _int(fields[1], list_path, line, "the label")
                if not 1 <= number <= len(classes):
                    raise _line_error(list_path, line, f"label {number} is out of range 1..{len(classes)}")
                if name is not None and name != classes[number - 1]:
                    raise _line_error(
                        list_path, line, f"label {number} ({classes[number - 1]}) disagrees with the folder {folder!r}"
                    )
                name = classes[number - 1]
            elif name is None:
                raise _line_error(list_path, line, f"class folder {folder!r} is not in classInd.txt")
            path = resolver.resolve(relative)
            rows.append(_row(path.stem, path, kind, name, index))
    return _frame(rows)


def read_hmdb51(root: PathLike, splits_dir: PathLike, split: int = 1) -> pd.DataFrame:
    """HMDB51 split files (the official ``test_train_splits.rar``) -> listing.

    ``splits_dir`` is ``testTrainMulti_7030_splits/`` (or its parent) with ``<class>_test_split{N}.txt``; lines
    ``<video>.avi <flag>`` (trailing spaces allowed): 1 train, 2 test, 0 unused (left out). Class ids = sorted class
    names; path ``<root>/<class>/<video>.avi``; ``video_id`` = the file stem.
    """
    split = _check_split_number(split, "HMDB51")
    root_dir = _dir(root, "HMDB51 video folder")[0]
    lists_dir = _dir(splits_dir, "HMDB51 split folder")[0]
    if (lists_dir / "testTrainMulti_7030_splits").is_dir():
        lists_dir = lists_dir / "testTrainMulti_7030_splits"
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in lists_dir.iterdir() if p.name.endswith(suffix) and len(p.name) > len(suffix))
    if not files:
        raise UserError(f"The HMDB51 split folder {lists_dir} holds no *{suffix} files.")
    classes = {p.name[: -len(suffix)]: p for p in files}
    index = _class_index(classes)
    resolver = _CaseAwareResolver(root_dir)
    flags = {1: "train", 2: "test"}

    rows = []
    for name in sorted(classes):
        list_path = classes[name]
        for line, text in _lines(list_path):
            fields = text.rsplit(None, 1)
            if len(fields) != 2:
                raise _line_error(list_path, line, "expected '<video>.avi <flag>' with flag 0, 1 or 2")
            video, flag_text = fields
            flag = _int(flag_text, list_path, line, "the flag")
            if flag not in (0, 1, 2):
                raise _line_error(list_path, line, f"flag {flag} is not 0 (unused), 1 (train) or 2 (test)")
            if flag == 0:
                continue
            path = resolver.resolve(f"{name}/{video}")
            rows.append(_row(Path(video).stem, path, flags[flag], name, index))
    return _frame(rows)


# ------------------------------------------------------------------------------------------------ ActivityNet, HACS


def _key(*parts: object) -> str:
    return "".join(f"[{json.dumps(p)}]" for p in parts)


def _read_anet_json(path: Path) -> list[tuple[str, str, float, list[dict]]]:
    """``(id, split, duration, annotations)`` of every video of an ActivityNet-layout JSON, in the file's order.

    ``annotations`` = ``[{"segment": [t0, t1], "label": name}, ...]``. A malformed entry is a :class:`UserError`
    naming the file and the JSON key; invalid JSON names the line.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise UserError(f"{path} lacks the key 'database' (an object of videos by id).")
    taxonomy = None
    if isinstance(data.get("taxonomy"), list) and data["taxonomy"]:
        taxonomy = {node.get("nodeName") for node in data["taxonomy"] if isinstance(node, dict)}

    def bad(key: str, problem: str) -> UserError:
        return UserError(f"{path}, key {key}: {problem}.")

    entries = []
    for vid, entry in data["database"].items():
        if not isinstance(entry, dict):
            raise bad(_key("database", vid), "expected an object with duration, subset and annotations")
        for field in ("duration", "subset", "annotations"):
            if field not in entry:
                raise bad(_key("database", vid), f"the key {field!r} is missing")
        try:
            duration = float(entry["duration"])
        except (TypeError, ValueError):
            raise bad(_key("database", vid, "duration"), f"expected a number, found {entry['duration']!r}") from None
        split = _split(str(entry["subset"]), path, key=_key("database", vid, "subset"))
        if not isinstance(entry["annotations"], list):
            raise bad(_key("database", vid, "annotations"), "expected a list")
        annotations = []
        for k, ann in enumerate(entry["annotations"]):
            key = _key("database", vid, "annotations", k)
            if not isinstance(ann, dict) or "segment" not in ann or "label" not in ann:
                raise bad(key, "expected an object with the keys 'segment' and 'label'")
            segment, label = ann["segment"], ann["label"]
            try:
                t0, t1 = (float(t) for t in segment)
            except (TypeError, ValueError):
                raise bad(key + '["segment"]', f"expected two numbers [t0, t1], found {segment!r}") from None
            if not isinstance(label, str) or not label:
                raise bad(key + '["label"]', f"expected a class name, found {label!r}")
            if taxonomy is not None and label not in taxonomy:
                raise bad(key + '["label"]', f"the label {label!r} is not in the file's taxonomy")
            annotations.append({"segment": [t0, t1], "label": label})
        entries.append((vid, split, duration, annotations))
    return entries


def read_activitynet(json_path: PathLike, videos_dir: OneOrMore) -> pd.DataFrame:
    """ActivityNet v1.3 / HACS segments JSON -> listing, plus ``annotated_duration``.

    The layout of ``activity_net.v1-3.min.json`` that the official evaluator reads (activitynet/ActivityNet,
    ``Evaluation/eval_detection.py``), which HACS Segments' ``HACS_segments_v1.1.1.json`` shares
    (hangzhaomit/HACS-dataset).

    ``database[id] = {duration, subset, annotations: [{segment: [t0, t1], label}]}``; HACS gives ``duration`` as a
    string. Subsets training/validation/testing -> train/val/test. Videos are ``v_<id>.<ext>`` or ``<id>.<ext>``
    anywhere below ``videos_dir`` (HACS: ``<class>/v_<id>.mp4``); an id with no file is listed as
    ``<videos_dir>/v_<id>.mp4``. ``segments`` = JSON list of ``{"segment": [t0, t1], "label": name}`` (``[]`` for an
    unannotated video); ``label`` = the first annotation's label; class indices = sorted unique annotation labels
    (each must be a node of the ``taxonomy`` when the file has one).
    """
    path = _as_paths(json_path, "ActivityNet annotation JSON")[0]
    dirs = _dir(videos_dir, "ActivityNet video folder")
    entries = _read_anet_json(path)
    classes = _class_index(a["label"] for _, _, _, anns in entries for a in anns)
    index = _VideoIndex(dirs)
    rows = []
    for vid, split, duration, anns in entries:
        candidates = index.stems(f"v_{vid}", vid)
        file = index.best(candidates) if candidates else dirs[0] / f"v_{vid}.mp4"
        label = anns[0]["label"] if anns else ""
        row = _row(vid, file, split, label, classes, annotated_duration=duration)
        row["segments"] = json.dumps(anns)
        rows.append(row)
    return _frame(rows, extra=("annotated_duration",))


HACS_SUBSETS = ("training", "validation", "testing")
"""The subsets of HACS Segments v1.1.1 (37,618 / 5,982 / 5,988 videos; the testing subset has no labels)."""


def hacs_class_dir(label: str) -> str:
    """The folder HACS's ``download_videos.py`` saves a class's videos in: the label with spaces turned to ``_``."""
    return label.replace(" ", "_")


def read_hacs(json_path: PathLike, videos_dir: OneOrMore, subsets: Sequence[str] = ("training",)) -> pd.DataFrame:
    """HACS Segments v1.1.1 as downloaded (hangzhaomit/HACS-dataset) -> listing, plus ``annotated_duration``.

    ``HACS_segments_v1.1.1.json`` has ActivityNet's layout (see :func:`read_activitynet`) with ``duration`` as a
    string (``"92.166667"``). The official ``download_videos.py`` saves every video as
    ``ROOT_DIR/<CLASSNAME>/v_<id>.mp4`` (short side 256), ``CLASSNAME`` being the label with spaces turned to ``_``, in
    one folder per label of the video's annotations, and skips the testing subset. A video is looked up in its label
    folders first, then anywhere below ``videos_dir`` as ``v_<id>.<ext>`` or ``<id>.<ext>``; one found nowhere is
    listed as ``<videos_dir>/<CLASSNAME of its first label>/v_<id>.mp4``.

    Only the videos of ``subsets`` are listed (names as in the file; by default ``training``, the part HiCo pretrains
    on); class indices are the sorted labels of the whole file, whatever the subsets.
    """
    wanted = set()
    for subset in subsets:
        if subset not in HACS_SUBSETS:
            raise choice_error("HACS subset", subset, HACS_SUBSETS)
        wanted.add(SPLIT_NAMES[subset])
    path = _as_paths(json_path, "HACS segments JSON")[0]
    dirs = _dir(videos_dir, "HACS video folder")
    entries = _read_anet_json(path)
    classes = _class_index(a["label"] for _, _, _, anns in entries for a in anns)
    index = _VideoIndex(dirs)
    rows = []
    for vid, split, duration, anns in entries:
        if split not in wanted:
            continue
        folders = list(dict.fromkeys(f for a in anns for f in (hacs_class_dir(a["label"]), a["label"])))
        candidates = index.stems(f"v_{vid}", vid)
        in_class = [p for folder in folders for p in candidates if p.parent.name == folder]
        if in_class:
            file = in_class[0]
        elif candidates:
            file = index.best(candidates)
        else:
            file = dirs[0] / (folders[0] if folders else "") / f"v_{vid}.mp4"
        label = anns[0]["label"] if anns else ""
        row = _row(vid, file, split, label, classes, annotated_duration=duration)
        row["segments"] = json.dumps(anns)
        rows.append(row)
    return _frame(rows, extra=("annotated_duration",))


def read_hacs_segments(
    list_path: OneOrMore, segments_dir: PathLike, json_path: PathLike | None = None, split: str | None = None
) -> pd.DataFrame:
    """HACS in HiCo's 5-s segment layout -> one row per video (see :func:`read_kinetics_segments` for the lists).

    The official ``datasets/base/long_video.py`` reads a set whose ``DATA_ROOT_DIR`` does not contain ``k400`` (HACS)
    from ``DATA_ROOT_DIR/training.txt`` and ``DATA_ROOT_DIR/training/v_<id>_<startms>_<endms>.mp4``: give
    ``DATA_ROOT_DIR/training.txt`` as ``list_path`` and ``DATA_ROOT_DIR`` as ``segments_dir``. ``json_path`` (the
    HACS segments JSON) attaches each video's first label by id, with the class indices of :func:`read_hacs`;
    otherwise rows are unlabelled.
    """
    if split is not None and split not in SPLIT_NAMES:
        raise choice_error("split", split, ("train", "val", "test"))
    lists = _as_paths(list_path, "segment list")
    root = _dir(segments_dir, "segment folder")[0]
    labels: dict[str, str] = {}
    classes = None
    if json_path is not None:
        entries = _read_anet_json(_as_paths(json_path, "HACS segments JSON")[0])
        classes = _class_index(a["label"] for _, _, _, anns in entries for a in anns)
        labels = {vid: anns[0]["label"] for vid, _, _, anns in entries if anns}
    return _segment_listing(lists, root, labels, split, classes)
