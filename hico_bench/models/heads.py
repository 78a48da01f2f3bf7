"""Pre-training and fine-tuning heads.

- :class:`ProjectionMLP` is HiCo's ``MLP`` (used for both g and h, separate weights).
- :class:`TopicalPredictor` is phi, scoring every ordered pair of h's outputs.
- :class:`ClassifierModel` = backbone -> dropout -> Linear named ``head`` (LFT optimises the params named ``head``).

The pretraining model that puts g, h and phi on a backbone is :class:`hico_bench.method.HiCoModel`; loading a
backbone's weights from a file is :mod:`hico_bench.models.pretrained`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hico_bench.errors import UserError

HEAD_BN_EPS = 1e-3


class ProjectionMLP(nn.Module):
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear, output L2-normalised.

    BN eps is 1e-3 as in the official head. The official code applies BatchNorm3d to (N, C, 1, 1, 1); BatchNorm1d
    on (N, C) computes the same thing. Linear layers keep their biases (PyTorch default init), as the official MLP.
    """

    def __init__(self, in_dim: int, mid_dim: int = 1024, out_dim: int = 128) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_dim, mid_dim)
        self.bn1 = nn.BatchNorm1d(mid_dim, eps=HEAD_BN_EPS)
        self.linear2 = nn.Linear(mid_dim, mid_dim)
        self.bn2 = nn.BatchNorm1d(mid_dim, eps=HEAD_BN_EPS)
        self.linear3 = nn.Linear(mid_dim, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.linear1(x)))
        x = F.relu(self.bn2(self.linear2(x)))
        return F.normalize(self.linear3(x), p=2, dim=1)


class TopicalPredictor(nn.Module):
    """phi: Linear(2*dim, hidden) -> ReLU -> Linear(hidden, 1) on concat(t_a, t_b), for every ordered pair.

    Returns logits (n, n, 2): ``[a, b, 0] = phi([t_a, t_b])`` and ``[a, b, 1] = phi([t_b, t_a])``. The first Linear on
    a concatenation is split as ``W_left t_a + W_right t_b + bias``, so only (n, hidden) projections are multiplied
    and the (n, n, 2*dim) concatenation is never built. The parameters are those of the plain
    ``Linear(2*dim, hidden)`` (``fc1``), so a state dict matches the official layout.
    """

    def __init__(self, dim: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.dim = dim
        self.fc1 = nn.Linear(2 * dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, t: Tensor) -> Tensor:
        left = t @ self.fc1.weight[:, : self.dim].T  # (n, hidden): W_left t_a
        right = t @ self.fc1.weight[:, self.dim :].T  # (n, hidden): W_right t_b
        # pre[a, b] = W_left t_a + W_right t_b + bias, i.e. the first layer on concat(t_a, t_b).
        pre = left[:, None, :] + right[None, :, :] + self.fc1.bias
        ab = self.fc2(F.relu(pre)).squeeze(-1)  # (n, n): phi([t_a, t_b])
        # phi([t_b, t_a]) at [a, b] is phi's value for the ordered pair (b, a): the transpose.
        return torch.stack([ab, ab.T], dim=-1)


class ClassifierModel(nn.Module):
    """Backbone (pooled features) -> dropout -> Linear ``head`` (the official fine-tuning head ``BaseHead``: pooling,
    dropout, Linear).

    ``forward`` returns logits; softmax is left to evaluation. With a backbone that has layers in timm's sense
    (``group_matcher``: the ViTs), :meth:`group_matcher` puts the head in the last layer, so that timm's layer-wise
    lr decay gives it the full lr, as VideoMAE's fine-tuning does.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.out_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.backbone(x)))

    def group_matcher(self, coarse: bool = False) -> dict:
        if not hasattr(self.backbone, "group_matcher"):
            raise UserError(f"layer-wise lr decay needs a backbone made of layers (vit_s16, vit_b16); "
                            f"{getattr(self.backbone, 'backbone_name', type(self.backbone).__name__)} is not.")
        groups = dict(self.backbone.group_matcher(coarse, prefix="backbone."))
        groups["norm"] = groups["norm"] + "|^head"
        return groups
