"""HiCo clip sampler and delta schedules (the official datasets/base/base_dataset.py, _get_hico_clips_time_stamp)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from hico_bench.data.sampling import (
    DeltaSchedule,
    clip_time,
    clip_windows,
    evenly_spaced_clip_starts,
    interval_windows,
    random_center,
    sample_centres,
    uniform_clip_starts,
)
from hico_bench.errors import UserError

CLIP_T = 16 * 4 / 30


def reference_centres(duration, clip_t, num_clips, max_dis, topical, rng):
    """The official sampler's rules read literally, one step at a time."""
    def rc(a, b):
        p = rng.random()  # one draw, whatever a and b are
        if b < a:
            return a
        return a + (b - a) * p

    out = [rc(clip_t, duration - clip_t)]
    j = 1
    while j < num_clips:
        if max_dis < 0:
            out.append(rc(clip_t, duration - clip_t))
        else:
            a = out[j - 1] - max_dis
            if a < clip_t:
                a = clip_t
            b = out[j - 1] + max_dis
            if b > duration - clip_t:
                b = duration - clip_t
            out.append(rc(a, b))
        j += 1
    if topical:
        out[num_clips - 1] = rc(clip_t, duration - clip_t)
    return out


def test_clip_time():
    assert clip_time(16, 4, 30) == pytest.approx(2.1333333333)
    assert clip_time(32, 2, 30) == pytest.approx(64 / 30)
    with pytest.raises(UserError):
        clip_time(0, 4, 30)


def test_delta_schedules():
    gradual = DeltaSchedule("gradual", 1.0)
    assert [gradual.max_dis(p) for p in (-0.5, 0.0, 0.25, 1.0, 3.0)] == [0.0, 0.0, 0.25, 1.0, 1.0]
    offset = DeltaSchedule("gradual", 2.0, delta_start_s=0.5)
    assert offset.max_dis(0.0) == 0.5 and offset.max_dis(0.5) == pytest.approx(1.25) and offset.max_dis(1) == 2.0
    assert DeltaSchedule("fixed", 1.5).max_dis(0.0) == 1.5 == DeltaSchedule("fixed", 1.5).max_dis(0.9)
    assert DeltaSchedule("none", 1.0).max_dis(0.5) == -1.0
    with pytest.raises(UserError, match="fixed, gradual, none"):
        DeltaSchedule("linear", 1.0)
    with pytest.raises(UserError):
        DeltaSchedule("fixed", -1.0)


def test_random_center_one_draw_and_degenerate_range():
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    assert random_center(5.0, 2.0, rng) == 5.0
    ref.random()
    assert rng.random() == ref.random()  # exactly one draw was consumed
    values = [random_center(1.0, 3.0, rng) for _ in range(2000)]
    assert 1.0 <= min(values) and max(values) <= 3.0


@pytest.mark.parametrize("topical", [False, True])
def test_sample_centres_matches_reference(topical):
    rng = np.random.default_rng(0)
    for _ in range(300):
        duration = float(rng.uniform(0.5, 30.0))
        num_clips = int(rng.integers(1, 5))
        max_dis = float(rng.choice([-1.0, 0.0, 0.3, 1.0, 5.0]))
        seed = int(rng.integers(1 << 30))
        got = sample_centres(duration, CLIP_T, num_clips, max_dis, topical, np.random.default_rng(seed))
        want = reference_centres(duration, CLIP_T, num_clips, max_dis, topical, np.random.default_rng(seed))
        assert got == want


def test_centres_in_range_and_within_max_dis():
    rng = np.random.default_rng(1)
    for duration, max_dis in itertools.product([4.5, 7.0, 60.0], [0.0, 0.5, 1.0, 3.0]):
        for _ in range(200):
            c = sample_centres(duration, CLIP_T, 3, max_dis, False, rng)
            assert all(CLIP_T <= x <= duration - CLIP_T for x in c)
            assert abs(c[1] - c[0]) <= max_dis + 1e-12 and abs(c[2] - c[1]) <= max_dis + 1e-12


def test_gradual_at_progress_zero_gives_identical_windows():
    sched = DeltaSchedule("gradual", 1.0)
    rng = np.random.default_rng(2)
    for duration in (5.0, 12.0, 300.0):
        for _ in range(50):
            c = sample_centres(duration, CLIP_T, 3, sched.max_dis(0.0), True, rng)
            assert c[1] == c[0]
            w = clip_windows(c, CLIP_T, duration)
            assert w[0] == w[1]


def test_short_videos_collapse_and_truncate():
    rng = np.random.default_rng(4)
    for duration in (0.4, 2.0, 3.1, 4.2):
        for max_dis, topical in [(-1.0, False), (1.0, True), (0.0, True)]:
            c = sample_centres(duration, CLIP_T, 3, max_dis, topical, rng)
            assert c == [CLIP_T] * 3
            w = clip_windows(c, CLIP_T, duration)
            assert w == [(CLIP_T / 2, min(1.5 * CLIP_T, duration))] * 3


