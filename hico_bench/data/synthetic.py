"""The tiny synthetic benchmark: small videos written in the real datasets' on-disk formats (those that the readers of
:mod:`hico_bench.data.formats` take).

:func:`synthesize` writes, deterministically from a seed, under ``root``:

- ``kinetics400/annotations/{train,val}.csv`` and ``kinetics400/videos/<label>/<id>_<start:06d>_<end:06d>.mp4``:
  trimmed clips, each one scene cut from its untrimmed source at integer seconds;
- ``kinetics400_untrimmed/videos/<id>.mp4``: the full sources (same ids), and with ``segments_layout`` HiCo's 5-s
  pieces ``kinetics400_untrimmed/clip_5s/v_<id>_<startms:07d>_<endms:07d>.mp4`` with ``training.txt`` (train ids)
  and ``validation.txt`` (val ids) beside ``clip_5s/``;
- ``ucf101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` with ``ucf101/ucfTrainTestlist/`` (classInd, 3 splits, whole
  groups on one side);
- ``hmdb51/videos/<class>/<name>.avi`` with ``hmdb51/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt``;
- ``activitynet/activity_net.v1-3.min.json`` and ``activitynet/videos/v_<id>.mp4``;
- ``hacs/HACS_v1.1.1/HACS_segments_v1.1.1.json`` (ActivityNet's layout, ``duration`` a string with 6 decimals, no
  taxonomy) and ``hacs/videos/<CLASSNAME>/v_<id>.mp4`` (the label with spaces turned to ``_``), as HACS's
  ``download_videos.py`` saves them; subsets training and validation (the official download skips testing);
- ``synthetic.json``: the settings, the seed and every video's scenes (shape, motion, times, colours), written last.

Content (designed so that pretraining has something to learn and HiCo's cues exist). A scene is one object of some
*shape* moving in one of four ways (``rise``, ``fall``, ``sway`` = horizontal oscillation, ``pulse`` = size
oscillation; all unchanged by a horizontal flip) in front of a smooth two-colour background that pans slowly.
Colours, background, position, size, speed and phase are drawn anew for every scene: they are nuisances that crop,
colour jitter and grayscale remove; the object is always far from the background in luma, so it survives grayscale.
Nothing is fixed per video or per scene except through these drawn values (no texture, border or static pattern).

- Kinetics: a class is a *topic* = a shape. An untrimmed source is a run of scenes of its topic's shape, each with
  its own look and motion: close frames look alike, distant scenes look different but share the shape.
- HACS: a class is a topic = a shape, as for Kinetics (a second, independent set of untrimmed videos). Each scene
  is an action of the topic (one of the four motions; annotated as a segment of the class) or background (the
  topic's shape idling), each with its own look; at least one scene per video is an action.
- UCF101 / HMDB51 / ActivityNet: a class is a (shape, motion) pair; each shape comes with two motions and each motion
  with several shapes, so neither alone gives the class (UCF101 and HMDB51 use disjoint pairs; ActivityNet shares
  half of its pairs with each).
  A UCF101 group (``gXX``) shares one palette, like sibling clips of one source video.
- ActivityNet: each video has action segments of its class separated by background scenes: the class's shape
  idling (tiny random jitter), no object, or a distractor shape drifting slowly.

Settings (nested dict; missing keys take the defaults declared in :data:`hico_bench.settings.SYNTHETIC`; ``[lo, hi]`` is an inclusive range drawn per
item, a single number is fixed):

- ``frame_size`` (px, even): square frame side. ``fps`` (frames/s, integer). ``object_size`` ([lo, hi], fraction
  of the frame side): object bounding box. ``distractor_prob`` (probability per Kinetics/UCF/HMDB scene): a second,
  smaller object of another shape drifting slowly. ``segments_layout`` (bool): also write the 5-s piece layout.
- ``kinetics``: ``classes`` (topics, at most 12), ``videos_per_class`` (untrimmed sources per class, train + val),
  ``val_per_class`` (of those, in ``val.csv``), ``scenes`` ([lo, hi], scenes per source), ``scene_seconds``
  ([lo, hi], integer s per scene; the last scene gets 0 to fps-1 extra frames), ``clip_seconds`` (integer s of a
  trimmed clip, at most the shortest scene).
- ``ucf101``: ``classes`` (at most 48), ``groups`` (groups per class, at least 2), ``clips_per_group`` ([lo, hi]),
  ``seconds`` ([lo, hi], s per clip). Split k tests ``b = max(1, round(groups * 7 / 25))`` consecutive groups
  starting at group ``(k - 1) * b + 1`` (wrapping around), like the official lists (25 groups, 7 per test split).
- ``hmdb51``: ``classes`` (at most 48), ``videos_per_class``, ``train_per_class`` and ``test_per_class`` (per split;
  the rest are flagged 0, unused), ``seconds`` ([lo, hi], s per video).
- ``activitynet``: ``classes`` (at most 48), ``videos`` (total), ``validation_videos`` (of those, subset
  ``validation``; the rest ``training``), ``segments`` ([lo, hi], action segments per video), ``segment_seconds``
  ([lo, hi], s per segment), ``background_seconds`` ([lo, hi], s of each background run before, between and after
  the segments).
- ``hacs``: ``classes`` (topics, at most 12), ``videos_per_class`` (training + validation), ``val_per_class`` (of
  those, subset ``validation``), ``scenes`` ([lo, hi], scenes per video), ``scene_seconds`` ([lo, hi], integer s per
  scene; the last scene gets 0 to fps-1 extra frames).

Every random draw comes from ``numpy.random.default_rng([seed, dataset])``, one stream per dataset, so the same seed
gives byte-identical annotation files and identical decoded frames (adding a dataset changes no other dataset's
files). The defaults are about 125k frames of 32 x 32 px (13k of them HACS), about a minute of CPU time shared by the
workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hico_bench.data.video import write_video
from hico_bench.errors import UserError
from hico_bench.io import write_json, write_text

# ------------------------------------------------------------------------------------------------------ vocabulary

SHAPES: tuple[dict[str, str], ...] = (
    {"key": "hbar", "kinetics": "bar (horizontal)", "camel": "FlatBar", "snake": "flat_bar", "plain": "flat bar"},
    {"key": "vbar", "kinetics": "bar (vertical)", "camel": "Pole", "snake": "pole", "plain": "pole"},
    {"key": "plus", "kinetics": "plus sign", "camel": "PlusSign", "snake": "plus_sign", "plain": "plus sign"},
    {"key": "ring", "kinetics": "ring", "camel": "Ring", "snake": "ring", "plain": "ring"},
    {"key": "triangle_up", "kinetics": "triangle (pointing up)", "camel": "Triangle", "snake": "triangle",
     "plain": "triangle"},
    {"key": "square", "kinetics": "square", "camel": "Square", "snake": "square", "plain": "square"},
    {"key": "x", "kinetics": "cross (diagonal)", "camel": "Cross", "snake": "cross", "plain": "cross"},
    {"key": "disk", "kinetics": "disk", "camel": "Disk", "snake": "disk", "plain": "disk"},
    {"key": "triangle_down", "kinetics": "triangle (pointing down)", "camel": "Wedge", "snake": "wedge",
     "plain": "wedge"},
    {"key": "frame", "kinetics": "square frame", "camel": "Frame", "snake": "frame", "plain": "frame"},
    {"key": "diamond", "kinetics": "diamond", "camel": "Diamond", "snake": "diamond", "plain": "diamond"},
    {"key": "dumbbell", "kinetics": "dumbbell", "camel": "Dumbbell", "snake": "dumbbell", "plain": "dumbbell"},
)
"""Object shapes, most distinct at low resolution first; the first ``kinetics.classes`` are the Kinetics topics."""

MOTIONS: tuple[dict[str, str], ...] = (
    {"key": "rise", "camel": "Rising", "snake": "rise", "plain": "Rising"},
    {"key": "fall", "camel": "Falling", "snake": "fall", "plain": "Falling"},
    {"key": "sway", "camel": "Swaying", "snake": "sway", "plain": "Swaying"},
    {"key": "pulse", "camel": "Pulsing", "snake": "pulse", "plain": "Pulsing"},
)
"""Action motions (all unchanged by a horizontal flip). ``idle`` and ``drift`` are background motions."""

DATASET_OFFSETS = {"ucf101": 0, "hmdb51": 2, "activitynet": 1}
"""Motion offset of each downstream dataset in :func:`class_pairs` (different pairs per dataset)."""

_STREAMS = {"kinetics": 1, "ucf101": 2, "hmdb51": 3, "activitynet": 4, "hacs": 5}
_DATASET_DIRS = ("kinetics400", "kinetics400_untrimmed", "ucf101", "hmdb51", "activitynet", "hacs")
HACS_ACTION_PROB = 0.6
"""Probability that a scene of a synthetic HACS video is an action of its class (else background)."""
HACS_JSON = "hacs/HACS_v1.1.1/HACS_segments_v1.1.1.json"
_MARKER = ".synthetic-benchmark"
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
_SUPERSAMPLE = 2


# -------------------------------------------------------------------------------------------------------- settings


def _at_most(value: int, limit: int, key: str, why: str) -> None:
    if value > limit:
        raise UserError(f"setting synthetic.{key} must be at most {limit} ({why}), not {value}.")


def resolve_settings(settings: dict | None = None) -> dict:
    """The declared settings (:data:`hico_bench.settings.SYNTHETIC`: types, bounds, ranges as ``[lo, hi]``) updated
    with ``settings``, and the checks that involve several keys; a UserError names the key (``synthetic.<key>``)."""
    from hico_bench.settings import SYNTHETIC

    s = SYNTHETIC.resolve(settings, where="synthetic")
    if s["frame_size"] % 2:
        raise UserError(f"setting synthetic.frame_size must be even (H.264 4:2:0), not {s['frame_size']}.")
    max_pairs = len(SHAPES) * len(MOTIONS)
    k, u, h, a, c = s["kinetics"], s["ucf101"], s["hmdb51"], s["activitynet"], s["hacs"]
    _at_most(k["classes"], len(SHAPES), "kinetics.classes", "one topic per shape")
    _at_most(c["classes"], len(SHAPES), "hacs.classes", "one topic per shape")
    for key, value in (("ucf101.classes", u["classes"]), ("hmdb51.classes", h["classes"]),
                       ("activitynet.classes", a["classes"])):
        _at_most(value, max_pairs, key, "one class per (shape, motion) pair")
    _at_most(k["val_per_class"], k["videos_per_class"], "kinetics.val_per_class", "kinetics.videos_per_class")
    _at_most(c["val_per_class"], c["videos_per_class"], "hacs.val_per_class", "hacs.videos_per_class")
    _at_most(a["validation_videos"], a["videos"], "activitynet.validation_videos", "activitynet.videos")
    _at_most(k["clip_seconds"], k["scene_seconds"][0], "kinetics.clip_seconds",
             "the shortest scene, synthetic.kinetics.scene_seconds: a trimmed clip is one scene")
    _at_most(h["train_per_class"] + h["test_per_class"], h["videos_per_class"],
             "hmdb51.train_per_class + test_per_class", "hmdb51.videos_per_class")
    return s


# --------------------------------------------------------------------------------------------------------- content


def shape_mask(key: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of a shape on coordinates relative to its centre, in units of its half-size (x right, y down)."""
    au, av = np.abs(u), np.abs(v)
    if key == "hbar":
        return (au <= 1.0) & (av <= 0.33)
    if key == "vbar":
        return (av <= 1.0) & (au <= 0.33)
    if key == "plus":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if key == "ring":
        r2 = u * u + v * v
        return (r2 <= 0.95**2) & (r2 >= 0.5**2)
    if key == "triangle_up":
        return (v <= 0.8) & (au <= (v + 0.9) * 0.55)
    if key == "square":
        return np.maximum(au, av) <= 0.8
    if key == "x":
        return (np.maximum(au, av) <= 0.9) & ((np.abs(u - v) <= 0.45) | (np.abs(u + v) <= 0.45))
    if key == "disk":
        return u * u + v * v <= 0.85
    if key == "triangle_down":
        return (v >= -0.8) & (au <= (0.9 - v) * 0.55)
    if key == "frame":
        m = np.maximum(au, av)
        return (m <= 0.9) & (m >= 0.5)
    if key == "diamond":
        return au + av <= 1.0
    if key == "dumbbell":
        bells = ((u - 0.6) ** 2 + v * v <= 0.4**2) | ((u + 0.6) ** 2 + v * v <= 0.4**2)
        return bells | ((au <= 0.6) & (av <= 0.15))
    raise KeyError(key)


