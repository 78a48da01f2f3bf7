"""Clip-consistent augmentations (HiCo's recipes) against torchvision's per-image functional ops and colorsys."""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from hico_bench.data import transforms as T
from hico_bench.errors import UserError

S = 32
PRE = dataclasses.replace(T.PRETRAIN, size=S)
FT = dataclasses.replace(T.FINETUNE, size=S)
TV_OPS = {
    T.BRIGHTNESS: TF.adjust_brightness,
    T.CONTRAST: TF.adjust_contrast,
    T.SATURATION: TF.adjust_saturation,
    T.HUE: TF.adjust_hue,
}


def random_clip(seed: int, t=4, h=40, w=54) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=g)


def reference_augment(clip: torch.Tensor, p: T.AugParams, spec: T.AugmentSpec) -> torch.Tensor:
    """One frame at a time with torchvision's functional ops, in the recipe's order."""
    top, left, h, w = (int(v) for v in p.box[0])
    frames = []
    for frame in clip:
        x = frame.permute(2, 0, 1).float() / 255.0
        x = TF.resized_crop(x, top, left, h, w, [spec.size, spec.size], InterpolationMode.BILINEAR, antialias=False)
        if spec.gray_first and p.gray[0]:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if p.colour[0]:
            for op in p.order[0]:
                x = TV_OPS[int(op)](x, float(p.factors[0, op]))
        if not spec.gray_first and p.gray[0]:
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        x = TF.normalize(x, list(spec.mean), list(spec.std))
        if p.flip[0]:
            x = TF.hflip(x)
        frames.append(x)
    return torch.stack(frames, dim=1)


@pytest.mark.parametrize("spec", [PRE, FT], ids=["pretrain", "finetune"])
def test_augment_clip_matches_torchvision_reference(spec):
    rng = np.random.default_rng(0)
    seen_gray = seen_flip = seen_plain = 0
    for k in range(12):
        clip = random_clip(k)
        p = T.sample_params(spec, 1, clip.shape[1], clip.shape[2], rng)
        if k % 3 == 0:  # make sure grayscale is exercised with the colour ops in both orders
            p.gray[0], p.colour[0] = True, True
        seen_gray += int(p.gray[0])
        seen_flip += int(p.flip[0])
        seen_plain += int(not p.colour[0])
        out = T.augment_clip(clip, p, spec)
        assert out.shape == (3, clip.shape[0], S, S) and out.dtype == torch.float32
        torch.testing.assert_close(out, reference_augment(clip, p, spec), atol=2e-5, rtol=0)
    assert seen_gray and seen_flip
    assert seen_plain or spec.colour_p == 1.0


def test_colour_ops_match_torchvision_on_single_images():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(3, 17, 23, generator=g)
    img[:, :3, :3] = 0.5  # grey pixels (no hue)
    img[:, 3, :] = 1.0  # white
    img[0, 4, :], img[1, 4, :], img[2, 4, :] = 1.0, 1.0, 0.2  # ties between max channels
    img[:, 5, :] = 0.0  # black
    x = img[None, None]  # (N=1, T=1, 3, H, W)
    for f in (-0.5, -0.2, -0.01, 0.0, 0.13, 0.2, 0.25, 0.5):
        torch.testing.assert_close(T.adjust_hue(x.clone(), f)[0, 0], TF.adjust_hue(img, f), atol=3e-6, rtol=0)
    for f in (0.0, 0.2, 0.77, 1.0, 1.5, 1.8):
        for ours, theirs in (
            (T.adjust_saturation, TF.adjust_saturation),
            (T.adjust_contrast, TF.adjust_contrast),
            (T.adjust_brightness, TF.adjust_brightness),
        ):
            torch.testing.assert_close(ours(x.clone(), f)[0, 0], theirs(img, f), atol=1e-6, rtol=0)
    torch.testing.assert_close(T.grayscale(x)[0, 0], TF.rgb_to_grayscale(img), atol=1e-6, rtol=0)


