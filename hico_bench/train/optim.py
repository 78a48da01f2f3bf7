"""Optimisers, parameter groups, the linear-scaling rule and the warm-up + cosine schedule (the official
models/utils/lars.py, optimizer.py and lr_policy.py, re-derived).

Parameter groups (:func:`param_groups`):

- ``norm``: parameters of normalisation layers, found by the spec's rule (the full name contains ``bn`` or ``norm``)
  and also by module type (BatchNorm / SyncBatchNorm / InstanceNorm / GroupNorm / LayerNorm / RMSNorm), because
  torchvision's video ResNets name their BatchNorms by position (``stem.1``, ``layer1.0.conv1.1``) and the name rule
  alone would decay them. Weight decay 0; for LARS, ``lars_exclude = bn_lars_exclude``.
- ``no_decay``: other biases and 1-d parameters. Weight decay 0 (the issue's "except BatchNorm and biases"); the
  official code decays them (1e-6), which ``decay_biases=True`` reproduces. They keep the LARS trust ratio.
- ``decay``: everything else, with ``weight_decay`` and the trust ratio.

LARS: :class:`Lars` is written here rather than taken from ``timm.optim.Lars`` because timm differs from the spec in
three ways: (1) timm multiplies by lr after the momentum buffer (``buf = m buf + r g``, ``w -= lr (...)``) whereas the
spec folds lr in first (``d = (g + wd w) local_lr lr``, then momentum), which differs whenever lr changes between
steps, i.e. every iteration under warm-up/cosine; (2) timm uses a trust ratio of 1 when ``||w|| = 0`` or
``||g|| = 0``, whereas the spec's formula gives 0 for a zero weight (the quirk below); (3) timm adds eps 1e-8 to the
denominator and does not adapt at all when the group's weight decay is 0 unless ``always_adapt``.

Quirk kept behind its option: with ``bn_lars_exclude=False`` (the official short HACS runs) BatchNorm parameters
get the trust ratio, so zero-initialised BN biases have local_lr = 0 and never move. The default
``bn_lars_exclude=True`` (the long runs) lets them train.

Schedule: :class:`WarmupCosine` is written here because ``timm.scheduler.CosineLRScheduler`` warms up linearly to
``base_lr`` (then jumps down to the cosine value, or with ``warmup_prefix`` shifts the cosine), whereas the spec warms
up to the cosine value at ``warmup_epochs`` and keeps the cosine of the absolute epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from hico_bench.errors import choice_error

OPTIMIZERS = ("lars", "adam", "sgd")

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)


class Lars(Optimizer):
    """LARS as the official models/utils/lars.py computes it, per parameter tensor w with gradient g:

    ``local_lr = trust_coefficient * ||w|| / (||g|| + wd * ||w||)`` (1 when the denominator is 0, and 1 for groups
    with ``lars_exclude``); ``d = (g + wd * w) * local_lr * lr``; then momentum ``buf = m * buf + (1 - dampening) * d``
    (``buf = d`` on the first step), ``d = d + m * buf`` with Nesterov else ``d = buf``; ``w -= d``.
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, trust_coefficient: float = 0.001,
                 lars_exclude: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coefficient < 0:
            raise ValueError("Lars needs non-negative lr, momentum, weight_decay and trust_coefficient")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, trust_coefficient=trust_coefficient, lars_exclude=lars_exclude)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One LARS update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, m = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["lars_exclude"]:
                    scale: Tensor | float = lr
                else:
                    w_norm = torch.linalg.vector_norm(p)
                    denom = torch.linalg.vector_norm(g) + wd * w_norm
                    local = torch.where(denom > 0, group["trust_coefficient"] * w_norm / denom, torch.ones_like(denom))
                    scale = local * lr
                d = g.add(p, alpha=wd) if wd != 0 else g.clone()
                d.mul_(scale)
                if m != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = d.clone()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(m).add_(d, alpha=1 - group["dampening"])
                    d = d.add(buf, alpha=m) if group["nesterov"] else buf
                p.sub_(d)
        return loss


def _is_norm_param(name: str, module: nn.Module) -> bool:
    return "bn" in name or "norm" in name or isinstance(module, _NORM_TYPES)


