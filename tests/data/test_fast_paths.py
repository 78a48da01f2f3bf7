"""The fast paths give the same results as the simple ones: merged window decoding, in-place augmentation, batched
snippet transforms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from hico_bench.data import transforms as T
from hico_bench.data.datasets import PretrainDataset
from hico_bench.data.sampling import DeltaSchedule
from hico_bench.data.video import VideoReader, merge_groups, write_video


# --- video.py: merge_groups, read_windows ----------------------------------------------------------------------


def test_merge_groups_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 7))
        firsts = rng.integers(0, 100, n)
        spans = [(int(f), int(f + rng.integers(0, 30))) for f in firsts]
        gap = int(rng.integers(0, 10))
        groups = merge_groups(spans, gap)
        assert sorted(k for g in groups for k in g) == list(range(n))
        for g in groups:
            assert [spans[k][0] for k in g] == sorted(spans[k][0] for k in g)
            end = spans[g[0]][1]
            for k in g[1:]:  # every member starts within `gap` of what the group covered so far
                assert spans[k][0] <= end + gap
                end = max(end, spans[k][1])
        for a, b in zip(groups, groups[1:]):  # groups are separated by more than `gap`
            assert spans[b[0]][0] > max(spans[k][1] for k in a) + gap


def level_frames(n, h=32, w=48):
    """Flat frames whose colour identifies the index after lossy coding."""
    return [np.full((h, w, 3), (16 * (i % 16) + 8, 16 * (i // 16) + 8, 128), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("windows") / "v.mp4"
    write_video(path, level_frames(120), 10, keyframe_interval_s=2.0)  # 12 s, keyframes every 2 s
    return path


@pytest.mark.parametrize("windows", [
    [(1.0, 3.1), (1.5, 3.6), (8.0, 10.1)],  # v_i, v_j overlapping, v_k far
    [(5.0, 7.1), (5.0, 7.1), (5.0, 7.1)],  # identical (gradual sampling at its start)
    [(8.0, 10.1), (1.0, 3.1), (3.3, 5.4)],  # out of order, a short gap
    [(10.5, 12.0), (11.9, 13.0), (0.0, 0.5)],  # the end of the file, past it, the start
])
def test_read_windows_equals_separate_reads(video, windows):
    with VideoReader(video, 16) as reader:
        separate = [reader.read_window(s, e, 16) for s, e in windows]
        merged = reader.read_windows(windows, 16)
    assert len(merged) == len(windows)
    for a, b in zip(separate, merged):
        assert b.shape == a.shape and np.array_equal(a, b)


# --- transforms.py: out=, eval_snippets ----------------------------------------------------------------------


def test_augment_clip_writes_into_out():
    clip = torch.randint(0, 256, (4, 40, 54, 3), dtype=torch.uint8)
    spec = dataclasses.replace(T.PRETRAIN, size=32)
    p = T.sample_params(spec, 1, 40, 54, np.random.default_rng(3))
    out = torch.full((3, 4, 32, 32), float("nan"))
    got = T.augment_clip(clip, p, spec, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(out, T.augment_clip(clip, p, spec))


@pytest.mark.parametrize("stride,length,chunk", [(16, 16, 64), (4, 16, 20), (8, 16, 1), (20, 16, 64)])
def test_eval_snippets_equal_eval_views_per_snippet(stride, length, chunk):
    g = torch.Generator().manual_seed(stride)
    frames = torch.randint(0, 256, (70, 40, 54, 3), dtype=torch.uint8, generator=g)
    spec = dataclasses.replace(T.FINETUNE, size=32)
    starts = np.arange(0, 70 - length + 1, stride)
    got = T.eval_snippets(frames, starts, length, spec, chunk_frames=chunk)
    want = torch.stack([T.eval_views(frames[s:s + length], spec, crops=1)[0] for s in starts])
    assert got.shape == (len(starts), 3, length, 32, 32) and torch.equal(got, want)


# --- datasets.py: the in-place ClipAugment path equals stacking --------------------------------------------------


def test_pretrain_items_written_in_place_equal_stacked_transform_outputs(video):
    rows = pd.DataFrame({"path": [str(video)] * 3})
    augment = T.PretrainAugment(16)

    def as_plain_callable(clip, rng):  # not a ClipAugment: the dataset stacks its outputs
        return augment(clip, rng)

    kw = dict(frames=16, sampling_rate=4, target_fps=30, num_clips=3, schedule=DeltaSchedule("gradual", 1.0),
              decode_size=24, seed=1)
    fast = PretrainDataset(rows, transform=augment, **kw)
    plain = PretrainDataset(rows, transform=as_plain_callable, **kw)
    for i in range(3):
        key = (i, 0, 0.5)  # (index, epoch, progress), as the trainer's ProgressBatchSampler hands them out
        a, b = fast[key][0], plain[key][0]
        assert a.shape == (3, 3, 16, 16, 16) and torch.equal(a, b)