def hue_reference(img: torch.Tensor, f: float) -> torch.Tensor:
    """Hue rotation pixel by pixel through HSV and back (Python's colorsys, float64)."""
    out = torch.empty(img.shape, dtype=torch.float64)
    for i in range(img.shape[1]):
        for j in range(img.shape[2]):
            h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in img[:, i, j]))
            out[:, i, j] = torch.tensor(colorsys.hsv_to_rgb((h + f) % 1.0, s, v), dtype=torch.float64)
    return out


def test_hue_matches_the_hsv_round_trip_pixel_by_pixel():
    g = torch.Generator().manual_seed(11)
    img = torch.rand(3, 9, 11, generator=g)
    img[:, 0, :3] = 0.25  # grey: no hue
    img[0, 1, :], img[1, 1, :], img[2, 1, :] = 0.9, 0.9, 0.1  # red and green tie for the max
    img[0, 2, :], img[1, 2, :], img[2, 2, :] = 0.3, 0.8, 0.8  # green and blue tie
    for f in (-0.5, -0.2, 0.0, 0.07, 0.25, 0.5):
        got = T.adjust_hue(img[None, None].clone(), f)[0, 0].double()
        torch.testing.assert_close(got, hue_reference(img, f), atol=5e-6, rtol=0)


def test_contrast_uses_each_frames_own_mean():
    g = torch.Generator().manual_seed(2)
    clip = torch.rand(1, 3, 3, 8, 8, generator=g)
    clip[0, 1] *= 0.2  # a darker frame
    out = T.adjust_contrast(clip.clone(), 0.5)
    for t in range(3):
        torch.testing.assert_close(out[0, t], TF.adjust_contrast(clip[0, t], 0.5), atol=1e-6, rtol=0)


@pytest.mark.parametrize("spec", [PRE, FT], ids=["pretrain", "finetune"])
def test_all_frames_of_a_clip_get_the_same_parameters(spec):
    frame = random_clip(3, t=1)[0]
    clip = frame.expand(6, *frame.shape).contiguous()
    rng = np.random.default_rng(3)
    for _ in range(6):
        out = T.ClipAugment(spec)(clip, rng)
        for t in range(1, 6):
            assert torch.equal(out[:, t], out[:, 0])
    batch = torch.stack([clip, clip, clip])
    p = T.sample_params(spec, 3, clip.shape[1], clip.shape[2], rng)
    out = T.augment_batch(batch, p, spec)
    for t in range(1, 6):
        assert torch.equal(out[:, :, t], out[:, :, 0])


def test_parameters_independent_across_clips_and_follow_the_recipe():
    rng = np.random.default_rng(4)
    n, h, w = 4000, 128, 170
    p = T.sample_params(T.PRETRAIN, n, h, w, rng)
    area = p.box[:, 2] * p.box[:, 3] / (h * w)
    assert np.all(p.box[:, 2] == p.box[:, 3])  # ratio 1: square crops
    assert area.min() >= 0.3243 - 0.02 and area.max() <= 0.5765 + 0.02
    assert np.all(p.box[:, 0] + p.box[:, 2] <= h) and np.all(p.box[:, 1] + p.box[:, 3] <= w)
    assert np.all(p.box[:, :2] >= 0)
    for rate, want in ((p.colour.mean(), 0.8), (p.gray.mean(), 0.2), (p.flip.mean(), 0.5)):
        assert abs(rate - want) < 4 * np.sqrt(want * (1 - want) / n)
    assert p.factors[:, :3].min() >= 0.2 and p.factors[:, :3].max() <= 1.8
    assert np.abs(p.factors[:, 3]).max() <= 0.2
    assert len({tuple(o) for o in p.order}) == 24  # every order of the four colour ops occurs
    assert abs(np.corrcoef(p.flip[:-1], p.flip[1:])[0, 1]) < 0.06  # consecutive clips independent
    ft = T.sample_params(T.FINETUNE, n, h, w, rng)
    aspect = ft.box[:, 3] / ft.box[:, 2]
    assert aspect.min() >= 0.857 - 0.03 and aspect.max() <= 1.167 + 0.03 and aspect.std() > 0.05
    assert ft.colour.all() and abs(ft.gray.mean() - 0.3) < 0.03
    assert ft.factors[:, :3].min() >= 0.5 and ft.factors[:, :3].max() <= 1.5 and np.abs(ft.factors[:, 3]).max() <= 0.25
    # Different clips of the same frames come out different.
    clip = random_clip(5)
    out = T.augment_batch(torch.stack([clip] * 3), T.sample_params(PRE, 3, 40, 54, rng), PRE)
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1], out[2])


