"""Video backbones, found by name in the plain dict :data:`BACKBONES`.

Every backbone maps a float clip batch (B, 3, T, H, W) to pooled features (B, out_dim) and has ``out_dim`` and
``features(x)`` (the map before global average pooling). None of them ever loads pretrained weights.

- ``s3dg``: S3D-G as in CoCLR / HiCo (the official models/base/backbone.py::Inception3D), 1024-d.
- ``r3d18``: torchvision's ``r3d_18`` without its classifier, 512-d. The spec notes that the paper's "R3D-18" may be
  the official repository's R2D3D-18 (256-d); this project uses the standard R3D-18, as its issue asks.
- ``r2plus1d18``: torchvision's ``r2plus1d_18`` without its classifier, 512-d.
- ``r2plus1d10``: R(2+1)D with one basic block per stage ([1, 1, 1, 1]) from torchvision's building blocks, 512-d.
- ``tiny``: a small 3D CNN for CPU tests and the synthetic benchmark.

From the ecosystem (same interface; options make small versions for CPU tests, defaults are the published sizes):

- ``x3d_s``, ``x3d_m`` (432-d), ``slow_r50``, ``csn_r101``, ``r2plus1d_r50`` (2048-d), ``mvit_b`` (768-d):
  pytorchvideo's builders with its hub's settings, heads removed (:mod:`hico_bench.models.pytorchvideo_backbones`;
  pytorchvideo is imported only when one of them is built).
- ``vit_s16`` (384-d), ``vit_b16`` (768-d): VideoMAE-style ViTs from timm's blocks (:mod:`hico_bench.models.vit`).
  For these and ``mvit_b`` ``features(x)`` returns the final tokens as a (B, C, T', H', W') map.

``mvit_b``, ``vit_s16`` and ``vit_b16`` take the clip size as options (``frames``, ``size``) for their position
embeddings: :func:`build_backbone`'s ``clip`` gives it to them (and to no other backbone).
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import Tensor, nn
from torchvision.models.video import resnet as tv_resnet

from hico_bench.errors import UserError, choice_error
from hico_bench.models import ECOSYSTEM_BACKBONES  # noqa: F401  (re-exported: the names live in the package)
from hico_bench.models import pytorchvideo_backbones as ptv
from hico_bench.models import vit

S3DG_STCONV_BN_EPS = 1e-3  # BN.EPS of the official config, used by every STConv3d
S3DG_BN_MOMENTUM = 0.1
S3DG_CONV_INIT_STD = 0.01


def _init_s3dg_conv(conv: nn.Conv3d) -> None:
    nn.init.normal_(conv.weight, mean=0.0, std=S3DG_CONV_INIT_STD)


class BasicConv3d(nn.Module):
    """Conv3d (no bias) -> BatchNorm3d (PyTorch default eps 1e-5) -> ReLU: S3D-G's 1x1x1 convolutions."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm3d(out_ch, momentum=S3DG_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        _init_s3dg_conv(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class STConv3d(nn.Module):
    """Separable convolution: 1xkxk (spatial stride) -> BN -> ReLU -> kx1x1 (temporal stride) -> BN -> ReLU.

    Both BatchNorms use eps 1e-3 (the official ``BN.EPS``); convolutions have no bias.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        k, s, p = kernel_size, stride, padding
        self.conv1 = nn.Conv3d(in_ch, out_ch, (1, k, k), stride=(1, s, s), padding=(0, p, p), bias=False)
        self.bn1 = nn.BatchNorm3d(out_ch, eps=S3DG_STCONV_BN_EPS, momentum=S3DG_BN_MOMENTUM)
        self.conv2 = nn.Conv3d(out_ch, out_ch, (k, 1, 1), stride=(s, 1, 1), padding=(p, 0, 0), bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch, eps=S3DG_STCONV_BN_EPS, momentum=S3DG_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        _init_s3dg_conv(self.conv1)
        _init_s3dg_conv(self.conv2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class SelfGating(nn.Module):
    """S3D-G feature gating: x * sigmoid(Linear(mean of x over T, H, W)) per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * gate[:, :, None, None, None]


class InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1 -> STConv 3; 1x1 -> STConv 3; maxpool 3 -> 1x1), each self-gated, concatenated."""

    def __init__(self, in_ch: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branch0 = BasicConv3d(in_ch, b0)
        self.branch1 = nn.Sequential(BasicConv3d(in_ch, b1a), STConv3d(b1a, b1b, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv3d(in_ch, b2a), STConv3d(b2a, b2b, 3, padding=1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), BasicConv3d(in_ch, b3))
        self.gate0 = SelfGating(b0)
        self.gate1 = SelfGating(b1b)
        self.gate2 = SelfGating(b2b)
        self.gate3 = SelfGating(b3)
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.gate0(self.branch0(x)),
                self.gate1(self.branch1(x)),
                self.gate2(self.branch2(x)),
                self.gate3(self.branch3(x)),
            ],
            dim=1,
        )


class S3DG(nn.Module):
    """S3D-G (CoCLR / HiCo layout). At 16x112x112 the final map is (1024, 2, 3, 3); pooling is adaptive.

    Stem ``conv_1a`` = STConv3d 7 with stride 2 in space and time; then the Inception stages 3b-3c, 4b-4f, 5b-5c with
    the standard widths. Conv weights are N(0, 0.01), BN gamma 1 and beta 0, gating Linear layers PyTorch default.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv_1a = STConv3d(in_channels, 64, 7, stride=2, padding=3)
        self.pool_2a = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.conv_2b = BasicConv3d(64, 64)
        self.conv_2c = STConv3d(64, 192, 3, padding=1)
        self.pool_3a = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.mixed_3b = InceptionBlock(192, (64, 96, 128, 16, 32, 32))
        self.mixed_3c = InceptionBlock(256, (128, 128, 192, 32, 96, 64))
        self.pool_4a = nn.MaxPool3d(3, stride=2, padding=1)
        self.mixed_4b = InceptionBlock(480, (192, 96, 208, 16, 48, 64))
        self.mixed_4c = InceptionBlock(512, (160, 112, 224, 24, 64, 64))
        self.mixed_4d = InceptionBlock(512, (128, 128, 256, 24, 64, 64))
        self.mixed_4e = InceptionBlock(512, (112, 144, 288, 32, 64, 64))
        self.mixed_4f = InceptionBlock(528, (256, 160, 320, 32, 128, 128))
        self.pool_5a = nn.MaxPool3d(2, stride=2)
        self.mixed_5b = InceptionBlock(832, (256, 160, 320, 32, 128, 128))
        self.mixed_5c = InceptionBlock(832, (384, 192, 384, 48, 128, 128))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = 1024

    def features(self, x: Tensor) -> Tensor:
        for name in (
            "conv_1a", "pool_2a", "conv_2b", "conv_2c", "pool_3a", "mixed_3b", "mixed_3c", "pool_4a",
            "mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f", "pool_5a", "mixed_5b", "mixed_5c",
        ):
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class VideoResNetBackbone(nn.Module):
    """A torchvision ``VideoResNet`` without its classifier: stem, layer1-4, global average pooling (512-d)."""

    def __init__(self, net: tv_resnet.VideoResNet) -> None:
        super().__init__()
        self.stem = net.stem
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = net.fc.in_features

    def features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class TinyCNN(nn.Module):
    """Four Conv3d(3x3x3, no bias) -> BN -> ReLU layers, widths 32-64-128-out_dim, then global average pooling.

    Strides (T, H, W): (1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1), so 8x16x16 ends at 2x2x2 and 8x32x32 at 2x4x4.
    """

    def __init__(self, out_dim: int = 128, widths: tuple[int, int, int] = (32, 64, 128), in_channels: int = 3) -> None:
        super().__init__()
        chans = [in_channels, *widths, out_dim]
        strides = [(1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1)]
        layers: list[nn.Module] = []
        for cin, cout, stride in zip(chans[:-1], chans[1:], strides):
            layers += [nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = out_dim

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


def build_s3dg() -> S3DG:
    """S3D-G, 1024-d."""
    return S3DG()


def build_r3d18() -> VideoResNetBackbone:
    """torchvision R3D-18 (random init, no classifier), 512-d."""
    return VideoResNetBackbone(tv_resnet.r3d_18(weights=None))


def build_r2plus1d18() -> VideoResNetBackbone:
    """torchvision R(2+1)D-18 (random init, no classifier), 512-d."""
    return VideoResNetBackbone(tv_resnet.r2plus1d_18(weights=None))


def build_r2plus1d10() -> VideoResNetBackbone:
    """R(2+1)D-10: torchvision's BasicBlock / Conv2Plus1D / R(2+1)D stem with one block per stage, 512-d."""
    net = tv_resnet.VideoResNet(tv_resnet.BasicBlock, [tv_resnet.Conv2Plus1D] * 4, [1, 1, 1, 1],
                                tv_resnet.R2Plus1dStem)
    return VideoResNetBackbone(net)


def build_tiny(out_dim: int = 128, widths: tuple[int, int, int] = (32, 64, 128)) -> TinyCNN:
    """The tiny CPU backbone (see :class:`TinyCNN`)."""
    return TinyCNN(out_dim=out_dim, widths=tuple(widths))


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "s3dg": build_s3dg,
    "r3d18": build_r3d18,
    "r2plus1d10": build_r2plus1d10,
    "r2plus1d18": build_r2plus1d18,
    "tiny": build_tiny,
    "x3d_s": ptv.build_x3d_s,
    "x3d_m": ptv.build_x3d_m,
    "slow_r50": ptv.build_slow_r50,
    "csn_r101": ptv.build_csn_r101,
    "r2plus1d_r50": ptv.build_r2plus1d_r50,
    "mvit_b": ptv.build_mvit_b,
    "vit_s16": vit.build_vit_s16,
    "vit_b16": vit.build_vit_b16,
}


def build_backbone(name: str, clip: tuple[int, int] | None = None, **kwargs) -> nn.Module:
    """Build the backbone called ``name`` (keyword arguments go to its builder); records ``backbone_name`` on it.

    ``clip`` = (frames, size) of the input clips: the builders that need them at build time (position embeddings)
    get them as ``frames`` and ``size`` unless ``kwargs`` set those; the others ignore it.
    """
    if name not in BACKBONES:
        raise choice_error("backbone", name, BACKBONES)
    builder = BACKBONES[name]
    params = inspect.signature(builder).parameters
    if clip is not None and "frames" in params and "size" in params:
        kwargs = {"frames": int(clip[0]), "size": int(clip[1]), **kwargs}
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError:
        accepted = ", ".join(inspect.signature(builder).parameters) or "no options"
        raise UserError(
            f"backbone {name!r} does not accept the options {sorted(kwargs)}; it accepts: {accepted}."
        ) from None
    model = builder(**kwargs)
    model.backbone_name = name
    return model
