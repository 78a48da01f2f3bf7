"""The method in one place: the variants, the pretraining model and the loss composition of every variant."""

import pytest
import torch
from torch import nn

from hico_bench.method import VARIANTS, HiCoModel, build_model, display_name, hico_loss, method_order
from hico_bench.models.backbones import build_backbone
from hico_bench.settings import PRETRAIN


class RecordingBackbone(nn.Module):
    """Returns the per-clip mean over (T, H, W) of each channel, tiled, and records its input."""

    out_dim = 6

    def forward(self, x):
        self.seen = x
        return x.mean(dim=(2, 3, 4)).repeat(1, 2)


def test_hico_model_keeps_clips_of_a_video_contiguous():
    torch.manual_seed(3)
    backbone = RecordingBackbone()
    model = HiCoModel(backbone, num_clips=3, topical=True, mid_dim=16, out_dim=8)
    clips = torch.randn(4, 3, 3, 2, 4, 4)
    out = model(clips)
    assert torch.equal(backbone.seen[7], clips[2, 1])  # row 7 = video 2, clip 1
    assert out["z"].shape == (12, 8) and out["t"].shape == (12, 8)
    assert out["tcl_logits"].shape == (12, 12, 2)
    torch.testing.assert_close(out["tcl_logits"], model.phi(out["t"]))
    assert not torch.allclose(out["z"], out["t"])  # g and h have separate weights


def test_hico_model_without_topical_heads():
    model = HiCoModel(build_backbone("tiny", out_dim=16), num_clips=2, topical=False, mid_dim=32, out_dim=8)
    out = model(torch.randn(3, 2, 3, 4, 16, 16))
    assert out["z"].shape == (6, 8) and out["t"] is None and out["tcl_logits"] is None
    assert model.h is None and model.phi is None
    with pytest.raises(ValueError, match=r"\(B, 2, C, T, H, W\)"):
        model(torch.randn(3, 3, 3, 4, 16, 16))


def test_variants_are_valid_pretraining_settings_in_table_order():
    assert list(VARIANTS) == ["simclr", "vcl_fixed", "vcl_gradual", "hico_fixed", "hico", "hico_bce"]
    for name, variant in VARIANTS.items():
        s = PRETRAIN.resolve(variant.settings)
        assert (s["num_clips"] == 3) == s["topical"], name
    assert display_name("hico") == "HiCo" and display_name("random_init") == "random init"
    assert display_name("my_variant") == "my_variant"
    assert method_order("simclr") < method_order("hico") < method_order("my_variant") < method_order("random_init")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_builds_and_its_loss_is_its_composition(name):
    from hico_bench.losses import nt_xent, tcl_loss, vcl_loss

    torch.manual_seed(0)
    s = PRETRAIN.resolve({**VARIANTS[name].settings, "head_mid_dim": 16, "head_out_dim": 8})
    model = build_model(build_backbone("tiny", out_dim=16, widths=(4, 4, 8)), s)
    clips = torch.randn(4, s["num_clips"], 3, 4, 16, 16)
    out = model(clips)
    total, loss_vcl, loss_tcl = hico_loss(out, s, world=1)
    if s["num_clips"] == 2:
        torch.testing.assert_close(loss_vcl, nt_xent(out["z"], s["temperature"]))
    else:
        torch.testing.assert_close(loss_vcl, vcl_loss(out["z"], num_clips=3, temperature=s["temperature"]))
    if s["topical"]:
        torch.testing.assert_close(loss_tcl, tcl_loss(out["tcl_logits"], clips_per_video=3, gamma=s["gamma"]))
        torch.testing.assert_close(total, loss_vcl + loss_tcl)
    else:
        assert loss_tcl is None and model.h is None
        torch.testing.assert_close(total, loss_vcl)
    # the world-size factor of the VCL term (DDP averages gradients over processes; spec: loss x world_size)
    torch.testing.assert_close(hico_loss(out, s, world=4)[0] - (loss_tcl if s["topical"] else 0), 4 * loss_vcl)