def param_groups(model: nn.Module, weight_decay: float, bn_lars_exclude: bool = True, decay_biases: bool = False,
                 only_head: bool = False) -> list[dict]:
    """Split the trainable parameters of ``model`` into the ``decay`` / ``no_decay`` / ``norm`` groups (module doc).

    ``only_head`` keeps only parameters whose name contains ``head`` (the official linear evaluation, LFT). Each
    group dict carries ``group`` (its name) and ``names`` (the parameter names) besides ``params``; empty groups are
    left out.
    """
    groups = {
        "decay": {"group": "decay", "params": [], "names": [], "weight_decay": weight_decay, "lars_exclude": False},
        "no_decay": {"group": "no_decay", "params": [], "names": [],
                     "weight_decay": weight_decay if decay_biases else 0.0, "lars_exclude": False},
        "norm": {"group": "norm", "params": [], "names": [], "weight_decay": 0.0, "lars_exclude": bn_lars_exclude},
    }
    for module_name, module in model.named_modules():
        for local_name, p in module.named_parameters(recurse=False):
            name = f"{module_name}.{local_name}" if module_name else local_name
            if not p.requires_grad or (only_head and "head" not in name):
                continue
            if _is_norm_param(name, module):
                key = "norm"
            elif local_name == "bias" or p.dim() <= 1:
                key = "no_decay"
            else:
                key = "decay"
            groups[key]["params"].append(p)
            groups[key]["names"].append(name)
    out = [g for g in groups.values() if g["params"]]
    if not out:
        raise ValueError("the model has no trainable parameters" + (" named 'head'" if only_head else ""))
    return out


def build_optimizer(model: nn.Module, name: str = "lars", *, lr: float, weight_decay: float = 1e-6,
                    momentum: float = 0.9, nesterov: bool = True, trust_coefficient: float = 0.001,
                    bn_lars_exclude: bool = True, betas: tuple[float, float] = (0.9, 0.999),
                    decay_biases: bool = False, only_head: bool = False) -> Optimizer:
    """The optimiser ``name`` (lars, adam, sgd) over :func:`param_groups` of ``model``.

    Adam and SGD use coupled L2 weight decay (``torch.optim.Adam`` / ``SGD``), as the official fine-tuning does.
    """
    groups = param_groups(model, weight_decay, bn_lars_exclude, decay_biases, only_head)
    if name == "lars":
        return Lars(groups, lr=lr, momentum=momentum, nesterov=nesterov, trust_coefficient=trust_coefficient)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas)
    raise choice_error("optimizer", name, OPTIMIZERS)


def scaled_lr(base_lr: float, global_clips: int) -> float:
    """The linear scaling rule: ``base_lr * global_clips / 256`` (global clips = all processes' videos x clips)."""
    return base_lr * global_clips / 256


class WarmupCosine:
    """lr(e) = base_lr (1 + cos(pi e / epochs)) / 2, and for e < warmup_epochs a straight line from
    ``warmup_start_lr`` at 0 to that cosine's value at ``warmup_epochs`` (the official ``lr_policy``).

    ``e`` is the fractional epoch; it is clamped to [0, epochs], so the lr stays 0 past the end.
    """

    def __init__(self, base_lr: float, epochs: float, warmup_epochs: float = 0.0, warmup_start_lr: float = 0.0) -> None:
        if epochs <= 0 or not 0 <= warmup_epochs < epochs:
            raise ValueError(f"need epochs > 0 and 0 <= warmup_epochs < epochs, got {epochs} and {warmup_epochs}")
        self.base_lr = base_lr
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.warmup_start_lr = warmup_start_lr

    def _cosine(self, epoch: float) -> float:
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))

    def lr_at(self, epoch: float) -> float:
        e = min(max(float(epoch), 0.0), float(self.epochs))
        if e < self.warmup_epochs:
            end = self._cosine(self.warmup_epochs)
            return self.warmup_start_lr + e * (end - self.warmup_start_lr) / self.warmup_epochs
        return self._cosine(e)


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Set every parameter group's lr to ``lr`` (times the group's ``lr_scale``, which timm's layer-wise lr decay
    gives each layer's group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