@pytest.mark.parametrize("spec", [PRE, FT], ids=["pretrain", "finetune"])
def test_augment_batch_equals_per_clip(spec):
    rng = np.random.default_rng(6)
    batch = torch.stack([random_clip(10 + k) for k in range(8)])
    p = T.sample_params(spec, 8, batch.shape[2], batch.shape[3], rng)
    p.gray[:3] = True
    p.flip[:2] = [True, False]
    out = T.augment_batch(batch, p, spec)
    assert out.shape == (8, 3, 4, S, S) and out.dtype == torch.float32
    for k in range(8):
        torch.testing.assert_close(out[k], T.augment_clip(batch[k], p[k], spec), atol=1e-4, rtol=0)


def test_normalisation_and_identity_crop():
    clip = random_clip(7, t=2, h=S, w=S)
    p = T.AugParams(
        box=np.array([[0, 0, S, S]]), flip=np.array([False]), colour=np.array([False]),
        factors=np.ones((1, 4)), order=np.arange(4)[None], gray=np.array([False]),
    )
    want = (clip.permute(3, 0, 1, 2).float() / 255.0 - 0.45) / 0.225
    torch.testing.assert_close(T.augment_clip(clip, p, PRE), want, atol=1e-6, rtol=0)
    torch.testing.assert_close(T.augment_batch(clip[None], p, PRE)[0], want, atol=1e-6, rtol=0)
    p.flip[0] = True
    torch.testing.assert_close(T.augment_clip(clip.numpy(), p, PRE), want.flip(-1), atol=1e-6, rtol=0)


def test_interpolation_matrix_is_bilinear():
    rng = np.random.default_rng(8)
    for _ in range(20):
        full = int(rng.integers(5, 60))
        length = int(rng.integers(1, full + 1))
        offset = int(rng.integers(0, full - length + 1))
        size = int(rng.integers(1, 50))
        signal = torch.rand(full, dtype=torch.float64)
        m = T.interpolation_matrix(np.array([offset]), np.array([length]), size, full)[0]
        want = torch.nn.functional.interpolate(
            signal[offset : offset + length].view(1, 1, -1), size=size, mode="linear", align_corners=False
        ).view(-1)
        torch.testing.assert_close(torch.from_numpy(m) @ signal, want, atol=1e-9, rtol=0)


def test_eval_views_crops():
    assert T.eval_crop_boxes(128, 170, 1) == [(8, 29, 112, 112)]
    assert T.eval_crop_boxes(128, 170, 3) == [(8, 0, 112, 112), (8, 29, 112, 112), (8, 58, 112, 112)]
    assert T.eval_crop_boxes(170, 128, 3) == [(0, 8, 112, 112), (29, 8, 112, 112), (58, 8, 112, 112)]
    with pytest.raises(UserError):
        T.eval_crop_boxes(128, 170, 2)
    clip = random_clip(9, t=3, h=40, w=54)
    views = T.eval_views(clip, FT, crops=3)
    assert views.shape == (3, 3, 3, S, S) and views.dtype == torch.float32
    for v, (top, left, h, w) in zip(views, T.eval_crop_boxes(40, 54, 3)):
        for t in range(3):
            x = clip[t].permute(2, 0, 1).float() / 255.0
            x = TF.resized_crop(x, top, left, h, w, [S, S], InterpolationMode.BILINEAR, antialias=False)
            torch.testing.assert_close(v[:, t], TF.normalize(x, [0.45] * 3, [0.225] * 3), atol=1e-5, rtol=0)


def test_rejects_wrong_input():
    with pytest.raises(ValueError):
        T.ClipAugment(PRE)(torch.zeros(2, 8, 8, 3), np.random.default_rng(0))
