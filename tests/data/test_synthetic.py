"""The synthetic benchmark: determinism, the real on-disk formats, decodable videos, topical structure, readers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hico_bench.data import formats
from hico_bench.data import synthetic as syn
from hico_bench.data.video import VideoReader, probe
from hico_bench.errors import UserError

SMALL = {
    "frame_size": 16,
    "fps": 10,
    "kinetics": {"classes": 2, "videos_per_class": 2, "val_per_class": 1, "scenes": [2, 2], "scene_seconds": [3, 3],
                 "clip_seconds": 2},
    "ucf101": {"classes": 2, "groups": 3, "clips_per_group": [1, 2], "seconds": [1, 1.5]},
    "hmdb51": {"classes": 2, "videos_per_class": 3, "train_per_class": 1, "test_per_class": 1, "seconds": [1, 1.5]},
    "activitynet": {"classes": 2, "videos": 3, "validation_videos": 1, "segments": [1, 2], "segment_seconds": [1, 2],
                    "background_seconds": [0.5, 1]},
    "hacs": {"classes": 2, "videos_per_class": 2, "val_per_class": 1, "scenes": [2, 3], "scene_seconds": [1, 2]},
}
ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "data"
    return syn.synthesize(root, SMALL, seed=0, workers=1)


@pytest.fixture(scope="module")
def meta(out):
    return json.loads(Path(out["metadata"]).read_text())


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _frames(path) -> np.ndarray:
    with VideoReader(path) as reader:
        return reader.read_frames(range(reader.info.num_frames))


def _csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_files_and_frames(out, tmp_path):
    again = syn.synthesize(tmp_path / "again", SMALL, seed=0, workers=2)  # the process pool this time
    first, second = _files(Path(out["root"])), _files(Path(again["root"]))
    assert first.keys() == second.keys()
    for name in first:
        if not name.endswith((".mp4", ".avi")):
            assert first[name].read_bytes() == second[name].read_bytes(), name
    for suffix in (".mp4", ".avi"):
        name = next(n for n in first if n.endswith(suffix))
        np.testing.assert_array_equal(_frames(first[name]), _frames(second[name]))


def test_another_seed_gives_other_ids_lists_and_frames():
    a, b = syn.plan(SMALL, seed=0), syn.plan(SMALL, seed=1)
    hmdb = next(name for name in a["files"] if name.endswith("_test_split1.txt"))
    for name in ("kinetics400/annotations/train.csv", "activitynet/activity_net.v1-3.min.json", hmdb):
        assert a["files"][name] != b["files"][name]
    size, fps = SMALL["frame_size"], SMALL["fps"]
    assert not np.array_equal(syn.render_video(a["jobs"][0]["scenes"], size, fps)[:10],
                              syn.render_video(b["jobs"][0]["scenes"], size, fps)[:10])


def test_plan_is_reproducible_and_streams_are_independent():
    assert syn.plan(SMALL, seed=3)["files"] == syn.plan(SMALL, seed=3)["files"]
    # One random stream per dataset: changing UCF101's size leaves Kinetics, ActivityNet and HACS untouched.
    bigger = json.loads(json.dumps(SMALL))
    bigger["ucf101"]["classes"] = 3
    a, b = syn.plan(SMALL, 0)["files"], syn.plan(bigger, 0)["files"]
    for name in ("kinetics400/annotations/train.csv", "activitynet/activity_net.v1-3.min.json", syn.HACS_JSON):
        assert a[name] == b[name]
    # HACS is drawn last from its own stream: its size changes no other dataset's files.
    more_hacs = json.loads(json.dumps(SMALL))
    more_hacs["hacs"].update(classes=3, videos_per_class=3)
    c = syn.plan(more_hacs, 0)["files"]
    assert {k: v for k, v in a.items() if k != syn.HACS_JSON} == {k: v for k, v in c.items() if k != syn.HACS_JSON}
    assert a[syn.HACS_JSON] != c[syn.HACS_JSON]


def test_generator_defaults_are_the_declared_settings():
    from hico_bench.settings import SYNTHETIC

    assert syn.resolve_settings() == SYNTHETIC.resolve({})


# ---------------------------------------------------------------------------------------------------------- formats


def test_kinetics_csvs_and_trimmed_clip_names(out, meta):
    root = Path(out["root"])
    seen = set()
    for split in ("train", "val"):
        path = Path(out["kinetics400"][f"{split}_csv"])
        assert path.read_text().splitlines()[0] == "label,youtube_id,time_start,time_end,split,is_cc"
        rows = _csv(path)
        k = SMALL["kinetics"]
        per_class = k["val_per_class"] if split == "val" else k["videos_per_class"] - k["val_per_class"]
        assert len(rows) == k["classes"] * per_class
        for row in rows:
            assert ID.match(row["youtube_id"]) and row["split"] == split and row["is_cc"] in ("0", "1")
            t0, t1 = int(row["time_start"]), int(row["time_end"])
            assert t1 - t0 == SMALL["kinetics"]["clip_seconds"]
            clip = root / "kinetics400/videos" / row["label"] / f"{row['youtube_id']}_{t0:06d}_{t1:06d}.mp4"
            assert clip.is_file()
            assert (root / "kinetics400_untrimmed/videos" / f"{row['youtube_id']}.mp4").is_file()
            seen.add(row["youtube_id"])
    labels = {v["label"] for v in meta["videos"]["kinetics"]}
    assert labels == {"bar (horizontal)", "bar (vertical)"}  # spaces and parentheses, like real K400 labels
    anet = {v["video_id"] for v in meta["videos"]["activitynet"]}
    assert len(seen) == 4 and not seen & anet and all(ID.match(v) for v in anet)


def test_segment_layout_names_and_lists(out, meta):
    root = Path(out["root"])
    listed = {}
    for split, name in (("train", "training.txt"), ("val", "validation.txt")):
        for line in (root / "kinetics400_untrimmed" / name).read_text().splitlines():
            vid, start, end = line.split(",")
            assert re.fullmatch(r"\d{7}", start) and re.fullmatch(r"\d{7}", end)
            listed.setdefault(vid, []).append((int(start), int(end), split))
    fps = SMALL["fps"]
    for video in meta["videos"]["kinetics"]:
        pieces = listed[video["video_id"]]
        assert {s for _, _, s in pieces} == {video["split"]}
        assert [p[0] for p in pieces] == list(range(0, 5000 * len(pieces), 5000))  # consecutive, from 0, 5-s steps
        assert all(end - start == 5000 for start, end, _ in pieces[:-1])  # only the last piece is shorter
        assert 0 < pieces[-1][1] - pieces[-1][0] <= 5000
        assert pieces[-1][1] == round(video["duration"] * 1000)  # the last piece ends at the true duration
        for start, end, _ in pieces:
            path = root / "kinetics400_untrimmed/clip_5s" / f"v_{video['video_id']}_{start:07d}_{end:07d}.mp4"
            assert probe(path).num_frames == round((end - start) * fps / 1000)


def test_ucf101_lists_keep_whole_groups_on_one_side(out, meta):
    splits = Path(out["ucf101"]["splits"])
    lines = splits.joinpath("classInd.txt").read_text().splitlines()
    names = [line.split(" ")[1] for line in lines]
    assert [line.split(" ")[0] for line in lines] == ["1", "2"] and names == sorted(names)
    videos = {v["video_id"]: v for v in meta["videos"]["ucf101"]}
    test_sets = []
    for k in (1, 2, 3):
        train = [line.split(" ") for line in splits.joinpath(f"trainlist0{k}.txt").read_text().splitlines()]
        test = splits.joinpath(f"testlist0{k}.txt").read_text().splitlines()
        assert all(len(t) == 2 and names[int(t[1]) - 1] == t[0].split("/")[0] for t in train)
        assert all(" " not in t for t in test)
        stems = [Path(t[0]).stem for t in train] + [Path(t).stem for t in test]
        assert sorted(stems) == sorted(videos)  # every video on exactly one side
        for rel in [t[0] for t in train] + test:
            cls, name = rel.split("/")
            assert re.fullmatch(rf"v_{cls}_g\d\d_c\d\d\.avi", name)
            assert (Path(out["ucf101"]["videos"]) / rel).is_file()
        train_groups = {(t[0].split("/")[0], videos[Path(t[0]).stem]["group"]) for t in train}
        test_groups = {(t.split("/")[0], videos[Path(t).stem]["group"]) for t in test}
        assert train_groups and test_groups and not train_groups & test_groups
        test_sets.append(frozenset(test))
    assert len(set(test_sets)) == 3


def test_hmdb51_split_files(out, meta):
    folder = Path(out["hmdb51"]["splits"])
    classes = sorted({v["label"] for v in meta["videos"]["hmdb51"]})
    expected = sorted(f"{c}_test_split{k}.txt" for c in classes for k in (1, 2, 3))
    assert sorted(p.name for p in folder.iterdir()) == expected
    h = SMALL["hmdb51"]
    for path in folder.iterdir():
        text = path.read_text()
        lines = text.splitlines()
        assert len(lines) == h["videos_per_class"] and all(line.endswith(" ") for line in lines)  # trailing space
        flags = [int(line.split()[1]) for line in lines]
        assert flags.count(1) == h["train_per_class"] and flags.count(2) == h["test_per_class"]
        cls = path.name.rsplit("_test_split", 1)[0]
        for line in lines:
            assert (Path(out["hmdb51"]["videos"]) / cls / line.split()[0]).is_file()


def test_activitynet_json(out, meta):
    doc = json.loads(Path(out["activitynet"]["annotations"]).read_text())
    assert set(doc) == {"database", "taxonomy", "version"}
    nodes = {n["nodeName"] for n in doc["taxonomy"]}
    subsets = set()
    for vid, entry in doc["database"].items():
        assert ID.match(vid) and set(entry) == {"duration", "subset", "resolution", "url", "annotations"}
        assert entry["url"].endswith(vid) and entry["resolution"] == "16x16"
        subsets.add(entry["subset"])
        assert entry["annotations"]
        for a in entry["annotations"]:
            t0, t1 = a["segment"]
            assert 0 < t0 < t1 < entry["duration"] and a["label"] in nodes
        path = Path(out["activitynet"]["videos"]) / f"v_{vid}.mp4"
        assert probe(path).duration == pytest.approx(entry["duration"], abs=1e-6)
    assert subsets == {"training", "validation"}


def test_every_video_decodes_with_its_duration(out, meta):
    root = Path(out["root"])
    expected = {}
    for group in meta["videos"].values():
        for v in group:
            expected[v["path"]] = v["duration"]
            if "clip" in v:
                expected[v["clip"]["path"]] = v["clip"]["time_end"] - v["clip"]["time_start"]
    videos = [n for n in _files(root) if n.endswith((".mp4", ".avi")) and "clip_5s" not in n]
    assert sorted(videos) == sorted(expected)
    for name, duration in expected.items():
        info = probe(root / name)
        assert (info.fps, info.width, info.height) == (SMALL["fps"], 16, 16)
        assert info.num_frames == round(duration * SMALL["fps"]), name


def test_hacs_json_and_class_folders(out, meta):
    root = Path(out["root"])
    text = Path(out["hacs"]["annotations"]).read_text()
    database = json.loads(text)["database"]
    assert set(json.loads(text)) == {"database"}  # like HACS_segments_v1.1.1.json: no taxonomy
    h = SMALL["hacs"]
    assert len(database) == h["classes"] * h["videos_per_class"] and not set(database) & {
        v["video_id"] for group in ("kinetics", "activitynet") for v in meta["videos"][group]}
    subsets = {}
    for video in meta["videos"]["hacs"]:
        entry = database[video["video_id"]]
        assert ID.match(video["video_id"]) and isinstance(entry["duration"], str)
        assert re.fullmatch(r"\d+\.\d{6}", entry["duration"]) and float(entry["duration"]) == pytest.approx(
            video["duration"], abs=1e-6)
        assert entry["url"] == f"https://www.youtube.com/watch?v={video['video_id']}"
        path = root / video["path"]
        assert path.is_file() and path.name == f"v_{video['video_id']}.mp4"
        assert path.parent == Path(out["hacs"]["videos"]) / video["label"].replace(" ", "_")
        assert entry["annotations"] and {a["label"] for a in entry["annotations"]} == {video["label"]}
        actions = [[round(s["start"], 2), round(s["end"], 2)] for s in video["scenes"] if s["action"]]
        assert [a["segment"] for a in entry["annotations"]] == actions
        subsets[entry["subset"]] = subsets.get(entry["subset"], 0) + 1
    assert subsets == {"training": h["classes"] * (h["videos_per_class"] - h["val_per_class"]),
                       "validation": h["classes"] * h["val_per_class"]}
    labels = {v["label"] for v in meta["videos"]["hacs"]}
    assert labels == {"Flat bar", "Pole"}  # spaces, like HACS's classes; folders Flat_bar/ and Pole/


# ------------------------------------------------------------------------------------------------------- structure


def test_hacs_videos_are_untrimmed_and_topical(meta):
    for video in meta["videos"]["hacs"]:
        scenes = video["scenes"]
        assert {s["shape"] for s in scenes} == {video["topic"]}  # every scene shows the topic
        assert len({json.dumps([s["colour"], s["background"]]) for s in scenes}) == len(scenes)  # each its own look
        assert any(s["action"] for s in scenes)
        assert all((s["motion"] in ("rise", "fall", "sway", "pulse")) == s["action"] for s in scenes)
        assert scenes[0]["start"] == 0 and scenes[-1]["end"] == video["duration"]


def test_scenes_of_a_source_share_the_topic_and_differ_in_look(meta):
    fps = SMALL["fps"]
    for video in meta["videos"]["kinetics"]:
        scenes = video["scenes"]
        assert {s["shape"] for s in scenes} == {video["topic"]}
        assert len({json.dumps([s["colour"], s["background"]]) for s in scenes}) == len(scenes)
        assert scenes[0]["start"] == 0 and scenes[-1]["end"] == video["duration"]
        assert all(a["end"] == b["start"] for a, b in zip(scenes, scenes[1:]))
        clip = video["clip"]  # one scene, whole seconds
        scene = scenes[clip["scene"]]
        assert scene["start"] <= clip["time_start"] < clip["time_end"] <= scene["end"]
        assert clip["time_start"] * fps == int(clip["time_start"] * fps)


def test_trimmed_clip_is_its_source_window_up_to_codec_loss(out, meta):
    root, fps = Path(out["root"]), SMALL["fps"]
    video = meta["videos"]["kinetics"][0]
    source = _frames(root / video["path"]).astype(int)
    clip = _frames(root / video["clip"]["path"]).astype(int)
    start = video["clip"]["time_start"] * fps
    err = np.abs(clip - source[start:start + len(clip)]).mean()
    assert err < 4
    shifted = [np.abs(clip - source[s:s + len(clip)]).mean() for s in range(0, len(source) - len(clip) + 1, 5)
               if abs(s - start) >= 5]
    assert err < min(shifted) / 3
    pieces = np.concatenate([_frames(root / p) for _, _, p in video["pieces"]]).astype(int)
    assert pieces.shape == source.shape and np.abs(pieces - source).mean() < 4


def test_downstream_classes_are_shape_and_motion_pairs(meta):
    for name in ("ucf101", "hmdb51"):
        pairs = {}
        for v in meta["videos"][name]:
            (scene,) = v["scenes"]
            pairs.setdefault(v["label"], set()).add((scene["shape"], scene["motion"]))
        assert all(len(p) == 1 for p in pairs.values())
        assert len({next(iter(p)) for p in pairs.values()}) == len(pairs)
    for v in meta["videos"]["activitynet"]:
        actions = [s for s in v["scenes"] if s["action"]]
        assert len({(s["shape"], s["motion"]) for s in actions}) == 1
        assert all(s["motion"] in ("idle", "drift", None) for s in v["scenes"] if not s["action"])


def test_class_pairs_need_shape_and_motion_together():
    for offset in (0, 1, 2):
        pairs = syn.class_pairs(24, offset)
        assert len(set(pairs)) == 24
        for shape in range(len(syn.SHAPES)):
            assert len([p for p in pairs if p[0] == shape]) == 2  # the shape alone leaves two classes
        for motion in range(len(syn.MOTIONS)):
            assert len([p for p in pairs if p[1] == motion]) == 6  # the motion alone leaves six
    everything = syn.class_pairs(48, 0)
    assert sorted(everything) == sorted((s, m) for s in range(len(syn.SHAPES)) for m in range(len(syn.MOTIONS)))
    assert set(syn.class_pairs(24, 0)).isdisjoint(syn.class_pairs(24, 2))  # UCF101 and HMDB51 differ


def test_close_frames_alike_distant_scenes_different():
    s = syn.resolve_settings()
    video = syn.plan(s, seed=0)["videos"]["kinetics"][0]
    job = syn.plan(s, seed=0)["jobs"][0]
    frames = syn.render_video(job["scenes"], s["frame_size"], s["fps"]).astype(float)
    bounds = [round(sc["start"] * s["fps"]) for sc in video["scenes"]] + [len(frames)]
    within = np.mean([np.abs(frames[i + 1] - frames[i]).mean()
                      for a, b in zip(bounds, bounds[1:]) for i in range(a, b - 1)])
    across = np.mean([np.abs(frames[a:b].mean(0) - frames[c:d].mean(0)).mean()
                      for (a, b) in zip(bounds, bounds[1:]) for (c, d) in zip(bounds, bounds[1:]) if a < c])
    assert across > 3 * within


# ---------------------------------------------------------------------------------------------------------- content


def test_render_scene_matches_a_per_pixel_loop():
    rng = np.random.default_rng(5)
    s = syn.resolve_settings({"frame_size": 8})
    for shape, motion in (("ring", "rise"), ("triangle_up", "pulse"), ("plus", "sway"), ("disk", "idle")):
        scene = syn._scene(rng, s, shape, motion, 6, distractor="square")
        fast = syn.render_scene(scene, 8, 10.0)
        bg = scene["background"]
        slow = np.zeros((6, 8, 8, 3))
        for t in range(6):
            for i in range(8):
                for j in range(8):
                    w = (j + 0.5) / 8 * np.cos(bg["angle"]) + (i + 0.5) / 8 * np.sin(bg["angle"])
                    mix = 0.5 + 0.5 * np.sin(2 * np.pi * bg["frequency"] * w + bg["phase"] + bg["speed"] * t / 10)
                    pixel = np.array(bg["colours"][0]) + (np.array(bg["colours"][1]) - bg["colours"][0]) * mix
                    for obj in (scene["distractor"], scene["object"]):
                        x, y, r = (a[t] for a in syn.trajectory(obj, 6, 10.0, 8))
                        inside = [syn.shape_mask(obj["shape"], np.array((j + (b + 0.5) / 2 - x) / r),
                                                 np.array((i + (a + 0.5) / 2 - y) / r))
                                  for a in range(2) for b in range(2)]
                        pixel = pixel + (np.array(obj["colour"]) - pixel) * np.mean(inside)
                    slow[t, i, j] = pixel
        assert np.abs(fast.astype(float) - slow).max() <= 1.0


def test_motions_do_what_they_say():
    obj = {"x": 0.5, "y": 0.5, "size": 0.5, "speed": 0.3, "amplitude": 0.2, "period": 1.5, "phase": 0.3, "seed": 1}
    size, fps, n = 32, 10.0, 40
    x, y, r = syn.trajectory({**obj, "motion": "rise"}, n, fps, size)
    steps = np.diff(y)
    assert np.all((np.isclose(steps, -0.3 * size / fps)) | (steps > 0))  # up, and wrapping back to the bottom
    x, y, r = syn.trajectory({**obj, "motion": "fall"}, n, fps, size)
    assert np.isclose(y[1] - y[0], 0.3 * size / fps)
    x, y, r = syn.trajectory({**obj, "motion": "sway"}, n, fps, size)
    assert np.ptp(y) == 0 and np.ptp(x) > 0.3 * size and np.abs(x - 16).max() <= 0.2 * size + 1e-9
    x, y, r = syn.trajectory({**obj, "motion": "pulse"}, n, fps, size)
    assert np.ptp(x) == 0 and np.ptp(y) == 0 and r.max() / r.min() > 1.8
    x, y, r = syn.trajectory({**obj, "motion": "idle"}, n, fps, size)
    assert np.abs(x - 16).max() <= 0.04 * size + 1e-9 and np.abs(y - 16).max() <= 0.04 * size + 1e-9
    x, y, r = syn.trajectory({**obj, "motion": "drift"}, 400, fps, size)
    assert x.min() >= 0.15 * size - 1e-9 and x.max() <= 0.85 * size + 1e-9


def test_shapes_are_distinct_and_colours_contrast():
    g = (np.arange(64) + 0.5) / 32 - 1
    u, v = np.meshgrid(g, g)
    masks = [syn.shape_mask(s["key"], u, v) for s in syn.SHAPES]
    assert all(m.mean() > 0.1 for m in masks)
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).mean() > 0.05
    rng = np.random.default_rng(0)
    for _ in range(50):
        obj, bgs = syn._palette(rng)
        assert all(abs(syn.luma(obj) - syn.luma(c)) >= 0.35 for c in bgs)  # survives grayscale


def test_youtube_ids():
    taken = {"A" * 11}
    ids = syn.youtube_ids(np.random.default_rng(0), 500, taken)
    assert len(set(ids)) == 500 and all(ID.match(i) for i in ids) and "A" * 11 not in ids


# ------------------------------------------------------------------------------------------------ settings, reruns


@pytest.mark.parametrize("settings, key", [
    ({"colour": 1}, "synthetic.colour"),
    ({"kinetics": {"topics": 3}}, "synthetic.kinetics.topics"),
    ({"frame_size": 31}, "synthetic.frame_size"),
    ({"kinetics": {"clip_seconds": 5}}, "synthetic.kinetics.clip_seconds"),
    ({"kinetics": {"val_per_class": 20}}, "synthetic.kinetics.val_per_class"),
    ({"kinetics": {"classes": 13}}, "synthetic.kinetics.classes"),
    ({"hmdb51": {"train_per_class": 40}}, "synthetic.hmdb51.train_per_class"),
    ({"ucf101": {"seconds": [3, 2]}}, "synthetic.ucf101.seconds"),
    ({"activitynet": {"segments": "two"}}, "synthetic.activitynet.segments"),
])
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(UserError, match=re.escape(key)):
        syn.resolve_settings(settings)


def test_refuses_a_foreign_folder_and_replaces_its_own(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        syn.synthesize(foreign, SMALL, workers=1)
    assert (foreign / "precious.txt").read_text() == "keep me"

    tiny = json.loads(json.dumps(SMALL))
    tiny["kinetics"].update(classes=1, videos_per_class=1, val_per_class=0, scenes=[1, 1], scene_seconds=[2, 2])
    tiny["ucf101"].update(classes=1, groups=2, clips_per_group=1)
    tiny["hmdb51"].update(classes=1, videos_per_class=2)
    tiny["activitynet"].update(classes=1, videos=1, validation_videos=0, segments=1)
    tiny["hacs"].update(classes=1, videos_per_class=1, val_per_class=0, scenes=[1, 1])
    root = tmp_path / "own"
    syn.synthesize(root, SMALL, workers=1)
    syn.synthesize(root, tiny, seed=4, workers=1)  # fewer videos: nothing of the first run may remain
    videos = [p for p in root.rglob("*") if p.suffix in (".mp4", ".avi")]
    assert len(videos) == 1 + 1 + 1 + 2 + 2 + 1 + 1  # source, clip, one 5-s piece, UCF, HMDB, ActivityNet, HACS


# ---------------------------------------------------------------------------------------------------------- readers


def test_the_real_readers_list_exactly_the_generated_videos(out, meta):
    root = Path(out["root"])
    k = out["kinetics400"]
    trimmed = formats.read_kinetics([k["train_csv"], k["val_csv"]], k["videos"])
    assert sorted(trimmed["path"]) == sorted(str(root / v["clip"]["path"]) for v in meta["videos"]["kinetics"])
    untrimmed = formats.read_untrimmed_kinetics([k["train_csv"], k["val_csv"]], out["kinetics400_untrimmed"]["videos"])
    assert sorted(untrimmed["path"]) == sorted(str(root / v["path"]) for v in meta["videos"]["kinetics"])
    assert (untrimmed["label_index"] >= 0).all()

    u = out["kinetics400_untrimmed"]
    segments = formats.read_kinetics_segments([u["training_list"], u["validation_list"]], u["segments"],
                                              csv_path=k["train_csv"])
    by_id = {v["video_id"]: v for v in meta["videos"]["kinetics"]}
    assert sorted(segments["video_id"]) == sorted(by_id)
    for _, row in segments.iterrows():
        parts = json.loads(row["parts"])
        assert [p[2] for p in parts] == [str(root / p[2]) for p in by_id[row["video_id"]]["pieces"]]
        assert parts[-1][1] == pytest.approx(by_id[row["video_id"]]["duration"])

    ucf = [v["path"] for v in meta["videos"]["ucf101"]]
    for split in (1, 2, 3):
        listing = formats.read_ucf101(out["ucf101"]["videos"], out["ucf101"]["splits"], split=split)
        assert sorted(listing["path"]) == sorted(str(root / p) for p in ucf)
        tests = {v["video_id"] for v in meta["videos"]["ucf101"] if split in v["test_in_splits"]}
        assert set(listing.loc[listing["split"] == "test", "video_id"]) == tests

    for split in (1, 2, 3):
        listing = formats.read_hmdb51(out["hmdb51"]["videos"], out["hmdb51"]["splits"], split=split)
        used = {v["video_id"]: v["flags"][split - 1] for v in meta["videos"]["hmdb51"] if v["flags"][split - 1]}
        assert dict(zip(listing["video_id"], listing["split"].map({"train": 1, "test": 2}))) == used

    anet = formats.read_activitynet(out["activitynet"]["annotations"], out["activitynet"]["videos"])
    assert sorted(anet["path"]) == sorted(str(root / v["path"]) for v in meta["videos"]["activitynet"])
    assert set(anet["split"]) == {"train", "val"}

    hacs = formats.read_hacs(out["hacs"]["annotations"], out["hacs"]["videos"])  # the training subset
    training = [v for v in meta["videos"]["hacs"] if v["subset"] == "training"]
    assert list(hacs["path"]) == [str(root / v["path"]) for v in training]
    assert list(hacs["label"]) == [v["label"] for v in training] and (hacs["label_index"] >= 0).all()
    assert list(hacs["annotated_duration"]) == pytest.approx([v["duration"] for v in training], abs=1e-6)