def trajectory(obj: dict, num_frames: int, fps: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y and half-size of an object in each frame, in pixels of a ``size`` x ``size`` frame."""
    t = np.arange(num_frames) / fps
    x = np.full(num_frames, obj["x"] * size)
    y = np.full(num_frames, obj["y"] * size)
    r = np.full(num_frames, obj["size"] * size / 2)
    motion = obj["motion"]
    if motion in ("rise", "fall"):
        # Constant vertical speed, wrapping around: leaves at one edge, comes back at the other.
        sign = -1.0 if motion == "rise" else 1.0
        lo, span = -r[0], size + 2 * r[0]
        y = lo + np.mod(y - lo + sign * obj["speed"] * size * t, span)
    elif motion == "sway":
        x = x + obj["amplitude"] * size * np.sin(2 * np.pi * t / obj["period"] + obj["phase"])
    elif motion == "pulse":
        r = r * (1 + 0.35 * np.sin(2 * np.pi * t / obj["period"] + obj["phase"]))
    elif motion == "idle":
        # A smoothed random walk of at most 4 % of the frame: "nothing happens".
        steps = np.random.default_rng(obj["seed"]).normal(size=(num_frames, 2))
        width = max(1, min(int(round(fps)), num_frames))
        kernel = np.ones(width) / width
        walk = np.stack([np.convolve(np.cumsum(steps[:, i]), kernel, mode="same") for i in range(2)], axis=1)
        walk -= walk.mean(axis=0)
        walk *= 0.04 * size / (np.abs(walk).max() + 1e-9)
        x, y = x + walk[:, 0], y + walk[:, 1]
    elif motion == "drift":
        # Slow straight drift, reflected inside the central 70 % of the frame.
        def reflect(start: float, velocity: float) -> np.ndarray:
            p = np.mod(start + velocity * t, 2.0)
            return 0.15 * size + 0.7 * size * np.where(p > 1.0, 2.0 - p, p)

        x = reflect((obj["x"] - 0.15) / 0.7, np.cos(obj["phase"]) * obj["speed"] / 0.7)
        y = reflect((obj["y"] - 0.15) / 0.7, np.sin(obj["phase"]) * obj["speed"] / 0.7)
    else:
        raise KeyError(motion)
    return x, y, r


def render_scene(scene: dict, size: int, fps: float) -> np.ndarray:
    """The frames of one scene, uint8 (n, size, size, 3): background, then the distractor, then the object.

    Objects are drawn with 2x2 supersampling (anti-aliased edges, sub-pixel motion).
    """
    n = scene["num_frames"]
    t = (np.arange(n, dtype=np.float32) / fps)[:, None, None]
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    xs, ys = np.meshgrid(centres, centres)
    bg = scene["background"]
    w = xs * math.cos(bg["angle"]) + ys * math.sin(bg["angle"])
    mix = 0.5 + 0.5 * np.sin(2 * np.pi * bg["frequency"] * w[None] + bg["phase"] + bg["speed"] * t)
    c1, c2 = (np.asarray(c, np.float32) for c in bg["colours"])
    img = c1 + (c2 - c1) * mix[..., None]

    fine = (np.arange(size * _SUPERSAMPLE, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    fx, fy = np.meshgrid(fine, fine)
    for obj in (scene.get("distractor"), scene.get("object")):
        if not obj:
            continue
        x, y, r = (a.astype(np.float32)[:, None, None] for a in trajectory(obj, n, fps, size))
        mask = shape_mask(obj["shape"], (fx[None] - x) / r, (fy[None] - y) / r)
        alpha = mask.reshape(n, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(2, 4), dtype=np.float32)
        img = img + (np.asarray(obj["colour"], np.float32) - img) * alpha[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(scenes: list[dict], size: int, fps: float) -> np.ndarray:
    """All frames of a video made of consecutive scenes, uint8 (T, size, size, 3)."""
    return np.concatenate([render_scene(scene, size, fps) for scene in scenes], axis=0)


def luma(rgb) -> float:
    """Rec. 601 luma of an RGB colour (0-255 components), in [0, 1]."""
    r, g, b = (float(c) for c in rgb)
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255.0


def _palette(rng: np.random.Generator, backgrounds: int = 2, gap: float = 0.35) -> tuple[list[int], list[list[int]]]:
    """An object colour and background colours whose luma differs from the object's by at least ``gap``."""
    while True:
        obj = rng.integers(0, 256, 3)
        if abs(luma(obj) - 0.5) >= 0.1:
            break
    cols: list[list[int]] = []
    while len(cols) < backgrounds:
        c = rng.integers(0, 256, 3)
        if abs(luma(c) - luma(obj)) >= gap:
            cols.append([int(v) for v in c])
    return [int(v) for v in obj], cols


def _background(rng: np.random.Generator, colours: list[list[int]]) -> dict:
    return {
        "colours": colours,
        "angle": float(rng.uniform(0, 2 * np.pi)),
        "frequency": float(rng.uniform(0.3, 0.7)),  # gradient periods across the frame
        "phase": float(rng.uniform(0, 2 * np.pi)),
        "speed": float(rng.uniform(-0.6, 0.6)),  # pan, radians of gradient phase per second
    }


def _object(rng: np.random.Generator, shape: str, motion: str, colour: list[int], size_range: list[float]) -> dict:
    return {
        "shape": shape,
        "motion": motion,
        "colour": colour,
        "x": float(rng.uniform(0.35, 0.65)),  # centre, fraction of the frame
        "y": float(rng.uniform(0.35, 0.65)),
        "size": float(rng.uniform(*size_range)),
        "speed": float(rng.uniform(0.25, 0.35)),  # rise/fall: frame sides per second
        "amplitude": float(rng.uniform(0.15, 0.22)),  # sway: fraction of the frame
        "period": float(rng.uniform(1.2, 1.8)),  # sway/pulse: seconds
        "phase": float(rng.uniform(0, 2 * np.pi)),
        "seed": int(rng.integers(2**31)),  # idle jitter
    }


def _distractor(rng: np.random.Generator, shape: str, colour: list[int], size_range: list[float]) -> dict:
    obj = _object(rng, shape, "drift", colour, [0.5 * size_range[0], 0.5 * size_range[1]])
    obj["speed"] = float(rng.uniform(0.05, 0.1))
    return obj


def _scene(
    rng: np.random.Generator,
    s: dict,
    shape: str | None,
    motion: str,
    num_frames: int,
    palette: tuple[list[int], list[list[int]]] | None = None,
    distractor: str | None = None,
) -> dict:
    """One scene: its own palette (unless given), background and object (``shape=None``: no object)."""
    obj_colour, bg_colours = palette if palette is not None else _palette(rng)
    scene = {"num_frames": int(num_frames), "background": _background(rng, bg_colours)}
    if shape is not None:
        scene["object"] = _object(rng, shape, motion, obj_colour, s["object_size"])
    if distractor is not None:
        colour, _ = _palette(rng, 0)
        scene["distractor"] = _distractor(rng, distractor, colour, s["object_size"])
    return scene


def _maybe_distractor(rng: np.random.Generator, s: dict, shape: str) -> str | None:
    if s["distractor_prob"] <= 0 or rng.random() >= s["distractor_prob"]:
        return None
    others = [sh["key"] for sh in SHAPES if sh["key"] != shape]
    return others[int(rng.integers(len(others)))]


def class_pairs(count: int, offset: int) -> list[tuple[int, int]]:
    """(shape index, motion index) of each downstream class.

    Class ``i`` < 2 * len(SHAPES) has shape ``i // 2`` and motion ``(shape + offset + i % 2) % 4``: each shape with two
    motions, each motion with several shapes. Further classes take the two remaining motions of each shape.
    """
    n = len(SHAPES) * 2
    pairs = []
    for i in range(count):
        j, extra = (i, 0) if i < n else (i - n, 2)
        shape = j // 2
        pairs.append((shape, (shape + offset + extra + j % 2) % len(MOTIONS)))
    return pairs


def _draw_frames(rng: np.random.Generator, seconds: list[float], fps: int) -> int:
    return int(rng.integers(max(1, round(seconds[0] * fps)), max(1, round(seconds[1] * fps)) + 1))


def youtube_ids(rng: np.random.Generator, count: int, taken: set[str] | None = None) -> list[str]:
    """``count`` distinct 11-character YouTube-like ids (alphabet ``A-Za-z0-9-_``), none in ``taken``."""
    taken = set() if taken is None else taken
    out: list[str] = []
    while len(out) < count:
        vid = "".join(_ID_ALPHABET[rng.integers(0, len(_ID_ALPHABET), 11)])
        if vid not in taken:
            taken.add(vid)
            out.append(vid)
    return out


# ------------------------------------------------------------------------------------------------------------ plans
# A plan is pure data: the annotation text of every file and one job per rendered video. A job renders its scenes
# once and writes every output cut from them: [relative path, first frame, end frame].


def _scene_record(scene: dict, start: int, fps: int) -> dict:
    """What synthetic.json keeps of a scene: times, shape, motion and colours."""
    obj, dis = scene.get("object"), scene.get("distractor")
    return {
        "start": start / fps,
        "end": (start + scene["num_frames"]) / fps,
        "shape": obj["shape"] if obj else None,
        "motion": obj["motion"] if obj else None,
        "colour": obj["colour"] if obj else None,
        "background": scene["background"]["colours"],
        "distractor": dis["shape"] if dis else None,
    }


def _records(scenes: list[dict], fps: int) -> list[dict]:
    out, start = [], 0
    for scene in scenes:
        out.append(_scene_record(scene, start, fps))
        start += scene["num_frames"]
    return out


def _plan_kinetics(s: dict, seed: int) -> dict:
    k, fps = s["kinetics"], s["fps"]
    rng = np.random.default_rng([seed, _STREAMS["kinetics"]])
    topics = SHAPES[: k["classes"]]
    ids = youtube_ids(rng, k["classes"] * k["videos_per_class"])
    jobs, rows, videos = [], [], []
    for c, topic in enumerate(topics):
        for v in range(k["videos_per_class"]):
            vid = ids[c * k["videos_per_class"] + v]
            split = "val" if v >= k["videos_per_class"] - k["val_per_class"] else "train"
            n_scenes = int(rng.integers(k["scenes"][0], k["scenes"][1] + 1))
            seconds = rng.integers(k["scene_seconds"][0], k["scene_seconds"][1] + 1, n_scenes)
            scenes = []
            for sec in seconds:
                motion = MOTIONS[int(rng.integers(len(MOTIONS)))]["key"]
                distractor = _maybe_distractor(rng, s, topic["key"])
                scenes.append(_scene(rng, s, topic["key"], motion, int(sec) * fps, distractor=distractor))
            scenes[-1]["num_frames"] += int(rng.integers(0, fps))  # a duration that is not whole seconds
            total = sum(sc["num_frames"] for sc in scenes)
            # The trimmed clip: whole seconds inside one scene.
            which = int(rng.integers(n_scenes))
            scene_start = int(seconds[:which].sum())
            t0 = scene_start + int(rng.integers(0, int(seconds[which]) - k["clip_seconds"] + 1))
            t1 = t0 + k["clip_seconds"]
            is_cc = int(rng.random() < 0.1)
            label = topic["kinetics"]
            clip = f"kinetics400/videos/{label}/{vid}_{t0:06d}_{t1:06d}.mp4"
            outputs = [[f"kinetics400_untrimmed/videos/{vid}.mp4", 0, total], [clip, t0 * fps, t1 * fps]]
            pieces = []
            if s["segments_layout"]:
                step = 5 * fps
                for start in range(0, total, step):
                    end = min(start + step, total)
                    ms0, ms1 = _ms(start, fps), _ms(end, fps)
                    name = f"kinetics400_untrimmed/clip_5s/v_{vid}_{ms0:07d}_{ms1:07d}.mp4"
                    outputs.append([name, start, end])
                    pieces.append([ms0, ms1, name])
            jobs.append({"scenes": scenes, "outputs": outputs})
            rows.append((label, vid, t0, t1, split, is_cc))
            videos.append({
                "video_id": vid,
                "label": label,
                "split": split,
                "topic": topic["key"],
                "duration": total / fps,
                "path": outputs[0][0],
                "clip": {"path": clip, "time_start": t0, "time_end": t1, "scene": which},
                "pieces": pieces,
                "scenes": _records(scenes, fps),
            })
    rows.sort(key=lambda r: (r[0], r[1]))
    files = {}
    for split in ("train", "val"):
        lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
        lines += [f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}" for r in rows if r[4] == split]
        files[f"kinetics400/annotations/{split}.csv"] = "\n".join(lines) + "\n"
    if s["segments_layout"]:
        for split, name in (("train", "training"), ("val", "validation")):
            lines = [
                f"{v['video_id']},{ms0:07d},{ms1:07d}"
                for v in sorted(videos, key=lambda v: (v["label"], v["video_id"]))
                if v["split"] == split
                for ms0, ms1, _ in v["pieces"]
            ]
            files[f"kinetics400_untrimmed/{name}.txt"] = "".join(line + "\n" for line in lines)
    return {"jobs": jobs, "files": files, "videos": videos}


def _ms(frame: int, fps: int) -> int:
    return int(round(frame * 1000 / fps))


def _plan_ucf101(s: dict, seed: int) -> dict:
    u, fps = s["ucf101"], s["fps"]
    rng = np.random.default_rng([seed, _STREAMS["ucf101"]])
    pairs = class_pairs(u["classes"], DATASET_OFFSETS["ucf101"])
    classes = sorted((SHAPES[a]["camel"] + MOTIONS[b]["camel"], a, b) for a, b in pairs)
    block = max(1, round(u["groups"] * 7 / 25))
    test_groups = {k: {((k - 1) * block + j) % u["groups"] + 1 for j in range(block)} for k in (1, 2, 3)}
    jobs, videos = [], []
    lists = {f"{kind}{k:02d}": [] for kind in ("trainlist", "testlist") for k in (1, 2, 3)}
    for number, (name, a, b) in enumerate(classes, start=1):
        for g in range(1, u["groups"] + 1):
            palette = _palette(rng)  # one palette per group: sibling clips of one source
            for c in range(1, int(rng.integers(u["clips_per_group"][0], u["clips_per_group"][1] + 1)) + 1):
                stem = f"v_{name}_g{g:02d}_c{c:02d}"
                relative = f"{name}/{stem}.avi"
                scene = _scene(
                    rng, s, SHAPES[a]["key"], MOTIONS[b]["key"], _draw_frames(rng, u["seconds"], fps), palette,
                    _maybe_distractor(rng, s, SHAPES[a]["key"]),
                )
                path = f"ucf101/UCF-101/{relative}"
                jobs.append({"scenes": [scene], "outputs": [[path, 0, scene["num_frames"]]]})
                for k in (1, 2, 3):
                    if g in test_groups[k]:
                        lists[f"testlist{k:02d}"].append(relative)
                    else:
                        lists[f"trainlist{k:02d}"].append(f"{relative} {number}")
                videos.append({
                    "video_id": stem,
                    "label": name,
                    "path": path,
                    "group": g,
                    "test_in_splits": [k for k in (1, 2, 3) if g in test_groups[k]],
                    "duration": scene["num_frames"] / fps,
                    "scenes": _records([scene], fps),
                })
    files = {"ucf101/ucfTrainTestlist/classInd.txt": "".join(f"{i} {n}\n" for i, (n, _, _) in enumerate(classes, 1))}
    for name, lines in lists.items():
        files[f"ucf101/ucfTrainTestlist/{name}.txt"] = "".join(line + "\n" for line in lines)
    return {"jobs": jobs, "files": files, "videos": videos}


def _plan_hmdb51(s: dict, seed: int) -> dict:
    h, fps = s["hmdb51"], s["fps"]
    rng = np.random.default_rng([seed, _STREAMS["hmdb51"]])
    pairs = class_pairs(h["classes"], DATASET_OFFSETS["hmdb51"])
    classes = sorted((SHAPES[a]["snake"] + "_" + MOTIONS[b]["snake"], a, b) for a, b in pairs)
    jobs, videos, files = [], [], {}
    views = ("fr", "le", "ri", "ba")
    qualities = ("goo", "med", "bad")
    for name, a, b in classes:
        names = []
        for i in range(h["videos_per_class"]):
            source = f"Synthetic_reel_{int(rng.integers(1, 100)):02d}"
            view, quality = views[int(rng.integers(len(views)))], qualities[int(rng.integers(len(qualities)))]
            stem = f"{source}_{name}_u_cm_np1_{view}_{quality}_{i}"
            scene = _scene(
                rng, s, SHAPES[a]["key"], MOTIONS[b]["key"], _draw_frames(rng, h["seconds"], fps),
                distractor=_maybe_distractor(rng, s, SHAPES[a]["key"]),
            )
            path = f"hmdb51/videos/{name}/{stem}.avi"
            jobs.append({"scenes": [scene], "outputs": [[path, 0, scene["num_frames"]]]})
            names.append(stem)
            videos.append({
                "video_id": stem, "label": name, "path": path, "flags": [],
                "duration": scene["num_frames"] / fps, "scenes": _records([scene], fps),
            })
        start = len(videos) - len(names)
        for k in (1, 2, 3):
            order = rng.permutation(len(names))
            flags = np.zeros(len(names), dtype=int)
            flags[order[: h["train_per_class"]]] = 1
            flags[order[h["train_per_class"]: h["train_per_class"] + h["test_per_class"]]] = 2
            for i, flag in enumerate(flags):
                videos[start + i]["flags"].append(int(flag))
            lines = sorted(f"{stem}.avi {flag} \n" for stem, flag in zip(names, flags))
            files[f"hmdb51/testTrainMulti_7030_splits/{name}_test_split{k}.txt"] = "".join(lines)
    return {"jobs": jobs, "files": files, "videos": videos}


def _plan_activitynet(s: dict, seed: int, taken: set[str]) -> dict:
    a, fps, size = s["activitynet"], s["fps"], s["frame_size"]
    rng = np.random.default_rng([seed, _STREAMS["activitynet"]])
    pairs = class_pairs(a["classes"], DATASET_OFFSETS["activitynet"])
    classes = [(f"{MOTIONS[m]['plain']} {SHAPES[sh]['plain']}", sh, m) for sh, m in pairs]
    ids = youtube_ids(rng, a["videos"], taken)
    database, jobs, videos = {}, [], []
    for i in range(a["videos"]):
        vid = ids[i]
        name, sh, m = classes[i % len(classes)]  # classes in turn, so that both subsets hold every class
        subset = "validation" if i >= a["videos"] - a["validation_videos"] else "training"
        shape, motion = SHAPES[sh]["key"], MOTIONS[m]["key"]
        n_segments = int(rng.integers(a["segments"][0], a["segments"][1] + 1))
        scenes, annotations, frame = [], [], 0
        for j in range(2 * n_segments + 1):
            if j % 2:  # an action segment
                n = _draw_frames(rng, a["segment_seconds"], fps)
                scenes.append(_scene(rng, s, shape, motion, n))
                annotations.append({"segment": [round(frame / fps, 3), round((frame + n) / fps, 3)], "label": name})
            else:  # background: the topic's shape idling, nothing, or a distractor drifting
                n = _draw_frames(rng, a["background_seconds"], fps)
                kind = int(rng.integers(3))
                if kind == 0:
                    scenes.append(_scene(rng, s, shape, "idle", n))
                elif kind == 1:
                    scenes.append(_scene(rng, s, None, "idle", n))
                else:
                    other = [x["key"] for x in SHAPES if x["key"] != shape][int(rng.integers(len(SHAPES) - 1))]
                    scenes.append(_scene(rng, s, other, "drift", n))
            frame += n
        path = f"activitynet/videos/v_{vid}.mp4"
        jobs.append({"scenes": scenes, "outputs": [[path, 0, frame]]})
        database[vid] = {
            "duration": round(frame / fps, 3),
            "subset": subset,
            "resolution": f"{size}x{size}",
            "url": f"https://www.youtube.com/watch?v={vid}",
            "annotations": annotations,
        }
        records = _records(scenes, fps)
        for j, rec in enumerate(records):
            rec["action"] = bool(j % 2)
        videos.append({"video_id": vid, "label": name, "subset": subset, "path": path,
                       "duration": frame / fps, "scenes": records})
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    for m in sorted({m for _, _, m in classes}):
        taxonomy.append({"nodeId": len(taxonomy), "nodeName": MOTIONS[m]["camel"], "parentId": 0, "parentName": "Root"})
    parents = {node["nodeName"]: node["nodeId"] for node in taxonomy}
    for name, _, m in sorted(classes):
        parent = MOTIONS[m]["camel"]
        taxonomy.append({"nodeId": len(taxonomy), "nodeName": name, "parentId": parents[parent], "parentName": parent})
    doc = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}
    files = {"activitynet/activity_net.v1-3.min.json": json.dumps(doc) + "\n"}
    return {"jobs": jobs, "files": files, "videos": videos}


