"""Clip-consistent augmentations, on uint8 clips (T, H, W, 3) or batches (B, T, H, W, 3).

Every random parameter (crop box, flip, colour factors and their order, grayscale) is drawn once per clip and applied
to all of its frames; clips are independent. Parameters are drawn by :func:`sample_params` from a numpy
``Generator`` into an :class:`AugParams` record, so the same parameters can be applied by

* :func:`augment_clip`: one clip; the crop is sliced while still uint8, only the crop is converted to float (once),
  then resized, jittered, flipped and normalised into the (3, T, S, S) output with whole-clip tensor ops (no
  per-frame Python loop);
* :func:`augment_batch`: a batch (CPU or GPU) with per-clip parameters applied by batched ops: crop + resize + flip
  as two per-clip interpolation matrices (exactly PyTorch's bilinear, ``align_corners=False``, no antialias), the
  colour ops grouped by clip. It gives the same numbers as :func:`augment_clip` (to float rounding).

The two recipes (:data:`PRETRAIN` and :data:`FINETUNE`), as the official HiCo code sets them (the ``AUGMENTATION``
keys of ``configs/pool/run/training/simclr.yaml`` and ``finetune.yaml``, applied by
``sslgenerators/contrastive_learning/contrastive_generator.py`` and ``datasets/base/ucf101.py``):

* pre-training: RandomResizedCrop to S (area [168^2, 224^2] / (256 * 340) = [0.3243, 0.5765], ratio 1), with
  p = 0.8 brightness / contrast / saturation 0.8 (factors in [0.2, 1.8]) and hue 0.2 in random order, grayscale
  p = 0.2 after the colour ops, normalise (mean 0.45, std 0.225), horizontal flip p = 0.5. The official recipe also
  lists a Gaussian blur (p = 0.5) with ``kernel_size=1``, which is the identity, so it is not implemented.
* fine-tuning: RandomResizedCrop (same area, ratio [0.857, 1.167]), flip p = 0.5, grayscale p = 0.3 first, then
  the colour ops always (0.5, 0.5, 0.5, hue 0.25) in random order, normalise.
* test: :func:`eval_views`, a centre crop of side ``0.875 * short side`` (or three crops along the long side),
  resized to S, normalised; :func:`eval_snippets` gives the centre views of many (overlapping) snippets of one block
  of frames, transforming each frame once.

The colour ops follow torchvision's tensor definitions (luma 0.2989 / 0.587 / 0.114, contrast around the mean luma of
each frame, hue through HSV, results clamped to [0, 1] after each op); the official code uses luma 0.299 in its
grayscale, a difference below 1e-4.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hico_bench.errors import UserError

BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
_LUMA = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentSpec:
    """One augmentation recipe; see :data:`PRETRAIN` and :data:`FINETUNE`."""

    size: int = 112
    scale: tuple[float, float] = (168**2 / (256 * 340), 224**2 / (256 * 340))
    ratio: tuple[float, float] = (1.0, 1.0)
    colour_p: float = 0.8  # probability that the colour ops run at all
    brightness: float = 0.8  # factor uniform in [max(0, 1 - b), 1 + b]
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2  # shift uniform in [-hue, hue]
    shuffle: bool = True  # colour ops in a random order
    gray_p: float = 0.2
    gray_first: bool = False  # grayscale before (fine-tuning) or after (pre-training) the colour ops
    flip_p: float = 0.5
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)


PRETRAIN = AugmentSpec()
FINETUNE = AugmentSpec(
    ratio=(0.857, 1.167),
    colour_p=1.0,
    brightness=0.5,
    contrast=0.5,
    saturation=0.5,
    hue=0.25,
    gray_p=0.3,
    gray_first=True,
)


@dataclass
class AugParams:
    """Per-clip parameters for ``n`` clips (numpy arrays, first axis = clip)."""

    box: np.ndarray  # (n, 4) int64: top, left, height, width of the crop in the input frame
    flip: np.ndarray  # (n,) bool
    colour: np.ndarray  # (n,) bool: the colour ops run
    factors: np.ndarray  # (n, 4) float64: brightness, contrast, saturation, hue
    order: np.ndarray  # (n, 4) int64: a permutation of BRIGHTNESS, CONTRAST, SATURATION, HUE
    gray: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.box)

    def __getitem__(self, k) -> "AugParams":
        """The parameters of clip(s) ``k`` (an int keeps a length-1 record)."""
        if isinstance(k, (int, np.integer)):
            k = slice(int(k), int(k) + 1)
        return AugParams(self.box[k], self.flip[k], self.colour[k], self.factors[k], self.order[k], self.gray[k])


def random_resized_crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a RandomResizedCrop: torchvision's rule (10 tries, then a centre crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_params(spec: AugmentSpec, n: int, height: int, width: int, rng: np.random.Generator) -> AugParams:
    """Independent parameters for ``n`` clips of ``height`` x ``width`` frames."""
    box = np.zeros((n, 4), dtype=np.int64)
    flip = np.zeros(n, dtype=bool)
    colour = np.zeros(n, dtype=bool)
    factors = np.zeros((n, 4), dtype=np.float64)
    order = np.tile(np.arange(4, dtype=np.int64), (n, 1))
    gray = np.zeros(n, dtype=bool)
    ranges = [(max(0.0, 1.0 - v), 1.0 + v) for v in (spec.brightness, spec.contrast, spec.saturation)]
    ranges.append((-spec.hue, spec.hue))
    for k in range(n):
        box[k] = random_resized_crop_box(height, width, spec.scale, spec.ratio, rng)
        colour[k] = rng.random() < spec.colour_p
        factors[k] = [rng.uniform(lo, hi) for lo, hi in ranges]
        if spec.shuffle:
            order[k] = rng.permutation(4)
        gray[k] = rng.random() < spec.gray_p
        flip[k] = rng.random() < spec.flip_p
    return AugParams(box, flip, colour, factors, order, gray)


# --- colour ops on float clips (N, T, 3, H, W) in [0, 1], one factor per clip -----------------------------------


def _per_clip(f: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    f = torch.as_tensor(f, dtype=x.dtype, device=x.device)
    return f.reshape(-1, *([1] * (x.dim() - 1)))


# The ops below keep the number of passes over the clip small (fused multiply-adds, in-place steps on their own
# temporaries, no boolean tensors: on CPU, torch.where and bool masks cost 4-30x an arithmetic pass).


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma (N, T, 1, H, W) of RGB clips (N, T, 3, H, W)."""
    r, g, b = x.unbind(dim=-3)
    return torch.add(r * _LUMA[0], g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(-3)


def adjust_brightness(x: torch.Tensor, f) -> torch.Tensor:
    return (x * _per_clip(f, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, f) -> torch.Tensor:
    f = _per_clip(f, x)
    mean = grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as torchvision per image
    return torch.addcmul((1.0 - f) * mean, x, f).clamp_(0.0, 1.0)  # f * x + (1 - f) * mean


def adjust_saturation(x: torch.Tensor, f) -> torch.Tensor:
    f = _per_clip(f, x)
    return torch.addcmul(grayscale(x).mul_(1.0 - f), x, f).clamp_(0.0, 1.0)  # f * x + (1 - f) * gray


def adjust_hue(x: torch.Tensor, f) -> torch.Tensor:
    """Hue rotated by ``f`` turns, as torchvision's RGB -> HSV -> RGB, without building the HSV planes.

    A hue rotation keeps each pixel's max (V) and min channel; with ``H`` the new hue in [0, 6] the channels are
    ``min + (max - min) * w`` with ``w_r = |H - 3| - 1``, ``w_g = 2 - |H - 2|``, ``w_b = 2 - |H - 4|`` clamped to
    [0, 1]: the same piecewise-linear values as HSV -> RGB's sector table (to float rounding), in about a fifth of
    the time of building the HSV planes and converting back.
    """
    r, g, b = x.unbind(dim=-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    safe = delta.clamp_min(1e-12)  # grey pixels (delta 0): any hue, they stay grey
    # Hue in sixths, from the channel that holds the max (r before g before b on ties), as torchvision: selected
    # with float 0/1 masks and lerp (exact at weights 0 and 1).
    is_r = torch.eq(maxc, r, out=torch.empty_like(maxc))
    is_g = torch.eq(maxc, g, out=torch.empty_like(maxc))
    h6 = torch.div(r - g, safe).add_(4.0)
    h6.lerp_(torch.div(b - r, safe).add_(2.0), is_g).lerp_(torch.div(g - b, safe), is_r)
    h = h6.div_(6.0).add_(_per_clip(f, h6))
    hue = h.sub_(torch.floor(h)).mul_(6.0)
    out = torch.empty_like(x)
    for c, centre in enumerate((3.0, 2.0, 4.0)):
        w = (hue - centre).abs_()
        w = w.sub_(1.0) if c == 0 else w.neg_().add_(2.0)
        torch.addcmul(minc, delta, w.clamp_(0.0, 1.0), out=out.select(-3, c))
    return out


_OPS = {BRIGHTNESS: adjust_brightness, CONTRAST: adjust_contrast, SATURATION: adjust_saturation, HUE: adjust_hue}


def _to_gray3(x: torch.Tensor) -> torch.Tensor:
    return grayscale(x).expand_as(x).contiguous()


def _gray_where(x: torch.Tensor, gray: np.ndarray) -> torch.Tensor:
    """The clips flagged in ``gray`` turned to 3-channel grayscale."""
    if gray.all():
        return _to_gray3(x)
    if not gray.any():
        return x
    idx = torch.as_tensor(np.flatnonzero(gray), device=x.device)
    return x.index_copy(0, idx, _to_gray3(x[idx]))


def _apply_colour(x: torch.Tensor, params: AugParams, spec: AugmentSpec) -> torch.Tensor:
    """Grayscale and colour ops on float clips (N, T, 3, H, W), grouped by op at each of the four steps."""
    dev = x.device
    if spec.gray_first:
        x = _gray_where(x, params.gray)
    factors = torch.as_tensor(params.factors, dtype=x.dtype, device=dev)
    for step in range(4):
        for op, fn in _OPS.items():
            members = np.flatnonzero(params.colour & (params.order[:, step] == op))
            if len(members) == 0:
                continue
            if len(members) == len(x):
                x = fn(x, factors[:, op])
            else:
                idx = torch.as_tensor(members, device=dev)
                x = x.index_copy(0, idx, fn(x[idx], factors[idx, op]))
    if not spec.gray_first:
        x = _gray_where(x, params.gray)
    return x


def _normalise(x: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """(x - mean) / std per channel on (N, T, 3, S, S)."""
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 1, 3, 1, 1)
    return (x - mean).div_(std)


def _as_uint8_tensor(clip) -> torch.Tensor:
    if isinstance(clip, np.ndarray):
        clip = torch.from_numpy(clip)
    if clip.dtype != torch.uint8 or clip.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (..., H, W, 3), got {tuple(clip.shape)} {clip.dtype}")
    return clip


def _crop_resize(clip: torch.Tensor, box, size: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, size, size) in [0, 1]: slice the crop, convert it once, resize."""
    top, left, h, w = (int(v) for v in box)
    crop = clip[:, top : top + h, left : left + w, :].permute(0, 3, 1, 2).float().div_(255.0)
    if (h, w) == (size, size):
        return crop.contiguous()
    # Resized in the frames' channels-last layout (the faster kernel), then made contiguous: the colour ops work on
    # whole channel planes, about twice as fast as on interleaved channels.
    out = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return out.contiguous()


def augment_clip(clip, params: AugParams, spec: AugmentSpec, out: torch.Tensor | None = None) -> torch.Tensor:
    """One clip uint8 (T, H, W, 3) with one set of parameters -> float (3, T, S, S), written to ``out`` if given."""
    clip = _as_uint8_tensor(clip)
    if len(params) != 1:
        raise ValueError(f"augment_clip takes the parameters of one clip, got {len(params)}")
    x = _crop_resize(clip, params.box[0], spec.size).unsqueeze(0)  # (1, T, 3, S, S)
    x = _apply_colour(x, params, spec)[0]
    if params.flip[0]:
        x = x.flip(-1)  # before normalising: both are per pixel, so the order does not change a value
    if out is None:
        out = torch.empty((3, x.shape[0], *x.shape[2:]), dtype=x.dtype, device=x.device)
    return _normalise_into(x, spec, out)  # straight into the (3, T, S, S) layout


def interpolation_matrix(
    offset: np.ndarray, length: np.ndarray, size: int, full: int, flip: np.ndarray | None = None
) -> np.ndarray:
    """(n, size, full) matrices M with ``M[k] @ signal`` = bilinear resize of ``signal[offset:offset+length]``.

    Same rule as ``F.interpolate(mode="bilinear", align_corners=False)``: source ``(d + 0.5) * length / size - 0.5``
    clamped at 0, neighbours clamped to the crop. ``flip`` reverses the output rows (a horizontal flip).
    """
    n = len(offset)
    dst = np.arange(size, dtype=np.float64)
    scale = np.asarray(length, dtype=np.float64)[:, None] / size
    src = np.maximum((dst[None, :] + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), np.asarray(length)[:, None] - 1)
    i1 = np.minimum(i0 + 1, np.asarray(length)[:, None] - 1)
    lam = src - i0
    m = np.zeros((n, size, full), dtype=np.float64)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, size))
    cols = np.broadcast_to(dst.astype(np.int64)[None, :], (n, size))
    base = np.asarray(offset)[:, None]
    np.add.at(m, (rows, cols, base + i0), 1.0 - lam)
    np.add.at(m, (rows, cols, base + i1), lam)
    if flip is not None:
        m[flip] = m[flip, ::-1, :]
    return m


def augment_batch(x, params: AugParams, spec: AugmentSpec) -> torch.Tensor:
    """A batch uint8 (B, T, H, W, 3) (any device) with per-clip parameters -> float (B, 3, T, S, S)."""
    x = _as_uint8_tensor(x)
    if x.dim() != 5 or len(params) != x.shape[0]:
        raise ValueError(f"expected (B, T, H, W, 3) and B parameter sets, got {tuple(x.shape)} and {len(params)}")
    _, _, height, width, _ = x.shape
    s = spec.size
    ry = interpolation_matrix(params.box[:, 0], params.box[:, 2], s, height)
    rx = interpolation_matrix(params.box[:, 1], params.box[:, 3], s, width, flip=params.flip)
    ry = torch.as_tensor(ry, dtype=torch.float32, device=x.device)
    rx = torch.as_tensor(rx, dtype=torch.float32, device=x.device)
    xf = x.float().div_(255.0)
    rows = torch.einsum("bih,bthwc->btiwc", ry, xf)  # (B, T, S, W, 3)
    y = torch.einsum("bjw,btiwc->btcij", rx, rows).contiguous()  # (B, T, 3, S, S)
    y = _normalise(_apply_colour(y, params, spec), spec)
    return y.permute(0, 2, 1, 3, 4).contiguous()


class ClipAugment:
    """Callable ``(clip uint8 (T, H, W, 3), rng) -> float (3, T, S, S)``: draw parameters, then :func:`augment_clip`."""

    def __init__(self, spec: AugmentSpec = PRETRAIN):
        self.spec = spec

    def __call__(self, clip, rng: np.random.Generator, out: torch.Tensor | None = None) -> torch.Tensor:
        clip = _as_uint8_tensor(clip)
        params = sample_params(self.spec, 1, clip.shape[1], clip.shape[2], rng)
        return augment_clip(clip, params, self.spec, out=out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec})"


class PretrainAugment(ClipAugment):
    """The pre-training recipe (:data:`PRETRAIN`) at output side ``size``."""

    def __init__(self, size: int = 112):
        super().__init__(dataclasses.replace(PRETRAIN, size=int(size)))


def eval_crop_boxes(height: int, width: int, crops: int, scale: float = 224 / 256) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) of the test crops: side ``int(scale * short side)``; 1 = centre, 3 = start/centre/end of
    the long side (left/centre/right for landscape frames), centred on the short side."""
    if crops not in (1, 3):
        raise UserError(f"test crops must be 1 or 3, got {crops}.")
    side = int(min(height, width) * scale)
    half = side // 2
    top, left = height // 2 - half, width // 2 - half
    if crops == 1:
        return [(top, left, side, side)]
    if width >= height:
        return [(top, 0, side, side), (top, left, side, side), (top, width - side, side, side)]
    return [(0, left, side, side), (top, left, side, side), (height - side, left, side, side)]


def _normalise_into(x: torch.Tensor, spec: AugmentSpec, out: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std of frames (..., T, 3, S, S) written to ``out`` (..., 3, T, S, S): one pass, no transpose."""
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
    torch.sub(x.transpose(-4, -3), mean, out=out)
    return out.div_(std)


def eval_views(clip, spec: AugmentSpec = FINETUNE, crops: int = 1, scale: float = 224 / 256) -> torch.Tensor:
    """Test views of one clip uint8 (T, H, W, 3) -> float (crops, 3, T, S, S): crop, resize, normalise."""
    clip = _as_uint8_tensor(clip)
    boxes = eval_crop_boxes(clip.shape[1], clip.shape[2], crops, scale)
    out = torch.empty((len(boxes), 3, clip.shape[0], spec.size, spec.size), device=clip.device)
    for box, view in zip(boxes, out):
        _normalise_into(_crop_resize(clip, box, spec.size), spec, view)
    return out


def eval_snippets(frames, starts, length: int, spec: AugmentSpec = FINETUNE, scale: float = 224 / 256,
                  chunk_frames: int = 64) -> torch.Tensor:
    """Centre-crop test views of many snippets of one block of frames -> float (len(starts), 3, length, S, S).

    Snippet ``b`` is ``frames[starts[b]:starts[b] + length]`` (uint8 (F, H, W, 3)). Snippets are taken in groups
    spanning about ``chunk_frames`` frames: each frame of a group is cropped and resized once however many of its
    snippets share it, then normalised straight into the output (small temporaries, one large allocation). Equal to
    ``eval_views(snippet, spec, 1, scale)[0]`` for every snippet.
    """
    frames = _as_uint8_tensor(frames)
    starts = [int(v) for v in np.asarray(starts, dtype=np.int64).reshape(-1)]
    box = eval_crop_boxes(frames.shape[1], frames.shape[2], 1, scale)[0]
    out = torch.empty((len(starts), 3, length, spec.size, spec.size), device=frames.device)
    b = 0
    while b < len(starts):
        lo = hi = starts[b]
        group = []
        while b < len(starts) and (not group or max(hi, starts[b] + length) - min(lo, starts[b]) <= chunk_frames):
            lo, hi = min(lo, starts[b]), max(hi, starts[b] + length)
            group.append(b)
            b += 1
        x = _crop_resize(frames[lo:hi], box, spec.size)  # (hi - lo, 3, S, S)
        for k in group:
            _normalise_into(x[starts[k] - lo:starts[k] - lo + length], spec, out[k])
    return out
