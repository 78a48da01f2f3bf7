"""ActivityNet v1.3 / HACS ground-truth files, read once into every subset.

The layout is the one of the official ActivityNet annotation file ``activity_net.v1-3.min.json``::

    {"version": "VERSION 1.3",
     "taxonomy": [{"nodeName": ..., "parentName": ..., ...}, ...],
     "database": {"<youtube id>": {"subset": "training" | "validation" | "testing", "duration": 92.17,
                                   "annotations": [{"segment": [t0, t1], "label": "<class>"}, ...], ...}, ...}}

Video ids are the bare YouTube ids (no ``v_`` prefix); segments are ``[start, end]`` in seconds. HACS files use the
same layout but write durations as strings, which are read as numbers here. The official evaluator
(activitynet/ActivityNet, ``Evaluation/eval_detection.py``) also requires the keys ``taxonomy`` and ``version``; only
``database`` is required here, so that HACS files load as well.

:func:`read_ground_truth` parses a file once into a :class:`GroundTruthFile`, which holds one :class:`GroundTruth`
per subset (``gt_file.subset("validation")``); :func:`load_ground_truth` is the shortcut for one subset.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hico_bench.errors import UserError, choice_error


@dataclass(frozen=True)
class SegmentTable:
    """A flat table of labelled segments (one row per segment); ``score`` is 1 for ground truth."""

    video: np.ndarray  # object array of bare video ids
    start: np.ndarray  # float64 seconds
    end: np.ndarray
    label: np.ndarray  # object array of class names
    score: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, float, float, str, float]]) -> "SegmentTable":
        cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
        return cls(
            video=np.array(cols[0], dtype=object),
            start=np.array(cols[1], dtype=np.float64),
            end=np.array(cols[2], dtype=np.float64),
            label=np.array(cols[3], dtype=object),
            score=np.array(cols[4], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.video)

    def select(self, mask: np.ndarray) -> "SegmentTable":
        return SegmentTable(self.video[mask], self.start[mask], self.end[mask], self.label[mask], self.score[mask])


@dataclass(frozen=True)
class GroundTruth:
    """One subset of an ActivityNet-layout annotation file."""

    path: str
    subset: str
    durations: dict[str, float]  # every video of the subset (NaN when the file gives no duration)
    segments: SegmentTable  # the subset's annotated segments, in file order
    classes: list[str]  # sorted names of the classes with at least one segment in the subset
    known_labels: frozenset[str]  # taxonomy leaves and every annotation label of the file (any subset)
    all_videos: frozenset[str] = field(default_factory=frozenset)  # ids of every subset


@dataclass(frozen=True)
class GroundTruthFile:
    """Every subset of one annotation file, from one parse (:meth:`parse`)."""

    path: str
    version: str | None  # the file's ``version`` (None when absent, as in some HACS files)
    subsets: Mapping[str, GroundTruth]  # subset name -> that subset
    taxonomy_leaves: frozenset[str]  # node names of the ``taxonomy`` that are no other node's parent
    known_labels: frozenset[str]  # taxonomy leaves and every annotation label (any subset)
    all_videos: frozenset[str]  # ids of every subset

    @property
    def classes(self) -> list[str]:
        """Sorted names of the classes with at least one annotated segment in any subset."""
        return sorted(set().union(*(gt.classes for gt in self.subsets.values())))

    def subset(self, name: str) -> GroundTruth:
        """The videos, durations and segments of one subset; an unknown name is a :class:`UserError`."""
        if name not in self.subsets:
            raise choice_error(f"subset (in {self.path})", name, self.subsets)
        return self.subsets[name]

    @classmethod
    def parse(cls, data: Any, path: str | os.PathLike) -> "GroundTruthFile":
        """Check and convert the decoded JSON of an annotation file (``path`` names it in error messages).

        Every video needs ``subset``; every annotation needs ``segment`` (two numbers) and ``label``. A missing
        ``duration`` reads as NaN.
        """
        if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
            raise UserError(f"ground-truth file {path} lacks the key 'database' (the ActivityNet layout).")
        database = data["database"]
        leaves = taxonomy_leaves(data.get("taxonomy"))
        known = set(leaves)
        durations: dict[str, dict[str, float]] = {}
        rows: dict[str, list[tuple[str, float, float, str, float]]] = {}
        for vid, info in database.items():
            where = f"ground-truth file {path}, video {vid!r}"
            if not isinstance(info, dict) or "subset" not in info:
                raise UserError(f"{where} lacks the key 'subset'.")
            subset = info["subset"]
            if not isinstance(subset, str):
                raise UserError(f"{where} has the subset {subset!r}, not a name such as 'validation'.")
            dur = info.get("duration")
            durations.setdefault(subset, {})[vid] = math.nan if dur is None else to_float(dur, f"{where}, 'duration'")
            subset_rows = rows.setdefault(subset, [])
            for i, ann in enumerate(info.get("annotations") or []):
                for key in ("segment", "label"):
                    if not isinstance(ann, dict) or key not in ann:
                        raise UserError(f"{where}, annotation {i} lacks the key {key!r}.")
                t0, t1 = to_segment(ann["segment"], f"{where}, annotation {i}, 'segment'")
                subset_rows.append((vid, t0, t1, ann["label"], 1.0))
                known.add(ann["label"])
        known_labels, all_videos = frozenset(known), frozenset(database)
        subsets = {}
        for name in durations:
            segments = SegmentTable.from_rows(rows[name])
            subsets[name] = GroundTruth(
                path=str(path),
                subset=name,
                durations=durations[name],
                segments=segments,
                classes=sorted(set(segments.label)),
                known_labels=known_labels,
                all_videos=all_videos,
            )
        version = data.get("version")
        return cls(
            path=str(path),
            version=None if version is None else str(version),
            subsets=subsets,
            taxonomy_leaves=frozenset(leaves),
            known_labels=known_labels,
            all_videos=all_videos,
        )


def read_json_file(path: str | os.PathLike, what: str) -> Any:
    """Decode a JSON file; a missing file or invalid JSON is a :class:`UserError` naming ``what`` and the path."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path} does not exist.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} file {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None