def hacs_label(shape: dict[str, str]) -> str:
    """The class name of a synthetic HACS topic: capitalised words with spaces, like HACS's ("Flat bar")."""
    return shape["plain"].capitalize()


def _plan_hacs(s: dict, seed: int, taken: set[str]) -> dict:
    h, fps = s["hacs"], s["fps"]
    rng = np.random.default_rng([seed, _STREAMS["hacs"]])
    ids = youtube_ids(rng, h["classes"] * h["videos_per_class"], taken)
    database, jobs, videos = {}, [], []
    for c, topic in enumerate(SHAPES[: h["classes"]]):
        label = hacs_label(topic)
        for v in range(h["videos_per_class"]):
            vid = ids[c * h["videos_per_class"] + v]
            subset = "validation" if v >= h["videos_per_class"] - h["val_per_class"] else "training"
            n_scenes = int(rng.integers(h["scenes"][0], h["scenes"][1] + 1))
            seconds = rng.integers(h["scene_seconds"][0], h["scene_seconds"][1] + 1, n_scenes)
            actions = rng.random(n_scenes) < HACS_ACTION_PROB
            if not actions.any():
                actions[int(rng.integers(n_scenes))] = True
            scenes = []
            for sec, action in zip(seconds, actions):
                motion = MOTIONS[int(rng.integers(len(MOTIONS)))]["key"] if action else "idle"
                distractor = _maybe_distractor(rng, s, topic["key"])
                scenes.append(_scene(rng, s, topic["key"], motion, int(sec) * fps, distractor=distractor))
            scenes[-1]["num_frames"] += int(rng.integers(0, fps))  # a duration that is not whole seconds
            total = sum(sc["num_frames"] for sc in scenes)
            records = _records(scenes, fps)
            for rec, action in zip(records, actions):
                rec["action"] = bool(action)
            annotations = [{"label": label, "segment": [round(r["start"], 2), round(r["end"], 2)]}
                           for r in records if r["action"]]
            path = f"hacs/videos/{label.replace(' ', '_')}/v_{vid}.mp4"
            jobs.append({"scenes": scenes, "outputs": [[path, 0, total]]})
            database[vid] = {"annotations": annotations, "subset": subset, "duration": f"{total / fps:.6f}",
                             "url": f"https://www.youtube.com/watch?v={vid}"}
            videos.append({"video_id": vid, "label": label, "subset": subset, "topic": topic["key"], "path": path,
                           "duration": total / fps, "scenes": records})
    files = {HACS_JSON: json.dumps({"database": database}) + "\n"}
    return {"jobs": jobs, "files": files, "videos": videos}


