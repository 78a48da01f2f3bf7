"""HiCo's losses as pure functions of tensors (the official models/utils/losses.py::Loss_HiCo and
models/utils/contrastive_losses.py, re-derived).

Layout everywhere: the clips of one video are contiguous rows, ``[v_i, v_j, v_k]`` per video for HiCo and
``[a, b]`` per video for the SimCLR baseline.

- :func:`vcl_loss`: visual consistency learning, NT-Xent over the global batch with anchors v_i and v_j only.
- :func:`nt_xent`: the standard SimCLR loss (the baseline).
- :func:`tcl_loss`: topical consistency learning, focal BCE on phi's same-video logits (per-process batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_rows(n: int, clips: int, what: str) -> int:
    if clips < 2:
        raise ValueError(f"{what} needs at least 2 clips per video, got {clips}")
    if n == 0 or n % clips:
        raise ValueError(f"{what} got {n} rows, which is not a positive multiple of {clips} clips per video")
    return n // clips


def vcl_loss(z: Tensor, num_clips: int = 3, temperature: float = 0.1, local_slice: slice | None = None) -> Tensor:
    """VCL: -(1/2B) sum over anchors v_i, v_j of log(e_pos / (e_pos + sum over other videos' clips of e_neg)).

    ``z`` is (num_clips * B, D), L2-normalised, the clips of a video contiguous with v_i, v_j first. Each anchor's
    positive is the other of (v_i, v_j); its negatives are all clips of the other videos (their v_k included); the
    anchor itself and the rest of its own video (its v_k) are in neither numerator nor denominator, so the
    denominator has 1 + num_clips * (B - 1) terms. With ``num_clips=2`` this is exactly :func:`nt_xent`. With a single
    video the denominator is the positive alone and the loss is 0 (zero gradient).

    ``local_slice`` (rows of this process in a gathered ``z``): when given, gradient flows only through those rows,
    the others are detached; the value is unchanged. :func:`hico_bench.train.distributed.gather_with_grad` already
    returns such a ``z``; the argument makes the loss correct on a plain (gradient-free) all-gather as well.
    """
    n = z.shape[0]
    _check_rows(n, num_clips, "vcl_loss")
    if local_slice is not None:
        start, stop, _ = local_slice.indices(n)
        z = torch.cat([z[:start].detach(), z[start:stop], z[stop:].detach()])
    rows = torch.arange(n, device=z.device)
    video = rows // num_clips
    slot = rows % num_clips
    anchors = rows[slot < 2]  # v_i and v_j of every video
    positives = anchors - slot[anchors] + (1 - slot[anchors])  # v_i <-> v_j
    logits = (z[anchors] @ z.T) / temperature  # (2B, n)
    allowed = video[None, :] != video[anchors][:, None]
    allowed[torch.arange(anchors.numel(), device=z.device), positives] = True
    log_denominator = torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), dim=1)
    pos = logits[torch.arange(anchors.numel(), device=z.device), positives]
    return (log_denominator - pos).mean()


def nt_xent(z: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR's NT-Xent on ``z`` (2B, D), L2-normalised, ordered [a0, b0, a1, b1, ...].

    Every row is an anchor; its positive is the other clip of its video and its denominator holds every other row
    (positive + 2(B - 1) clips of other videos). The loss is the mean over the 2B anchors.
    """
    n = z.shape[0]
    _check_rows(n, 2, "nt_xent")
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.arange(n, device=z.device) ^ 1  # 0 <-> 1, 2 <-> 3, ...
    return F.cross_entropy(logits, target)


def tcl_loss(logits: Tensor, clips_per_video: int = 3, gamma: float = 0.5, eps: float = 1e-5) -> Tensor:
    """TCL: -mean_pos[(1-p)^gamma log(p+eps)] - mean_neg[p^gamma log(1-p+eps)], with p = sigmoid(logits).

    ``logits`` is phi's (n, n, 2) output for the clips of this process's batch (n = clips_per_video * videos, clips of
    a video contiguous). Positives: both channels of every pair a != b of the same video; negatives: both channels of
    every pair from different videos; the diagonal a == b is left out. Each mean is over its own entries, which
    balances the two classes; ``gamma=0`` gives class-balanced BCE.

    A batch with a single video has no negatives; rather than silently training phi to answer "same video" always,
    this raises ValueError. ``1 - p`` is computed as sigmoid(-logits), which equals it but stays exact where
    ``1 - sigmoid(x)`` rounds to 0; the focal factors are clamped at 1e-30 from below so that a saturated logit gives a
    zero, not NaN, gradient (a departure only where the float formula has no finite gradient).
    """
    if logits.dim() != 3 or logits.shape[0] != logits.shape[1] or logits.shape[2] != 2:
        raise ValueError(f"tcl_loss expects logits of shape (n, n, 2), got {tuple(logits.shape)}")
    videos = _check_rows(logits.shape[0], clips_per_video, "tcl_loss")
    if videos < 2:
        raise ValueError("tcl_loss needs at least 2 videos in the batch: with one video there are no negative pairs")
    n = logits.shape[0]
    video = torch.arange(n, device=logits.device) // clips_per_video
    same = video[:, None] == video[None, :]
    pos_mask = same & ~torch.eye(n, dtype=torch.bool, device=logits.device)
    neg_mask = ~same
    p = torch.sigmoid(logits)
    q = torch.sigmoid(-logits)  # 1 - p
    pos_term = torch.log(p + eps)
    neg_term = torch.log(q + eps)
    if gamma != 0:
        pos_term = q.clamp_min(1e-30).pow(gamma) * pos_term
        neg_term = p.clamp_min(1e-30).pow(gamma) * neg_term
    return -pos_term[pos_mask].mean() - neg_term[neg_mask].mean()
