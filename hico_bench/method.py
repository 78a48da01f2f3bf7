"""HiCo and its ablations in one place: the variants, the pretraining model, and the loss of every variant.

A variant is a set of pretraining settings (:data:`VARIANTS`), never a subclass: the paper's ablations switch the
number of clips, the delta schedule, the topical loss and its focal exponent. For every variant:

* :class:`HiCoModel` = backbone f + the VCL projection g (+ the TCL projection h and the topical predictor phi when
  ``topical``). h and g are separate MLPs (Linear-BN-ReLU x2, Linear, L2-normalised); phi scores every ordered pair of
  clips of the per-process batch as same-video or not.
* :func:`hico_loss` = ``vcl_weight x world_size x L_vcl + tcl_weight x L_tcl``. L_vcl is computed over the gathered
  global batch (gradient through the local slice only; the ``world_size`` factor restores the full-batch gradient
  after DistributedDataParallel averages over processes, as the official code does): the HiCo VCL (anchors v_i, v_j;
  denominator 3B-2) with 3 clips, the standard NT-Xent with 2 clips (SimCLR and VCL only). L_tcl is the focal (or,
  with ``gamma`` 0, class-balanced) binary loss on phi's same-video predictions, per process, not scaled.

Adding a variant: one entry in :data:`VARIANTS` (and its name in the config's ``pretrain.variants``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import Tensor, nn

from hico_bench.identity import RANDOM_INIT
from hico_bench.models.heads import ProjectionMLP, TopicalPredictor


@dataclass(frozen=True)
class Variant:
    """A pretraining variant: its name in the tables and the pretraining settings that make it."""

    display: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""


VARIANTS: dict[str, Variant] = {
    "simclr": Variant("SimCLR", {"num_clips": 2, "schedule": "none", "topical": False},
                      "standard contrastive baseline: two clips drawn independently"),
    "vcl_fixed": Variant("VCL (fixed δ)", {"num_clips": 2, "schedule": "fixed", "topical": False},
                         "visual consistency only, v_j within a fixed delta of v_i"),
    "vcl_gradual": Variant("VCL + GS", {"num_clips": 2, "schedule": "gradual", "topical": False},
                           "visual consistency with gradual sampling"),
    "hico_fixed": Variant("HiCo (fixed δ)", {"num_clips": 3, "schedule": "fixed", "topical": True},
                          "VCL with a fixed delta + topical consistency"),
    "hico": Variant("HiCo", {"num_clips": 3, "schedule": "gradual", "topical": True},
                    "the full method: VCL with gradual sampling + topical consistency (focal loss)"),
    "hico_bce": Variant("HiCo (BCE TCL)", {"num_clips": 3, "schedule": "gradual", "topical": True, "gamma": 0.0},
                        "as hico, with gamma 0: class-balanced BCE instead of the focal loss"),
}
"""The paper's ablation grid (in table order)."""

DISPLAY_NAMES = {**{name: v.display for name, v in VARIANTS.items()}, RANDOM_INIT: "random init"}


def display_name(method: str) -> str:
    """The name the tables and plots give a method (a variant defined only in the config keeps its key)."""
    return DISPLAY_NAMES.get(method, method)


def method_order(method: str) -> int:
    """Row order: the built-in variants in :data:`VARIANTS` order, other variants after, random init last."""
    names = list(VARIANTS)
    if method in names:
        return names.index(method)
    return len(names) + (method == RANDOM_INIT)


class HiCoModel(nn.Module):
    """f (backbone) + g (VCL projection) and, when ``topical``, h (TCL projection) + phi (topical predictor).

    ``forward(clips)`` takes (B, N, 3, T, H, W); the clips of one video stay contiguous after the reshape to
    (B*N, 3, T, H, W). Returns ``{"z": (B*N, out_dim), "t": (B*N, out_dim) or None,
    "tcl_logits": (B*N, B*N, 2) or None}``; phi scores the pairs of this forward's (per-process) batch only.
    """

    def __init__(self, backbone: nn.Module, num_clips: int, topical: bool, mid_dim: int = 1024,
                 out_dim: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_clips = num_clips
        self.topical = topical
        self.g = ProjectionMLP(backbone.out_dim, mid_dim, out_dim)
        self.h = ProjectionMLP(backbone.out_dim, mid_dim, out_dim) if topical else None
        self.phi = TopicalPredictor(out_dim) if topical else None

    def forward(self, clips: Tensor) -> dict[str, Tensor | None]:
        if clips.dim() != 6 or clips.shape[1] != self.num_clips:
            raise ValueError(f"expected clips of shape (B, {self.num_clips}, C, T, H, W), got {tuple(clips.shape)}")
        feats = self.backbone(clips.flatten(0, 1))
        z = self.g(feats)
        if not self.topical:
            return {"z": z, "t": None, "tcl_logits": None}
        t = self.h(feats)
        return {"z": z, "t": t, "tcl_logits": self.phi(t)}


def build_model(backbone: nn.Module, s: Mapping[str, Any]) -> HiCoModel:
    """The pretraining model of the variant described by the (resolved) pretraining settings ``s``."""
    return HiCoModel(backbone, num_clips=s["num_clips"], topical=s["topical"], mid_dim=s["head_mid_dim"],
                     out_dim=s["head_out_dim"])


def hico_loss(out: Mapping[str, Any], s: Mapping[str, Any],
              world: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """(total, VCL or NT-Xent, TCL or None) of one batch's model output ``out`` under the settings ``s``."""
    from hico_bench.losses import nt_xent, tcl_loss, vcl_loss
    from hico_bench.train.distributed import gather_with_grad

    z = gather_with_grad(out["z"].float())
    if s["num_clips"] == 2:
        loss_vcl = nt_xent(z, s["temperature"])
    else:
        loss_vcl = vcl_loss(z, num_clips=s["num_clips"], temperature=s["temperature"])
    loss = s["vcl_weight"] * world * loss_vcl
    loss_tcl = None
    if s["topical"]:
        loss_tcl = tcl_loss(out["tcl_logits"].float(), clips_per_video=s["num_clips"], gamma=s["gamma"])
        loss = loss + s["tcl_weight"] * loss_tcl
    return loss, loss_vcl, loss_tcl


def check_variant(s: Mapping[str, Any]) -> None:
    """The combinations no variant can have (one sentence each)."""
    from hico_bench.errors import UserError

    if s["topical"] and s["num_clips"] < 3:
        raise UserError("topical: true needs num_clips: 3 (v_i, v_j and the topical clip v_k).")
    if s["topical"] and s["batch_videos"] < 2:
        raise UserError("topical: true needs batch_videos >= 2 per process: TCL needs clips of other videos.")