def plan(settings: dict | None = None, seed: int = 0) -> dict:
    """Everything :func:`synthesize` will write, without writing: ``{"settings", "seed", "files", "jobs", "videos"}``.

    ``files`` maps relative paths to annotation text, ``jobs`` are the videos to render (scenes and the frame ranges
    each output file holds), ``videos`` the metadata per dataset (written to ``synthetic.json``).
    """
    s = resolve_settings(settings)
    kinetics = _plan_kinetics(s, seed)
    taken = {v["video_id"] for v in kinetics["videos"]}
    parts = {
        "kinetics": kinetics,
        "ucf101": _plan_ucf101(s, seed),
        "hmdb51": _plan_hmdb51(s, seed),
        "activitynet": _plan_activitynet(s, seed, taken),  # adds its ids to ``taken``
    }
    parts["hacs"] = _plan_hacs(s, seed, taken)
    return {
        "settings": s,
        "seed": seed,
        "files": {path: text for part in parts.values() for path, text in part["files"].items()},
        "jobs": [job for part in parts.values() for job in part["jobs"]],
        "videos": {name: part["videos"] for name, part in parts.items()},
    }


# ------------------------------------------------------------------------------------------------------- writing


def _run_job(root: str, job: dict, size: int, fps: int) -> int:
    """Render one video's scenes and write every output cut from them; returns the number of frames written."""
    frames = render_video(job["scenes"], size, fps)
    written = 0
    for relative, start, end in job["outputs"]:
        write_video(Path(root) / relative, frames[start:end], fps, keyframe_interval_s=1.0)
        written += end - start
    return written