def to_float(value: Any, where: str) -> float:
    """``float(value)`` (numbers, or numeric strings as HACS writes them); anything else is a :class:`UserError`."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where} is {value!r}, not a number.") from None


def to_segment(value: Any, where: str) -> tuple[float, float]:
    """A ``[start, end]`` pair of finite numbers; the order of the two is not checked here."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{where} must be a [start, end] pair in seconds, got {value!r}.")
    t0, t1 = to_float(value[0], where), to_float(value[1], where)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise UserError(f"{where} must hold two finite numbers of seconds, got {value!r}.")
    return t0, t1


def taxonomy_leaves(taxonomy: Any) -> set[str]:
    """Names of the ``taxonomy`` nodes that are no other node's parent (ActivityNet's 200 classes); an absent or
    malformed taxonomy gives none."""
    if not isinstance(taxonomy, list):
        return set()
    nodes = [n for n in taxonomy if isinstance(n, dict) and "nodeName" in n]
    parents = {n.get("parentName") for n in nodes}
    return {n["nodeName"] for n in nodes if n["nodeName"] not in parents}


def read_ground_truth(path: str | os.PathLike) -> GroundTruthFile:
    """Read and parse an annotation file once; pick subsets with :meth:`GroundTruthFile.subset`."""
    return GroundTruthFile.parse(read_json_file(path, "ground-truth"), path)


def load_ground_truth(path: str | os.PathLike, subset: str = "validation") -> GroundTruth:
    """One subset of an annotation file (reads the file; to use several subsets, call :func:`read_ground_truth`
    once and pick them with :meth:`GroundTruthFile.subset`)."""
    return read_ground_truth(path).subset(subset)