def test_clip_windows_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(200):
        duration = float(rng.uniform(0.1, 20))
        cs = list(rng.uniform(-1, duration + 1, size=3))
        for (s, e), c in zip(clip_windows(cs, CLIP_T, duration), cs):
            assert s == (c - CLIP_T / 2 if c - CLIP_T / 2 > 0 else 0.0)
            assert e == (c + CLIP_T / 2 if c + CLIP_T / 2 < duration else duration)


def test_distributions():
    """v_i and v_k uniform over the valid range and independent; v_j uniform within +-max_dis of v_i."""
    rng = np.random.default_rng(6)
    duration, max_dis = 20.0, 1.0
    lo, hi = CLIP_T, duration - CLIP_T
    c = np.array([sample_centres(duration, CLIP_T, 3, max_dis, True, rng) for _ in range(4000)])
    uniform = stats.uniform(loc=lo, scale=hi - lo).cdf
    assert stats.kstest(c[:, 0], uniform).pvalue > 1e-3
    assert stats.kstest(c[:, 2], uniform).pvalue > 1e-3
    assert abs(np.corrcoef(c[:, 0], c[:, 2])[0, 1]) < 0.06
    inner = (c[:, 0] > lo + max_dis) & (c[:, 0] < hi - max_dis)
    offsets = (c[inner, 1] - c[inner, 0]) / max_dis
    assert stats.kstest(offsets, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    # No constraint: v_j independent of v_i as well.
    free = np.array([sample_centres(duration, CLIP_T, 2, -1.0, False, rng) for _ in range(3000)])
    assert stats.kstest(free[:, 1], uniform).pvalue > 1e-3
    assert abs(np.corrcoef(free[:, 0], free[:, 1])[0, 1]) < 0.06


def test_uniform_and_vcop_starts():
    valid = 10.0 - CLIP_T
    assert uniform_clip_starts(10.0, CLIP_T, 10) == pytest.approx([valid * i / 10 for i in range(10)])
    assert uniform_clip_starts(10.0, CLIP_T, 1) == pytest.approx([valid / 2])
    assert uniform_clip_starts(1.0, CLIP_T, 4) == [0.0] * 4
    vcop = evenly_spaced_clip_starts(10.0, CLIP_T, 10)
    assert vcop[0] == 0.0 and vcop[-1] == pytest.approx(valid)
    assert np.allclose(np.diff(vcop), valid / 9)
    assert evenly_spaced_clip_starts(1.0, CLIP_T, 3) == [0.0] * 3
    with pytest.raises(UserError):
        uniform_clip_starts(10.0, CLIP_T, 0)


def test_interval_windows_reference_and_bounds():
    """Trimmed clips, every HiCo switch off: each start uniform in [0, duration - clip_t], one draw per clip."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        duration = float(rng.uniform(0.5, 30.0))
        num_clips = int(rng.integers(1, 4))
        seed = int(rng.integers(1 << 30))
        got = interval_windows(duration, CLIP_T, num_clips, np.random.default_rng(seed))
        ref = np.random.default_rng(seed)
        valid = duration - CLIP_T if duration > CLIP_T else 0.0
        starts = [valid * ref.random() for _ in range(num_clips)]
        assert len(got) == num_clips
        for (s, e), want in zip(got, starts):
            assert s == pytest.approx(want, abs=1e-12) and e == pytest.approx(s + CLIP_T, abs=1e-12)
            assert 0.0 <= s <= valid
    assert interval_windows(1.0, CLIP_T, 2, np.random.default_rng(0)) == [(0.0, CLIP_T)] * 2  # shorter than a clip
    with pytest.raises(UserError):
        interval_windows(10.0, CLIP_T, 0, np.random.default_rng(0))


def test_interval_windows_uniform_over_the_whole_clip_and_independent():
    rng = np.random.default_rng(8)
    duration = 10.0
    w = np.array([[s for s, _ in interval_windows(duration, CLIP_T, 2, rng)] for _ in range(4000)])
    uniform = stats.uniform(loc=0.0, scale=duration - CLIP_T).cdf
    assert stats.kstest(w[:, 0], uniform).pvalue > 1e-3 and stats.kstest(w[:, 1], uniform).pvalue > 1e-3
    assert abs(np.corrcoef(w[:, 0], w[:, 1])[0, 1]) < 0.06
    # Unlike the time-based sampler, whose windows start at clip_t / 2 at the earliest and end by
    # duration - clip_t / 2, the first and last clip_t / 2 seconds are covered.
    assert w.min() < 0.05 * CLIP_T and w.max() > duration - CLIP_T - 0.05 * CLIP_T
    centres = np.array([sample_centres(duration, CLIP_T, 2, -1.0, False, rng) for _ in range(4000)])
    assert centres.min() - CLIP_T / 2 >= CLIP_T / 2 and centres.max() + CLIP_T / 2 <= duration - CLIP_T / 2