def _prepare_root(root: Path) -> None:
    """Make ``root`` ready: empty, or made by an earlier run (whose dataset folders are removed)."""
    if root.exists() and not root.is_dir():
        raise UserError(f"The synthetic data root {root} exists and is not a folder.")
    if root.is_dir() and any(root.iterdir()):
        if not (root / _MARKER).exists():
            raise UserError(
                f"The synthetic data root {root} is not empty and was not written by the synthetic generator; "
                "choose an empty or new folder."
            )
        for name in (*_DATASET_DIRS, "synthetic.json"):
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("written by hico_bench.data.synthetic; the folder may be replaced wholesale\n")


def synthesize(root: str | os.PathLike, settings: dict | None = None, seed: int = 0, workers: int = 2) -> dict:
    """Write the synthetic benchmark under ``root`` (see the module docstring) and return its paths and counts.

    ``root`` must be empty, new, or an earlier output of this function (then it is replaced). Videos are written by
    ``workers`` processes (``workers <= 1``: in this process). The result (JSON-able, absolute paths):
    ``{"root", "metadata", "kinetics400": {"train_csv", "val_csv", "videos"}, "kinetics400_untrimmed": {"videos",
    "segments", "training_list", "validation_list"}, "ucf101": {"videos", "splits"}, "hmdb51": {"videos", "splits"},
    "activitynet": {"annotations", "videos"}, "hacs": {"annotations", "videos"}, "counts": {...}}`` (segment entries
    are None without ``segments_layout``).
    """
    p = plan(settings, seed)
    s = p["settings"]
    root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    _prepare_root(root)
    for relative, text in p["files"].items():
        write_text(root / relative, text)

    jobs = sorted(p["jobs"], key=lambda j: -sum(sc["num_frames"] for sc in j["scenes"]))
    total = sum(end - start for job in jobs for _, start, end in job["outputs"])
    size, fps = s["frame_size"], s["fps"]
    bar = tqdm(total=total, desc="synthesize", unit="frame", unit_scale=True, dynamic_ncols=True,
               mininterval=1.0)
    with bar:
        if workers <= 1:
            for job in jobs:
                bar.update(_run_job(str(root), job, size, fps))
        else:
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [pool.submit(_run_job, str(root), job, size, fps) for job in jobs]
                for future in cf.as_completed(futures):
                    bar.update(future.result())

    k = p["videos"]["kinetics"]
    counts = {
        "kinetics400_train": sum(v["split"] == "train" for v in k),
        "kinetics400_val": sum(v["split"] == "val" for v in k),
        "kinetics400_untrimmed": len(k),
        "kinetics400_segments": sum(len(v["pieces"]) for v in k),
        "ucf101": len(p["videos"]["ucf101"]),
        "hmdb51": len(p["videos"]["hmdb51"]),
        "activitynet_training": sum(v["subset"] == "training" for v in p["videos"]["activitynet"]),
        "activitynet_validation": sum(v["subset"] == "validation" for v in p["videos"]["activitynet"]),
        "hacs_training": sum(v["subset"] == "training" for v in p["videos"]["hacs"]),
        "hacs_validation": sum(v["subset"] == "validation" for v in p["videos"]["hacs"]),
        "frames": total,
    }
    seg = s["segments_layout"]
    result = {
        "root": str(root),
        "metadata": str(root / "synthetic.json"),
        "kinetics400": {
            "train_csv": str(root / "kinetics400/annotations/train.csv"),
            "val_csv": str(root / "kinetics400/annotations/val.csv"),
            "videos": str(root / "kinetics400/videos"),
        },
        "kinetics400_untrimmed": {
            "videos": str(root / "kinetics400_untrimmed/videos"),
            "segments": str(root / "kinetics400_untrimmed/clip_5s") if seg else None,
            "training_list": str(root / "kinetics400_untrimmed/training.txt") if seg else None,
            "validation_list": str(root / "kinetics400_untrimmed/validation.txt") if seg else None,
        },
        "ucf101": {"videos": str(root / "ucf101/UCF-101"), "splits": str(root / "ucf101/ucfTrainTestlist")},
        "hmdb51": {"videos": str(root / "hmdb51/videos"), "splits": str(root / "hmdb51/testTrainMulti_7030_splits")},
        "activitynet": {
            "annotations": str(root / "activitynet/activity_net.v1-3.min.json"),
            "videos": str(root / "activitynet/videos"),
        },
        "hacs": {"annotations": str(root / HACS_JSON), "videos": str(root / "hacs/videos")},
        "counts": counts,
    }
    write_json(root / "synthetic.json", {"seed": seed, "settings": s, "counts": counts, "videos": p["videos"]})
    return result
