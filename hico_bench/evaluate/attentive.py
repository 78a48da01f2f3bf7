"""Attentive probe: a small cross-attention classifier trained on the frozen backbone's spatio-temporal tokens.

The head follows the attentive-probe protocol of V-JEPA (facebookresearch/jepa, ``AttentiveClassifier``): one learned
query token cross-attends over the layer-normalised tokens (multi-head attention with a residual on the query; see
:class:`AttentiveHead` for how it is computed), an optional MLP block (``query + MLP(LayerNorm(query))``, hidden
width ``mlp_ratio`` x channels, GELU; ``mlp_ratio`` 0 leaves it out), then a linear classifier on the query. The
tokens are the backbone's last feature map before pooling, ``backbone.features(clip)`` (B, C, T', H', W'), flattened
to T'H'W' tokens of C channels (no positional embedding: a CNN's features carry their position only implicitly).

Protocol:

* Frozen pass, once per job: ``views`` evenly spaced centre-cropped clips per video (the clips the ``features`` stage
  averages), through the backbone in eval mode without gradients; the tokens are kept in memory (float16 when
  ``half_tokens``; the head computes in float32).
* Training examples are single clips: every view of a train video is one example with the video's label. A video's
  score is the sum of its views' softmax scores (HiCo's multi-view test, as in ``ft`` / ``lft``).
* AdamW (decoupled weight decay on weight matrices and the query; none on biases and LayerNorm), cosine decay from
  the lr to 0 over ``epochs`` without warm-up (V-JEPA's frozen evaluation: lr 0.001, weight decay 0.01, 20 epochs),
  minibatches of ``batch_size`` clips in a seeded random order (the last one may be smaller).
* The lr is chosen among ``lrs`` on a held-out part of the train split only: whole source groups for UCF101-style
  ids (:func:`hico_bench.evaluate.probe.source_groups`), else class-stratified, exactly as the linear probe holds
  out. The best held-out top-1 wins, ties go to the lower held-out cross-entropy (of the views' mean softmax), then
  to the earlier lr of the list. The head is then refit on the whole train split with that lr and scored once on
  the test split.
* Every head is initialised from ``seed`` (each lr of the sweep starts from the same weights) and visits the
  examples in the same seeded order, so on a CPU a seed gives bit-identical numbers.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hico_bench.errors import UserError
from hico_bench.evaluate.probe import (check_test_classes, holdout_split, labelled_splits, source_groups,
                                       topk_accuracy)


class AttentiveHead(nn.Module):
    """Tokens (B, L, C) -> logits (B, num_classes): a learned query cross-attends over the tokens, then a linear layer.

    The attention is standard multi-head cross-attention (query, key, value and output projections; ``heads`` heads
    of C / heads channels, scaled dot products, softmax over the tokens) with a single query, computed in an
    equivalent cheaper order: each head's query is folded into the key projection, and each head's value projection
    is applied to its attention-weighted token average instead of to every token (the weights sum to 1), C^2
    instead of L C^2 multiply-adds per clip. The key projection has no bias: with one query it would add the same
    logit to every token, which the softmax cancels.
    """

    def __init__(self, dim: int, num_classes: int, heads: int = 16, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise UserError(f"attentive.heads = {heads} does not divide the backbone's {dim} feature channels; "
                            f"choose a divisor of {dim}.")
        self.heads = heads
        self.query = nn.Parameter(torch.randn(dim) * 0.02)
        self.norm_tokens = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        hidden = int(round(dim * mlp_ratio))
        self.mlp = (nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
                    if hidden > 0 else None)
        self.linear = nn.Linear(dim, num_classes)

    def attention(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, heads, L): each head's attention weights of the query over the layer-normalised tokens."""
        return self._weights(self.norm_tokens(tokens))

    def _weights(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        d = c // self.heads
        q = self.q(self.query).view(self.heads, d) * d ** -0.5
        query_keys = torch.einsum("hdc,hd->ch", self.k.weight.view(self.heads, d, c), q)  # (C, heads)
        return (x @ query_keys).softmax(dim=1).transpose(1, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, _, c = tokens.shape
        x = self.norm_tokens(tokens)
        pooled = self._weights(x) @ x  # (B, heads, C): each head's weighted token average
        values = torch.einsum("bhc,hdc->bhd", pooled, self.v.weight.view(self.heads, c // self.heads, c))
        z = self.query + self.proj(values.reshape(b, c) + self.v.bias)
        if self.mlp is not None:
            z = z + self.mlp(z)
        return self.linear(z)


def _optimizer(head: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay = [p for p in head.parameters() if p.dim() >= 2]
    no_decay = [p for p in head.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, fused=True)


def train_head(
    tokens: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    lr: float,
    s: dict[str, Any],
    device: torch.device | str = "cpu",
) -> AttentiveHead:
    """Train a fresh :class:`AttentiveHead` on clips ``tokens`` (N, L, C) with ``labels`` (N,); ``s`` is the task's
    resolved settings (epochs, batch_size, weight_decay, heads, mlp_ratio, seed)."""
    from hico_bench.train.optim import WarmupCosine, set_lr

    torch.manual_seed(s["seed"])
    head = AttentiveHead(tokens.shape[-1], num_classes, s["heads"], s["mlp_ratio"]).to(device)
    optimizer = _optimizer(head, lr, s["weight_decay"])
    schedule = WarmupCosine(lr, s["epochs"])
    generator = torch.Generator().manual_seed(s["seed"])
    n = len(tokens)
    batch = min(s["batch_size"], n)
    iters = math.ceil(n / batch)
    head.train()
    for epoch in range(s["epochs"]):
        order = torch.randperm(n, generator=generator)
        for it in range(iters):
            idx = order[it * batch : (it + 1) * batch]
            set_lr(optimizer, schedule.lr_at(epoch + it / iters))
            logits = head(tokens[idx].to(device, torch.float32))
            loss = F.cross_entropy(logits, labels[idx].to(device))
            if not torch.isfinite(loss):
                raise UserError(f"the attentive probe's loss became {loss.item()} at lr {lr}, epoch {epoch}; "
                                "lower attentive.lrs.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval()


@torch.no_grad()
def video_probabilities(head: AttentiveHead, tokens: torch.Tensor, device: torch.device | str = "cpu",
                        batch_size: int = 256) -> np.ndarray:
    """(N, V, num_classes) float64 softmax scores of every view of videos ``tokens`` (N, V, L, C)."""
    n, v = tokens.shape[:2]
    flat = tokens.flatten(0, 1)
    out = []
    for lo in range(0, len(flat), batch_size):
        logits = head(flat[lo : lo + batch_size].to(device, torch.float32))
        out.append(F.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out).reshape(n, v, -1)


def _clips(tokens: torch.Tensor, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Videos (N, V, L, C) and their labels -> clips (N V, L, C) and one label per clip (views of a video adjacent)."""
    v = tokens.shape[1]
    return tokens.flatten(0, 1), torch.as_tensor(np.repeat(np.asarray(labels, dtype=np.int64), v))


def choose_lr(train_tokens: torch.Tensor, train_y: np.ndarray, num_classes: int, s: dict[str, Any],
              groups: np.ndarray | None = None,
              device: torch.device | str = "cpu") -> tuple[float, dict[str, float], dict[str, float]]:
    """The lr of ``s["lrs"]`` chosen on held-out train videos, the held-out top-1 (percent) and cross-entropy per lr.

    Only the train split is seen here: fit and held-out videos both come from ``train_tokens`` (N, V, L, C).
    """
    fit, held = (np.sort(i) for i in holdout_split(train_y, s["holdout"], s["seed"], groups))
    fit_x, fit_y = _clips(train_tokens[torch.as_tensor(fit)], train_y[fit])
    held_x, held_y = train_tokens[torch.as_tensor(held)], np.asarray(train_y)[held]
    accuracy: dict[str, float] = {}
    loss: dict[str, float] = {}
    for lr in s["lrs"]:
        probs = video_probabilities(train_head(fit_x, fit_y, num_classes, lr, s, device), held_x, device)
        accuracy[str(lr)] = topk_accuracy(probs.sum(1), held_y, 1)
        mean = probs.mean(1)[np.arange(len(held_y)), held_y]
        loss[str(lr)] = float(-np.mean(np.log(np.maximum(mean, 1e-300))))
    best = max(s["lrs"], key=lambda lr: (accuracy[str(lr)], -loss[str(lr)]))  # exact ties: the earlier lr
    return best, accuracy, loss


def attentive_probe(
    train_tokens: torch.Tensor,
    train_y: Sequence[int],
    test_tokens: torch.Tensor,
    test_y: Sequence[int],
    settings: dict[str, Any] | None = None,
    groups: np.ndarray | None = None,
    where: str = "attentive probe",
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Choose the lr on held-out train videos, refit on the whole train split and score the test split.

    ``train_tokens`` / ``test_tokens``: (N, V, L, C), V views of L tokens of C channels per video. ``settings``: the
    task's (missing keys take their defaults). Returns top1 / top5 (percent, views' softmax summed), the chosen lr,
    and the held-out top-1 and cross-entropy per lr.
    """
    from hico_bench.evaluate.tasks import TASKS

    s = TASKS["attentive"].settings.resolve(settings)
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    check_test_classes(train_y, test_y, where)
    num_classes = int(train_y.max()) + 1  # every test class occurs in train (checked above)
    lr, accuracy, loss = choose_lr(train_tokens, train_y, num_classes, s, groups, device)
    head = train_head(*_clips(train_tokens, train_y), num_classes, lr, s, device)
    scores = video_probabilities(head, test_tokens, device).sum(1)
    return {"top1": topk_accuracy(scores, test_y, 1), "top5": topk_accuracy(scores, test_y, 5), "lr": lr,
            "holdout_accuracy": accuracy, "holdout_loss": loss}


@torch.no_grad()
def video_tokens(backbone: nn.Module, manifest, model: dict[str, Any], views: int, batch_size: int = 8,
                 num_workers: int = 0, cache_frames: bool = False, half: bool = True, progress_bar: bool = True,
                 desc: str = "tokens") -> torch.Tensor:
    """(N, views, T'H'W', C) on the CPU: the tokens of ``views`` evenly spaced centre-cropped clips per video (the
    clips :func:`hico_bench.evaluate.features.video_features` averages), float16 when ``half``."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hico_bench.evaluate.features import frozen_views

    dataset = frozen_views(manifest, model, views, cache_frames)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = next(backbone.parameters()).device
    out = None
    for clips, _label, index in tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True, disable=not progress_bar):
        b, v = clips.shape[:2]
        fmap = backbone.features(clips.flatten(0, 1).to(device)).float()  # (b v, C, T', H', W')
        tokens = fmap.flatten(2).transpose(1, 2).reshape(b, v, -1, fmap.shape[1]).cpu()
        if out is None:
            out = torch.empty((len(dataset), *tokens.shape[1:]), dtype=torch.float16 if half else torch.float32)
        out[index] = tokens.to(out.dtype)
    return out


def run_attentive(checkpoint: str | None, manifest, model: dict[str, Any], settings: dict[str, Any],
                  where: str = "", *, checkpoint_format: str = "auto") -> dict[str, Any]:
    """The ``attentive`` task: one frozen pass over the dataset's train and test videos, then the probe."""
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.evaluate.tasks import TASKS
    from hico_bench.settings import MODEL

    s = TASKS["attentive"].settings.resolve(settings)
    model = MODEL.resolve(model)
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    t0 = time.perf_counter()
    train, test, train_y, test_y = labelled_splits(manifest, where)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format).to(device).eval()
    backbone.requires_grad_(False)
    tokens = {name: video_tokens(backbone, part, model, s["views"], s["extract_batch_size"], s["num_workers"],
                                 s["cache_frames"], s["half_tokens"], s["progress_bar"], desc=f"tokens {name}")
              for name, part in (("train", train), ("test", test))}
    extract_seconds = time.perf_counter() - t0
    del backbone
    groups = source_groups(train["video_id"].astype(str).tolist())
    result = attentive_probe(tokens["train"], train_y, tokens["test"], test_y, s, groups, where, device)
    return {
        "metrics": {"top1": result["top1"], "top5": result["top5"]},
        "protocol": {
            "head": f"1 learned query, {s['heads']}-head cross-attention over LayerNorm(tokens), "
                    + (f"MLP x{s['mlp_ratio']}, " if s["mlp_ratio"] > 0 else "") + "linear classifier",
            "tokens": f"backbone.features: {tuple(tokens['train'].shape[2:])} (T'H'W', C) per clip",
            "views": s["views"], "examples": "one per train clip; test: softmax summed over the views",
            "optimizer": "AdamW, cosine to 0, no warm-up", "epochs": s["epochs"], "batch_size": s["batch_size"],
            "weight_decay": s["weight_decay"], "lrs": list(s["lrs"]), "lr": result["lr"],
            "holdout_accuracy_by_lr": {k: round(v, 2) for k, v in result["holdout_accuracy"].items()},
            "holdout_loss_by_lr": {k: round(v, 4) for k, v in result["holdout_loss"].items()},
            "holdout": "whole source groups" if groups is not None else "class-stratified",
            "backbone": "frozen, eval mode", "extract_seconds": round(extract_seconds, 2),
        },
    }
