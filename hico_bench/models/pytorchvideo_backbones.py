"""Backbones built with pytorchvideo 0.1.5's model builders (random init, never a download), heads removed.

Each network is built by the pytorchvideo builder that its ``pytorchvideo.models.hub`` entry calls, with the hub's
published hyper-parameters; then the classification head is taken off and the backbone pools globally itself:

======================  ==============================================================  ===========  =============
name                    pytorchvideo builder and the hub's settings                      published     feature map
                                                                                         input         at 16x112
======================  ==============================================================  ===========  =============
``x3d_s``               ``create_x3d``: width_factor 2.0, depth_factor 2.2, stage         13x160, s6    432x16x4x4
                        depths 1-2-5-3 -> 3-5-11-7, widths 24-48-96-192, conv5 432
``x3d_m``               the same network as ``x3d_s`` (see below)                        16x224, s5    432x16x4x4
``slow_r50``            ``create_resnet``: depth 50, stem conv (1, 7, 7), temporal        8x224, s8     2048x16x4x4
                        kernels only in res4/res5 (the slow pathway)
``csn_r101``            ``create_csn``: depth 101, stem max-pool, depthwise 3x3x3         32x224, s2    2048x2x4x4
                        conv_b (ir-CSN), temporal strides 1-2-2-2
``r2plus1d_r50``        ``create_r2plus1d``: depth 50, (2+1)D bottlenecks, temporal       16x224, s4    2048x4x4x4
                        strides 1-1-2-2
``mvit_b``              ``create_multiscale_vision_transformers`` with the hub's          16x224, s4    768x8x4x4
                        ``mvit_video_base_config`` (MViT-B 16x4)
======================  ==============================================================  ===========  =============

The published input is what the hub's weights were trained on ("s6" = every 6th frame; the strides are in the hub's
names, 8x8, 32x2, 16x4, and for X3D in SlowFast's ``configs/Kinetics/X3D_S.yaml`` / ``X3D_M.yaml``). In this project
the clip size is the config's ``model.frames`` x ``model.size``, so the table's last column is at 16x112.

What is kept, and ``out_dim``:

- ResNet family (``slow_r50``, ``csn_r101``, ``r2plus1d_r50``): pytorchvideo's ``blocks.0`` (stem) to ``blocks.4``
  (res5); the head (``blocks.5``: average pool, dropout, ``proj`` Linear, softmax) is dropped. ``out_dim`` = 2048,
  res5's width.
- X3D: the stem and the four stages, then X3D's ``conv5`` (1x1x1 conv 192 -> 432, BN, ReLU), which pytorchvideo
  puts in the head as ``blocks.5.pool.pre_*``; the head's pooling, the post-pool 1x1x1 conv to 2048 ("fc1" of
  the X3D paper, a linear layer on pooled features) and ``proj`` are dropped. ``out_dim`` = 432: the X3D paper's
  conv5 is the network's last convolution before pooling, and keeping it makes ``features`` the map that pooling
  averages, as for every backbone here. X3D-S and X3D-M are the same network (pytorchvideo's hub passes them
  the same builder settings and only a different input clip: 13x160 vs 16x224), so ``x3d_s`` and ``x3d_m`` build
  identical modules; the difference lives in the clip size and frame stride of the config.
- MViT-B: patch embedding, class token + separable space-time position embeddings, the 16 multiscale blocks and
  the final LayerNorm (``norm_embed``); the head (``head.proj``) is dropped. The class token still takes part in
  attention (as published) but the pooled feature is the mean of the patch tokens after the final norm, so that
  ``forward(x) == features(x).mean((2, 3, 4))`` as for every backbone (the published head reads the class token).
  ``out_dim`` = 768. The position embeddings are sized for one clip size at build time (pytorchvideo's design):
  ``mvit_b`` takes ``frames`` and ``size`` options (default 16 and 112) and refuses other clip sizes.

State-dict names are pytorchvideo's (``blocks.N....`` for the CNNs, X3D's conv5 at ``blocks.5.pool.pre_conv`` /
``pre_norm`` as in pytorchvideo's head; ``patch_embed.*``, ``cls_positional_encoding.*``, ``blocks.N.*``,
``norm_embed.*`` for MViT), so a pytorchvideo checkpoint loads after dropping its head keys only.

Small versions for CPU tests use the same builders: ``width_factor`` / ``depth_factor`` for X3D (its own expansion
factors), ``width`` (the stem width; stage widths are 4, 8, 16 and 32 times it) and ``depth`` (50, 101 or 152) for
the ResNets, ``embed_dim`` and ``num_heads`` for MViT (its 16-block stage layout stays).

pytorchvideo is imported inside the builders only, so importing this module needs torch alone.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from hico_bench.errors import UserError

#: pytorchvideo's ResNet stage depths by model depth (the builders accept these only).
RESNET_DEPTHS = (50, 101, 152)

#: MViT-B 16x4: pytorchvideo hub ``mvit_video_base_config`` without its input size (taken from the options).
MVIT_B_CONFIG = {
    "embed_dim_mul": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "atten_head_mul": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "pool_q_stride_size": [[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]],
    "pool_kv_stride_adaptive": [1, 8, 8],
    "pool_kvq_kernel": [3, 3, 3],
}


def _models():
    """Import pytorchvideo's model builders; fvcore's import-time ``torch.jit.script`` deprecation warning is
    silenced. (``hico_bench``'s torchvision alias is already installed: the package ran before this module.)
    Without pytorchvideo (e.g. on a GPU host that has only torch and timm) building one of these is a UserError."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
            # create_r2plus1d and create_x3d can be imported only from their submodules
            from pytorchvideo.models import csn, r2plus1d, resnet, vision_transformers, x3d
    except ImportError as exc:
        raise UserError(f"the pytorchvideo backbones need pytorchvideo==0.1.5, which does not import here ({exc}).")
    return csn, resnet, vision_transformers, r2plus1d, x3d


class PytorchvideoCNN(nn.Module):
    """A pytorchvideo convolutional network without its head: ``blocks`` in order, then global average pooling."""

    def __init__(self, blocks: nn.ModuleList, out_dim: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = out_dim

    def features(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class X3DConv5Conv(nn.Module):
    """X3D's conv5: 1x1x1 conv (no bias) -> BN -> ReLU, with pytorchvideo's names ``pre_conv``, ``pre_norm``."""

    def __init__(self, pre_conv: nn.Conv3d, pre_norm: nn.Module, pre_act: nn.Module) -> None:
        super().__init__()
        self.pre_conv = pre_conv
        self.pre_norm = pre_norm
        self.pre_act = pre_act

    def forward(self, x: Tensor) -> Tensor:
        return self.pre_act(self.pre_norm(self.pre_conv(x)))


class X3DConv5(nn.Module):
    """Holds :class:`X3DConv5Conv` as ``pool`` so that its keys are pytorchvideo's ``blocks.5.pool.pre_*``.

    Nothing here pools: the name is only the checkpoint layout's.
    """

    def __init__(self, conv: X3DConv5Conv) -> None:
        super().__init__()
        self.pool = conv

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x)


def _check_resnet_depth(depth: int) -> None:
    if depth not in RESNET_DEPTHS:
        raise UserError(f"backbone option depth={depth!r} is not one of pytorchvideo's ResNet depths "
                        f"{', '.join(map(str, RESNET_DEPTHS))}.")


def _check_width(width: int) -> None:
    if not isinstance(width, int) or width < 1:
        raise UserError(f"backbone option width={width!r} must be a positive integer (the stem width).")


def _x3d(clip_length: int, crop_size: int, width_factor: float, depth_factor: float) -> PytorchvideoCNN:
    *_, x3d = _models()
    if width_factor <= 0 or depth_factor <= 0:
        raise UserError(f"backbone options width_factor={width_factor!r} and depth_factor={depth_factor!r} must "
                        f"be positive.")
    # The clip length and crop size only size the head's average pooling, which is dropped.
    net = x3d.create_x3d(input_clip_length=clip_length, input_crop_size=crop_size, width_factor=width_factor,
                         depth_factor=depth_factor)
    head = net.blocks[-1].pool
    conv5 = X3DConv5(X3DConv5Conv(head.pre_conv, head.pre_norm, head.pre_act))
    return PytorchvideoCNN(nn.ModuleList([*net.blocks[:-1], conv5]), out_dim=head.pre_conv.out_channels)


def build_x3d_s(width_factor: float = 2.0, depth_factor: float = 2.2) -> PytorchvideoCNN:
    """X3D-S (pytorchvideo hub ``x3d_s``: published on 13x160 clips) up to conv5, 432-d."""
    return _x3d(13, 160, width_factor, depth_factor)


def build_x3d_m(width_factor: float = 2.0, depth_factor: float = 2.2) -> PytorchvideoCNN:
    """X3D-M (pytorchvideo hub ``x3d_m``: published on 16x224 clips) up to conv5, 432-d; the same network as X3D-S."""
    return _x3d(16, 224, width_factor, depth_factor)


def _headless(net: nn.Module, width: int) -> PytorchvideoCNN:
    """Drop the last block (the head) of a pytorchvideo ResNet-family ``Net`` built with stem width ``width``.

    pytorchvideo's ResNet stages are 4, 8, 16 and 32 times the stem width wide, so ``out_dim`` = 32 x width.
    """
    return PytorchvideoCNN(nn.ModuleList(net.blocks[:-1]), out_dim=32 * width)


def build_slow_r50(width: int = 64, depth: int = 50) -> PytorchvideoCNN:
    """Slow-R50 (hub ``slow_r50``: ``create_resnet``, stem conv (1, 7, 7), depth 50) without its head, 2048-d."""
    _check_width(width)
    _check_resnet_depth(depth)
    _, resnet, *_ = _models()
    net = resnet.create_resnet(stem_conv_kernel_size=(1, 7, 7), model_depth=depth, stem_dim_out=width)
    return _headless(net, width)


def build_csn_r101(width: int = 64, depth: int = 101) -> PytorchvideoCNN:
    """ir-CSN-101 (hub ``csn_r101``: ``create_csn``, depth 101, stem max-pool) without its head, 2048-d."""
    _check_width(width)
    _check_resnet_depth(depth)
    csn, *_ = _models()
    return _headless(csn.create_csn(model_depth=depth, stem_pool=nn.MaxPool3d, stem_dim_out=width), width)


def build_r2plus1d_r50(width: int = 64, depth: int = 50) -> PytorchvideoCNN:
    """R(2+1)D-R50 (hub ``r2plus1d_r50``: ``create_r2plus1d`` defaults, depth 50) without its head, 2048-d."""
    _check_width(width)
    _check_resnet_depth(depth)
    *_, r2plus1d, _ = _models()
    return _headless(r2plus1d.create_r2plus1d(model_depth=depth, stem_dim_out=width), width)


class MViTBackbone(nn.Module):
    """pytorchvideo's MViT without its head; pooled = mean of the patch tokens after the final LayerNorm.

    ``features(x)`` returns the patch tokens (class token left out) as (B, C, T', H', W') in the token order of
    the patch embedding (time, then height, then width). Only clips of the size given at build time are accepted.
    """

    def __init__(self, net: nn.Module, frames: int, size: int) -> None:
        super().__init__()
        self.patch_embed = net.patch_embed
        self.cls_positional_encoding = net.cls_positional_encoding
        self.pos_drop = net.pos_drop
        self.norm_patch_embed = net.norm_patch_embed
        self.blocks = net.blocks
        self.norm_embed = net.norm_embed
        self.has_cls = bool(net.cls_positional_encoding.cls_embed_on)
        self.clip_size = (frames, size, size)
        self.out_dim = net.norm_embed.normalized_shape[0]

    def features(self, x: Tensor) -> Tensor:
        if tuple(x.shape[2:]) != self.clip_size:
            t, h, w = self.clip_size
            raise UserError(f"backbone 'mvit_b' was built for {t}x{h}x{w} clips (its frames and size options); "
                            f"got {'x'.join(map(str, x.shape[2:]))}.")
        x = self.cls_positional_encoding(self.patch_embed(x))
        if self.pos_drop is not None:
            x = self.pos_drop(x)
        if self.norm_patch_embed is not None:
            x = self.norm_patch_embed(x)
        thw = self.cls_positional_encoding.patch_embed_shape
        for block in self.blocks:
            x, thw = block(x, thw)
        x = self.norm_embed(x)
        if self.has_cls:
            x = x[:, 1:]
        t, h, w = thw
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], t, h, w)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3, 4))


