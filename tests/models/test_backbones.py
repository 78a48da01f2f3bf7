import subprocess
import sys

import pytest
import torch
from torch import nn

from hico_bench.errors import UserError
from hico_bench.models.backbones import BACKBONES, ECOSYSTEM_BACKBONES, S3DG, BasicConv3d, SelfGating, STConv3d, build_backbone

# name -> (exact parameter count, out_dim, unpooled map shape at 1x3x16x112x112)
EXPECTED = {
    "s3dg": (9_098_000, 1024, (1, 1024, 2, 3, 3)),
    "r3d18": (33_166_272, 512, (1, 512, 2, 7, 7)),
    "r2plus1d10": (12_487_005, 512, (1, 512, 2, 7, 7)),
    "r2plus1d18": (31_300_125, 512, (1, 512, 2, 7, 7)),
    "tiny": (722_144, 128, (1, 128, 4, 14, 14)),
}


def test_every_backbone_is_pinned():
    # the ecosystem's backbones are pinned in tests/models/test_ecosystem.py
    assert set(BACKBONES) - set(ECOSYSTEM_BACKBONES) == set(EXPECTED)


def test_the_torch_free_name_list_is_the_registry():
    """hico_bench.models.BACKBONE_NAMES (what the config check offers) names exactly the registry's builders."""
    from hico_bench.models import BACKBONE_NAMES

    assert BACKBONE_NAMES == tuple(BACKBONES)
    code = "import sys, hico_bench.settings, hico_bench.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_count(name):
    with torch.device("meta"):
        model = build_backbone(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[name][0]
    assert model.out_dim == EXPECTED[name][1]
    assert model.backbone_name == name


FULL_SIZE = [pytest.param(n, marks=pytest.mark.slow) for n in sorted(EXPECTED) if n != "tiny"]


@pytest.mark.parametrize("name", ["tiny", *FULL_SIZE])
def test_shapes_at_16x112(name):
    _, out_dim, map_shape = EXPECTED[name]
    torch.manual_seed(0)
    model = build_backbone(name).eval()
    x = torch.randn(1, 3, 16, 112, 112)
    with torch.no_grad():
        fmap = model.features(x)
        pooled = model(x)
    assert tuple(fmap.shape) == map_shape
    assert tuple(pooled.shape) == (1, out_dim)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("size", [16, 32])
def test_tiny_trains_on_small_clips(size):
    model = build_backbone("tiny", out_dim=64)
    x = torch.randn(4, 3, 8, size, size)
    y = model(x)
    assert y.shape == (4, 64)
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.features(x).shape == (4, 64, 2, size // 8, size // 8)


def test_tiny_widths_are_configurable():
    model = build_backbone("tiny", out_dim=32, widths=(8, 16, 16))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert [c.out_channels for c in convs] == [8, 16, 16, 32]


def test_s3dg_structure_follows_the_spec():
    model = build_backbone("s3dg")
    assert isinstance(model, S3DG)
    stem = model.conv_1a
    assert stem.conv1.kernel_size == (1, 7, 7) and stem.conv1.stride == (1, 2, 2)
    assert stem.conv2.kernel_size == (7, 1, 1) and stem.conv2.stride == (2, 1, 1)
    stconvs = [m for m in model.modules() if isinstance(m, STConv3d)]
    basics = [m for m in model.modules() if isinstance(m, BasicConv3d)]
    assert len(stconvs) == 2 + 2 * 9 and len(basics) == 1 + 4 * 9
    assert all(m.bn1.eps == 1e-3 and m.bn2.eps == 1e-3 for m in stconvs)
    assert all(m.bn.eps == 1e-5 for m in basics)
    assert sum(isinstance(m, SelfGating) for m in model.modules()) == 4 * 9  # every branch of every Inception block
    big = model.mixed_5c.branch1[1].conv1.weight
    assert abs(big.std().item() - 0.01) < 2e-4 and abs(big.mean().item()) < 2e-4
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        if isinstance(m, nn.Conv3d):
            assert m.bias is None


def test_s3dg_time_axis_16_8_4_2():
    model = build_backbone("s3dg").eval()
    x = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        assert model.conv_1a(x).shape[2] == 8
        assert model.features(x).shape[2] == 2


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(UserError, match=r"unknown backbone 'resnet50'; valid choices are: csn_r101, mvit_b, "
                                        r"r2plus1d10, r2plus1d18, r2plus1d_r50, r3d18, s3dg, slow_r50, tiny, "
                                        r"vit_b16, vit_s16, x3d_m, x3d_s\."):
        build_backbone("resnet50")


def test_unknown_option_is_a_user_error():
    with pytest.raises(UserError, match=r"backbone 's3dg' does not accept the options \['out_dim'\]"):
        build_backbone("s3dg", out_dim=64)
