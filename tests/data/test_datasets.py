"""Pre-training and downstream datasets on tiny real videos."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler

from hico_bench.data.datasets import ClipDataset, FailureLog, PretrainDataset, ProgressBatchSampler, item_rng
from hico_bench.data.sampling import (
    DeltaSchedule,
    clip_time,
    clip_windows,
    evenly_spaced_clip_starts,
    interval_windows,
    sample_centres,
    uniform_clip_starts,
)
from hico_bench.data.transforms import PRETRAIN, ClipAugment, PretrainAugment
from hico_bench.data.video import VideoError, frame_indices, write_video
from hico_bench.errors import UserError

FPS = 10
H, W = 32, 48
S = 16
CLIP_T = clip_time(16, 4, 30)


def level_frames(indices) -> list[np.ndarray]:
    """Flat frames whose colour identifies the frame after lossy coding: red = index % 16, green = index // 16."""
    return [np.full((H, W, 3), (16 * (i % 16) + 8, 16 * (i // 16) + 8, 128), dtype=np.uint8) for i in indices]


def identify(frames: np.ndarray) -> list[int]:
    rg = np.rint((frames[..., :2].reshape(len(frames), -1, 2).mean(axis=1) - 8) / 16).astype(int)
    return [int(g * 16 + r) for r, g in rg]


def manifest_row(video_id, path, duration, label_index=0, parts=""):
    return {
        "video_id": video_id, "path": str(path), "split": "train", "label": f"c{label_index}",
        "label_index": label_index, "duration": duration, "fps": float(FPS), "num_frames": int(duration * FPS),
        "segments": "", "parts": parts,
    }


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("datasets")
    write_video(root / "long.mp4", level_frames(range(120)), FPS)  # 12 s
    write_video(root / "short.mp4", level_frames(range(30)), FPS)  # 3 s < 2 * clip_t
    parts = []
    for start, end in ((0, 5), (5, 10), (10, 12)):
        path = root / f"v_long_{start * 1000:07d}_{end * 1000:07d}.mp4"
        write_video(path, level_frames(range(start * FPS, end * FPS)), FPS)
        parts.append([start, end, str(path)])
    rows = [
        manifest_row("long", root / "long.mp4", 12.0, 0),
        manifest_row("short", root / "short.mp4", 3.0, 1),
        manifest_row("seg", parts[0][2], 12.0, 2, json.dumps(parts)),
        manifest_row("gone", root / "gone.mp4", 5.0, 3),
    ]
    return pd.DataFrame(rows)


def pretrain(manifest, transform=None, schedule=DeltaSchedule("gradual", 1.0), **kw):
    """A HiCo dataset (gradual sampling): items take the trainer's ``(index, epoch, progress)`` keys."""
    args = dict(
        frames=16, sampling_rate=4, target_fps=30, num_clips=3, schedule=schedule, topical=True, transform=transform,
        decode_size=(H, W), seed=7,
    )
    args.update(kw)
    return PretrainDataset(manifest, **args)


def test_pretrain_item_shapes_and_order(manifest):
    ds = pretrain(manifest, transform=ClipAugment(dataclasses.replace(PRETRAIN, size=S)), decode_size=16)
    clips, index = ds[(0, 0, 0.0)]
    assert index == 0 and clips.shape == (3, 3, 16, S, S) and clips.dtype == torch.float32
    same = pretrain(manifest, transform=PretrainAugment(S), decode_size=16)
    assert torch.equal(same[(0, 0, 0.0)][0], clips)
    raw, _ = pretrain(manifest)[(0, 0, 0.0)]
    assert raw.shape == (3, 16, H, W, 3) and raw.dtype == torch.uint8


def test_pretrain_frames_follow_the_sampler(manifest):
    """The decoded frames are exactly those of the sampled windows (same generator as the item)."""
    ds = pretrain(manifest)
    raw, _ = ds[(0, 3, 0.5)]
    windows = ds.windows(12.0, item_rng(7, 3, 0), progress=0.5)
    for clip, (s, e) in zip(raw.numpy(), windows):
        assert identify(clip) == frame_indices(s, e, FPS, 120, 16).tolist()


def test_gradual_start_gives_vi_equal_vj_and_short_videos_collapse(manifest):
    ds = pretrain(manifest)
    for epoch in range(3):
        raw, _ = ds[(0, epoch, 0.0)]  # progress 0: max_dis 0
        assert torch.equal(raw[0], raw[1])
    short, index = ds[(1, 0, 0.0)]
    assert index == 1
    assert torch.equal(short[0], short[1]) and torch.equal(short[1], short[2])  # all centres at clip_t
    assert identify(short[0].numpy()) == frame_indices(CLIP_T / 2, 3.0, FPS, 30, 16).tolist()
    # An (index, progress) key takes the epoch of set_epoch.
    ds.set_epoch(2)
    late, _ = ds[(0, 1.0)]
    windows = ds.windows(12.0, item_rng(7, ds.epoch, 0), progress=1.0)
    assert windows[0] != windows[1]
    assert [identify(c.numpy()) for c in late] == [frame_indices(s, e, FPS, 120, 16).tolist() for s, e in windows]


def test_reproducible_by_seed_epoch_index(manifest):
    aug = ClipAugment(dataclasses.replace(PRETRAIN, size=S))
    a = pretrain(manifest, transform=aug)
    b = pretrain(manifest, transform=aug)
    first = a[(0, 2, 0.4)][0]
    assert torch.equal(first, a[(0, 2, 0.4)][0]) and torch.equal(first, b[(0, 2, 0.4)][0])  # same (seed, epoch, index)
    b.set_epoch(2)
    assert torch.equal(first, b[(0, 0.4)][0])  # the epoch of set_epoch
    assert not torch.equal(first, b[(0, 3, 0.4)][0])
    c = pretrain(manifest, transform=aug, seed=8)
    assert not torch.equal(first, c[(0, 2, 0.4)][0])


def test_segmented_and_cached_sources_give_the_same_samples(manifest):
    plain = pretrain(manifest.iloc[[0]])
    seg = pretrain(manifest.iloc[[2]])
    cached = pretrain(manifest.iloc[[2]], cache_frames=True)
    for epoch in range(3):
        key = (0, epoch, 1.0)
        a, b, c = plain[key][0], seg[key][0], cached[key][0]
        assert [identify(x.numpy()) for x in a] == [identify(x.numpy()) for x in b]
        assert torch.equal(b, c)
    assert len(cached._cache) == 1


def test_broken_video_falls_back_and_is_recorded(manifest):
    ds = pretrain(manifest)
    raw, index = ds[(3, 0, 0.0)]
    assert index == 0 and raw.shape == (3, 16, H, W, 3)  # wrapped around to the next index
    assert ds.failures() == [(manifest.path[3], "file is missing")]
    ds[(3, 0, 0.0)]
    assert ds.failure_log.total == 2 and len(ds.failures()) == 1
    # Deterministic: the same substitute each time.
    assert torch.equal(ds[(3, 0, 0.0)][0], raw)


def test_failures_from_workers_reach_the_main_process(manifest):
    ds = pretrain(manifest.iloc[[3, 1]].reset_index(drop=True))
    sampler = ProgressBatchSampler(SequentialSampler(ds), batch_size=2, total_epochs=2)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2, persistent_workers=True,
                        multiprocessing_context="fork")
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(loader)
        assert batches[0][1].tolist() == [1, 1]
    assert ds.failures() == [(manifest.path[3], "file is missing")]
    assert ds.failure_log.total == 2


def test_failure_log_capacity_and_text():
    log = FailureLog(max_workers=2, capacity=2, reason_bytes=8)
    for k in range(3):
        log.record(k, "é" * 10)
    assert log.total == 3
    assert log.entries() == [(0, "éééé"), (1, "éééé")]


def test_progress_batch_sampler_matches_the_iteration_progress(manifest):
    sampler = ProgressBatchSampler(SequentialSampler(range(10)), batch_size=4, total_epochs=5)
    sampler.set_epoch(2)
    got = list(sampler)
    assert len(got) == len(sampler) == 2  # the partial last batch is dropped
    assert [[i for i, _, _ in b] for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert {e for b in got for _, e, _ in b} == {2}
    assert [b[0][2] for b in got] == pytest.approx([(2 + k / 2) / 5 for k in range(2)])
    ds = pretrain(manifest.iloc[[0, 1]].reset_index(drop=True))
    loader = DataLoader(ds, batch_sampler=ProgressBatchSampler(SequentialSampler(ds), 1, 10))
    clips, index = next(iter(loader))
    assert clips.shape == (1, 3, 16, H, W, 3) and index.tolist() == [0]


def clip_dataset(manifest, **kw):
    args = dict(frames=16, sampling_rate=4, target_fps=30, size=S, decode_size=(H, W), seed=3)
    args.update(kw)
    return ClipDataset(manifest, **args)


def test_clip_dataset_train(manifest):
    ds = clip_dataset(manifest.iloc[[0, 1, 3]].reset_index(drop=True))
    clip, label, index = ds[0]
    assert clip.shape == (3, 16, S, S) and clip.dtype == torch.float32 and (label, index) == (0, 0)
    assert torch.equal(clip, ds[0][0])
    ds.set_epoch(1)
    assert not torch.equal(clip, ds[0][0])
    clip, label, index = ds[2]  # broken: falls back to the next video, with its label
    assert (label, index) == (0, 0) and ds.failures()[0][1] == "file is missing"


def test_clip_dataset_test_views(manifest):
    ds = clip_dataset(manifest.iloc[[0, 1, 2]].reset_index(drop=True), mode="test", num_views=4, crops=3)
    views, label, index = ds[0]
    assert views.shape == (12, 3, 16, S, S) and (label, index) == (0, 0)
    assert ds.starts(12.0) == uniform_clip_starts(12.0, CLIP_T, 4)
    # Views are clip-major: the 3 crops of a clip of flat frames are equal, different clips are not.
    assert torch.equal(views[0], views[1]) and torch.equal(views[1], views[2])
    assert not torch.equal(views[0], views[3])
    short, label, _ = ds[1]
    assert label == 1 and short.shape == views.shape
    assert ds.starts(1.5) == [0.0] * 4  # shorter than a clip: every view starts at 0
    seg_views, _, _ = ds[2]
    assert seg_views.shape == views.shape
    vcop = clip_dataset(manifest.iloc[[0]], mode="test", num_views=3, view_starts=evenly_spaced_clip_starts, crops=1)
    assert vcop.starts(12.0) == pytest.approx([0.0, (12.0 - CLIP_T) / 2, 12.0 - CLIP_T])
    hico = clip_dataset(manifest.iloc[[0]], mode="test", num_views=3, crops=1)
    assert hico.starts(12.0) == uniform_clip_starts(12.0, CLIP_T, 3)
    # The views hold exactly the frames of their windows: flat frames whose colour is the frame index.
    for ds in (vcop, hico):
        raw = ClipDataset(manifest.iloc[[0]], 16, 4, 30, size=W, mode="test", num_views=3, crops=1,
                          decode_size=(H, W), view_starts=ds.view_starts)
        views, _, _ = raw[0]
        for view, start in zip(views, ds.starts(12.0)):
            frames = (view.permute(1, 2, 3, 0) * 0.225 + 0.45) * 255  # un-normalised (T, S, S, 3)
            assert identify(frames.numpy()) == frame_indices(start, start + CLIP_T, FPS, 120, 16).tolist()


def test_clip_dataset_errors(manifest):
    broken = clip_dataset(manifest.iloc[[3]].reset_index(drop=True), mode="test", num_views=2)
    with pytest.raises(VideoError, match="gone.mp4"):
        broken[0]
    with pytest.raises(UserError, match="test, train"):
        clip_dataset(manifest, mode="val")
    with pytest.raises(UserError, match="crops"):
        clip_dataset(manifest, mode="test", crops=2)
    with pytest.raises(UserError, match="label_index"):
        clip_dataset(manifest.drop(columns=["label_index"]))
    with pytest.raises(UserError):
        pretrain(manifest.iloc[[]])


def test_keys_carry_epoch_and_progress(manifest):
    ds = pretrain(manifest)  # gradual: the progress must come with the key
    with pytest.raises(UserError, match="progress"):
        ds[0]
    ds.set_epoch(2)
    a, _ = ds[(0, 0.5)]
    ds.set_epoch(0)
    b, _ = ds[(0, 2, 0.5)]  # (index, epoch, progress): the key's epoch wins
    assert torch.equal(a, b)
    c, _ = ds[(0, 3, 0.5)]
    assert not torch.equal(a, c)
    fixed = pretrain(manifest, schedule=DeltaSchedule("fixed", 1.0))
    assert fixed[0][0].shape == (3, 16, H, W, 3)


def test_drain_failures_returns_each_path_once(manifest):
    ds = pretrain(manifest)
    assert ds.drain_failures() == []
    ds[(3, 0, 0.0)]
    assert ds.drain_failures() == [(manifest.path[3], "file is missing")]
    ds[(3, 0, 0.0)]
    assert ds.drain_failures() == []
    assert ds.failures() == [(manifest.path[3], "file is missing")]


# --- trimmed clips: the baseline with every HiCo switch off uses interval-based sampling ------------------------


def test_trimmed_baseline_draws_interval_windows(manifest):
    """Kinetics-400 (trimmed), schedule none, topical off: each clip starts uniformly over [0, duration - clip_t]."""
    simclr = dict(num_clips=2, schedule=DeltaSchedule("none", 1.0), topical=False)
    trimmed = pretrain(manifest, trimmed=True, **simclr)
    assert trimmed.interval_sampling
    raw, _ = trimmed[(0, 3, 0.5)]  # the progress of the key plays no part
    windows = interval_windows(12.0, CLIP_T, 2, item_rng(7, 3, 0))
    assert trimmed.windows(12.0, item_rng(7, 3, 0)) == windows
    assert [identify(c.numpy()) for c in raw] == [frame_indices(s, e, FPS, 120, 16).tolist() for s, e in windows]
    # Deterministic per (seed, epoch, index), different across epochs, indices and seeds.
    assert torch.equal(trimmed[(0, 3, 0.5)][0], raw) and torch.equal(trimmed[(0, 3, 0.9)][0], raw)
    assert trimmed.windows(12.0, item_rng(7, 4, 0)) != windows
    assert pretrain(manifest, trimmed=True, seed=8, **simclr).windows(12.0, item_rng(8, 3, 0)) != windows
    starts = np.array([[s for s, _ in trimmed.windows(12.0, item_rng(7, 0, i))] for i in range(3000)])
    assert starts.min() >= 0.0 and starts.max() <= 12.0 - CLIP_T
    assert starts.min() < 0.05 * CLIP_T and starts.max() > 12.0 - 1.05 * CLIP_T  # the whole clip is covered
    assert abs(np.corrcoef(starts[:, 0], starts[:, 1])[0, 1]) < 0.06  # the two clips are independent


def test_untrimmed_baseline_and_hico_variants_keep_the_time_based_sampler(manifest):
    untrimmed = pretrain(manifest, num_clips=2, schedule=DeltaSchedule("none", 1.0), topical=False)
    assert not untrimmed.interval_sampling
    want = clip_windows(sample_centres(12.0, CLIP_T, 2, -1.0, False, item_rng(7, 1, 0)), CLIP_T, 12.0)
    assert untrimmed.windows(12.0, item_rng(7, 1, 0)) == want  # random_center(clip_t, duration - clip_t) per clip
    for kind, topical in (("none", True), ("fixed", False), ("gradual", True)):
        trimmed = pretrain(manifest, trimmed=True, schedule=DeltaSchedule(kind, 1.0), topical=topical)
        plain = pretrain(manifest, schedule=DeltaSchedule(kind, 1.0), topical=topical)
        assert not trimmed.interval_sampling
        for epoch in range(3):
            key = (0, epoch, 0.4)
            assert torch.equal(trimmed[key][0], plain[key][0])


# --- frozen features: VCOP's evenly spaced views --------------------------------------------------------------


class FrameLevels(torch.nn.Module):
    """A 'backbone' whose feature is each frame's mean red and green level: it shows which frames a view holds."""

    out_dim = 2 * 16

    def forward(self, x):  # (N, 3, T, S, S)
        return x[:, :2].mean(dim=(3, 4)).transpose(1, 2).flatten(1)


def test_video_features_average_vcop_views(manifest):
    from hico_bench.evaluate.features import video_features

    rows = manifest.iloc[[0, 2]].reset_index(drop=True)  # a file and the same video in 5-s pieces
    model = {"frames": 16, "sampling_rate": 4, "target_fps": 30, "size": S, "decode_size": 32}
    got = video_features(FrameLevels(), rows, model, views=4, batch_size=2)
    assert got.shape == (2, 32)

    def mean_of_views(view_starts):
        ds = ClipDataset(rows, 16, 4, 30, size=S, mode="test", num_views=4, crops=1, decode_size=32,
                         view_starts=view_starts)
        return np.stack([FrameLevels()(ds[i][0]).mean(0).numpy() for i in range(2)])

    np.testing.assert_allclose(got, mean_of_views(evenly_spaced_clip_starts), rtol=0, atol=1e-5)
    assert np.abs(got - mean_of_views(uniform_clip_starts)).max() > 0.05