def build_mvit_b(frames: int = 16, size: int = 112, embed_dim: int = 96, num_heads: int = 1,
                 drop_path_rate: float = 0.0) -> MViTBackbone:
    """MViT-B 16x4 (hub ``mvit_base_16x4`` settings) for ``frames`` x ``size`` x ``size`` clips, 768-d.

    ``frames`` must be even and ``size`` a multiple of 4 (the patch embedding's stride is 2x4x4 and the position
    embeddings are sized ``frames // 2`` x ``size // 4`` x ``size // 4``).
    pytorchvideo's builder computes its layout with tensors and ``.item()``, which cannot run on the meta device,
    so under ``torch.device("meta")`` the model is built on the CPU and then moved to the meta device.
    """
    if frames < 2 or frames % 2 or size < 4 or size % 4:
        raise UserError(f"backbone 'mvit_b' needs an even frames >= 2 and a size that is a multiple of 4; got "
                        f"frames={frames!r}, size={size!r}.")
    if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
        raise UserError(f"backbone 'mvit_b' needs embed_dim divisible by num_heads; got {embed_dim!r} and "
                        f"{num_heads!r}.")
    _, _, vision_transformers, *_ = _models()
    target = torch.get_default_device()
    with torch.device("cpu" if target.type == "meta" else target):
        net = vision_transformers.create_multiscale_vision_transformers(
            spatial_size=size, temporal_size=frames, patch_embed_dim=embed_dim, num_heads=num_heads,
            droppath_rate_block=drop_path_rate, **MVIT_B_CONFIG)
    model = MViTBackbone(net, frames, size)
    return model.to(target) if target.type == "meta" else model
