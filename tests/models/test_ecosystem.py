"""The ecosystem backbones: pytorchvideo builders without heads, the VideoMAE-style ViTs and their converter."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hico_bench.errors import UserError
from hico_bench.models import pytorchvideo_backbones as ptv
from hico_bench.models.backbones import BACKBONES, ECOSYSTEM_BACKBONES, build_backbone
from hico_bench.models.vit import VideoViT, sinusoid_table, videomae_to_backbone_state

# name -> (exact parameter count of the default (published-size) build, out_dim, feature map at B x 3 x 16 x 112 x 112)
PUBLISHED = {
    "x3d_s": (2_089_938, 432, (432, 16, 4, 4)),
    "x3d_m": (2_089_938, 432, (432, 16, 4, 4)),
    "slow_r50": (31_634_496, 2048, (2048, 16, 4, 4)),
    "csn_r101": (21_394_176, 2048, (2048, 2, 4, 4)),
    "r2plus1d_r50": (27_288_000, 2048, (2048, 4, 4, 4)),
    "mvit_b": (36_077_280, 768, (768, 8, 4, 4)),
    "vit_s16": (21_884_544, 384, (384, 8, 7, 7)),
    "vit_b16": (86_236_416, 768, (768, 8, 7, 7)),
}

# name -> (options of a tiny build, input clip (B, 3, T, H, W), out_dim, feature map)
TINY = {
    "x3d_s": ({"width_factor": 0.5, "depth_factor": 0.5}, (2, 3, 4, 32, 32), 108, (108, 4, 1, 1)),
    "x3d_m": ({"width_factor": 0.5, "depth_factor": 0.5}, (2, 3, 4, 32, 32), 108, (108, 4, 1, 1)),
    "slow_r50": ({"width": 4}, (2, 3, 4, 32, 32), 128, (128, 4, 1, 1)),
    "csn_r101": ({"width": 4, "depth": 50}, (2, 3, 8, 32, 32), 128, (128, 1, 1, 1)),
    "r2plus1d_r50": ({"width": 4}, (2, 3, 8, 32, 32), 128, (128, 2, 1, 1)),
    "mvit_b": ({"frames": 4, "size": 32, "embed_dim": 8}, (2, 3, 4, 32, 32), 64, (64, 2, 1, 1)),
    "vit_s16": ({"embed_dim": 16, "depth": 2, "num_heads": 2, "frames": 4, "size": 32}, (2, 3, 4, 32, 32), 16,
                (16, 2, 2, 2)),
    "vit_b16": ({"embed_dim": 24, "depth": 1, "num_heads": 3, "frames": 4, "size": 32}, (2, 3, 4, 32, 32), 24,
                (24, 2, 2, 2)),
}


def test_every_ecosystem_backbone_is_registered_and_pinned():
    assert set(ECOSYSTEM_BACKBONES) == set(PUBLISHED) == set(TINY)
    assert set(ECOSYSTEM_BACKBONES) <= set(BACKBONES)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_size_parameters_and_shapes_at_16x112(name):
    count, out_dim, map_shape = PUBLISHED[name]
    with torch.device("meta"):
        model = build_backbone(name)
        x = torch.empty(2, 3, 16, 112, 112)
    assert sum(p.numel() for p in model.parameters()) == count
    assert model.out_dim == out_dim and model.backbone_name == name
    assert tuple(model.features(x).shape) == (2, *map_shape)
    assert tuple(model(x).shape) == (2, out_dim)


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_forward_and_backward_on_the_cpu(name):
    options, shape, out_dim, map_shape = TINY[name]
    torch.manual_seed(0)
    model = build_backbone(name, **options)
    assert model.out_dim == out_dim
    x = torch.randn(*shape)
    fmap = model.features(x)
    pooled = model(x)
    assert tuple(fmap.shape) == (shape[0], *map_shape)
    assert tuple(pooled.shape) == (shape[0], out_dim)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3, 4)))
    pooled.square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_x3d_s_and_x3d_m_are_the_same_network():
    with torch.device("meta"):
        s, m = build_backbone("x3d_s"), build_backbone("x3d_m")
    assert {k: v.shape for k, v in s.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}


def _pytorchvideo_net(name, **options):
    csn, resnet, _, r2plus1d, x3d = ptv._models()
    return {
        "x3d_s": lambda: x3d.create_x3d(input_clip_length=13, input_crop_size=160, **options),
        "slow_r50": lambda: resnet.create_resnet(stem_conv_kernel_size=(1, 7, 7), model_depth=50, **options),
        "csn_r101": lambda: csn.create_csn(model_depth=101, stem_pool=nn.MaxPool3d, **options),
        "r2plus1d_r50": lambda: r2plus1d.create_r2plus1d(dropout_rate=0.5, **options),
    }[name]()


@pytest.mark.parametrize("name, head_keys", [
    ("x3d_s", ("blocks.5.pool.post_conv.", "blocks.5.proj.")),
    ("slow_r50", ("blocks.5.",)),
    ("csn_r101", ("blocks.5.",)),
    ("r2plus1d_r50", ("blocks.5.",)),
])
def test_cnn_keys_are_pytorchvideos_without_the_head(name, head_keys):
    with torch.device("meta"):
        ours = build_backbone(name)
        theirs = _pytorchvideo_net(name)
    expected = {k: v.shape for k, v in theirs.state_dict().items() if not k.startswith(head_keys)}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected


def test_mvit_features_are_the_patch_tokens_of_pytorchvideos_mvit():
    torch.manual_seed(0)
    _, _, vision_transformers, *_ = ptv._models()
    net = vision_transformers.create_multiscale_vision_transformers(
        spatial_size=32, temporal_size=4, patch_embed_dim=8, **ptv.MVIT_B_CONFIG)
    model = ptv.MViTBackbone(net, 4, 32).eval()
    net.head = None
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        tokens = net.eval()(x)  # (B, 1 + T'H'W', C) after the final norm, class token first
        fmap = model.features(x)
    assert tokens.shape == (2, 1 + 2 * 1 * 1, 64)
    torch.testing.assert_close(fmap.flatten(2).transpose(1, 2), tokens[:, 1:], rtol=0, atol=0)
    expected_keys = {k for k in net.state_dict()}
    assert set(model.state_dict()) == expected_keys


def test_mvit_refuses_other_clip_sizes():
    model = build_backbone("mvit_b", frames=4, size=32, embed_dim=8)
    with pytest.raises(UserError, match=r"built for 4x32x32 clips .* got 8x32x32"):
        model(torch.randn(1, 3, 8, 32, 32))


@pytest.mark.parametrize("name, options, match", [
    ("slow_r50", {"depth": 34}, r"depth=34 is not one of pytorchvideo's ResNet depths 50, 101, 152"),
    ("csn_r101", {"width": 0}, r"width=0 must be a positive integer"),
    ("x3d_m", {"width_factor": 0.0}, r"width_factor=0.0 .* must be positive"),
    ("mvit_b", {"size": 30}, r"size that is a multiple of 4; got frames=16, size=30"),
    ("vit_b16", {"embed_dim": 30, "num_heads": 4}, r"embed_dim divisible by num_heads; got embed_dim=30"),
    ("vit_s16", {"size": 100}, r"size a multiple of 16; got frames=16, size=100"),
    ("vit_s16", {"drop_path_rate": 1.0}, r"drop_path_rate=1.0 must be in \[0, 1\)"),
    ("vit_s16", {"depth_factor": 2}, r"backbone 'vit_s16' does not accept the options \['depth_factor'\]"),
])
def test_bad_options_are_user_errors(name, options, match):
    with torch.device("meta"), pytest.raises(UserError, match=match):
        build_backbone(name, **options)


def test_the_clip_reaches_only_the_builders_that_take_it(monkeypatch):
    import hico_bench.models.backbones as B

    seen = {}
    monkeypatch.setitem(B.BACKBONES, "sized", lambda frames=1, size=1, width=1: seen.update(f=frames, s=size) or nn.Identity())
    monkeypatch.setitem(B.BACKBONES, "plain", lambda width=1: nn.Identity())
    build_backbone("sized", (8, 224))
    assert seen == {"f": 8, "s": 224}
    build_backbone("sized", (8, 224), size=32)  # an explicit option wins
    assert seen == {"f": 8, "s": 32}
    build_backbone("plain", (8, 224))  # ignored
    with pytest.raises(UserError, match=r"unknown backbone 'vit'"):
        build_backbone("vit", (16, 112))


# ---------------------------------------------------------------------------------------------------------- ViT


def tiny_vit(**options) -> VideoViT:
    kwargs = {"embed_dim": 16, "depth": 3, "num_heads": 2, "frames": 4, "size": 32, **options}
    return build_backbone("vit_s16", **kwargs)


def test_sinusoid_table_is_videomaes_formula():
    n, d = 7, 6
    expected = torch.tensor([[(math.sin if j % 2 == 0 else math.cos)(p / math.pow(10000, 2 * (j // 2) / d))
                              for j in range(d)] for p in range(n)], dtype=torch.float64).float()
    assert torch.equal(sinusoid_table(n, d), expected)


def test_vit_structure_follows_videomae():
    model = tiny_vit(drop_path_rate=0.2)
    proj = model.patch_embed.proj
    assert proj.kernel_size == (2, 16, 16) and proj.stride == (2, 16, 16) and proj.bias is not None
    assert "pos_embed" not in model.state_dict()
    assert torch.equal(model.pos_embed, sinusoid_table(2 * 2 * 2, 16))
    assert [b.drop_path1.drop_prob if hasattr(b.drop_path1, "drop_prob") else 0.0 for b in model.blocks] == \
        pytest.approx([0.0, 0.1, 0.2])
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 3 + 1 and all(m.eps == 1e-6 for m in norms)
    names = set(model.state_dict())
    per_block = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                 "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                 "mlp.fc2.bias"}
    assert names == {"patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"} | {
        f"blocks.{i}.{k}" for i in range(3) for k in per_block}
    assert model.blocks[0].mlp.fc1.out_features == 64


def test_vit_position_table_follows_the_clip_size():
    torch.manual_seed(0)
    small = tiny_vit().eval()  # built for 4x32x32: 8 tokens
    large = tiny_vit(frames=6, size=48).eval()  # 27 tokens
    large.load_state_dict(small.state_dict(), strict=True)
    x = torch.randn(1, 3, 6, 48, 48)
    with torch.no_grad():
        assert torch.equal(small.features(x), large.features(x))
    with pytest.raises(UserError, match=r"frames are a multiple of 2 .* got 5x48x48"):
        small(torch.randn(1, 3, 5, 48, 48))


def videomae_blocks_reference(weights: dict, x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """VideoMAE's tubelet embedding, position table and blocks on VideoMAE-named weights, written out from its
    ``modeling_finetune.py``: the tokens before the final norm, (B, N, D)."""
    w = weights
    tokens = F.conv3d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=(2, 16, 16))
    tokens = tokens.flatten(2).transpose(1, 2)
    b, n, d = tokens.shape
    tokens = tokens + sinusoid_table(n, d)
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(tokens, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps=1e-6)
        bias = torch.cat([w[p + "attn.q_bias"], torch.zeros_like(w[p + "attn.v_bias"]), w[p + "attn.v_bias"]])
        qkv = F.linear(h, w[p + "attn.qkv.weight"], bias).reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (d // num_heads) ** -0.5, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        h = F.linear((attn @ v).transpose(1, 2).reshape(b, n, d), w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        tokens = tokens + h
        h = F.layer_norm(tokens, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"],
                     w[p + "mlp.fc2.bias"])
        tokens = tokens + h
    return tokens


def to_videomae(model: VideoViT, layout: str) -> dict:
    """The inverse mapping: a VideoMAE file ('pretrain': encoder.* + decoder under "model"; 'finetune': fc_norm and
    head.* under "module") holding ``model``'s weights (its key bias is left out, as VideoMAE has none)."""
    enc = {}
    for key, value in model.state_dict().items():
        if key.endswith("attn.qkv.bias"):
            q, _, v = value.clone().chunk(3)
            enc[key.replace("qkv.bias", "q_bias")] = q
            enc[key.replace("qkv.bias", "v_bias")] = v
        elif key.startswith("norm.") and layout == "finetune":
            enc["fc_" + key] = value.clone()
        else:
            enc[key] = value.clone()
    d = model.out_dim
    if layout == "pretrain":
        weights = {"encoder." + k: v for k, v in enc.items()}
        weights.update({"decoder.blocks.0.norm1.weight": torch.ones(8), "decoder.head.weight": torch.ones(1536, 8),
                        "encoder_to_decoder.weight": torch.ones(8, d), "mask_token": torch.zeros(1, 1, 8)})
        return {"model": weights, "optimizer": {}, "epoch": 799}
    enc.update({"head.weight": torch.ones(5, d), "head.bias": torch.zeros(5)})
    return {"module": enc}


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)


@pytest.mark.parametrize("layout", ["pretrain", "finetune"])
def test_videomae_round_trip_loads_strictly_and_computes_videomaes_encoder(layout):
    torch.manual_seed(0)
    source = tiny_vit().eval()
    _randomise(source)
    with torch.no_grad():
        for block in source.blocks:  # VideoMAE has no key bias
            block.attn.qkv.bias[16:32] = 0
    checkpoint = to_videomae(source, layout)
    state = videomae_to_backbone_state(checkpoint)
    target = tiny_vit().eval()
    target.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        fmap = target.features(x)
        assert torch.equal(fmap, source.features(x))
        weights = checkpoint["model" if layout == "pretrain" else "module"]
        if layout == "pretrain":
            weights = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
        reference = videomae_blocks_reference(weights, x, num_heads=2)
    # The final norm: a pretraining file's encoder.norm; a fine-tuned file's fc_norm taken as the per-token norm.
    norm = "norm" if layout == "pretrain" else "fc_norm"
    reference = F.layer_norm(reference, (16,), weights[norm + ".weight"], weights[norm + ".bias"], eps=1e-6)
    torch.testing.assert_close(fmap.flatten(2).transpose(1, 2), reference, rtol=1e-5, atol=1e-5)


def test_a_key_bias_changes_nothing_so_the_converter_may_zero_it():
    torch.manual_seed(1)
    source = tiny_vit().eval()
    _randomise(source)  # random key biases too
    target = tiny_vit().eval()
    target.load_state_dict(videomae_to_backbone_state(to_videomae(source, "pretrain")), strict=True)
    assert all(torch.all(b.attn.qkv.bias[16:32] == 0) for b in target.blocks)
    assert not all(torch.all(b.attn.qkv.bias[16:32] == 0) for b in source.blocks)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)


def test_bare_state_dict_and_norm_preferred_over_fc_norm():
    torch.manual_seed(2)
    model = tiny_vit()
    bare = to_videomae(model, "finetune")["module"]
    bare["norm.weight"], bare["norm.bias"] = torch.full((16,), 3.0), torch.full((16,), 4.0)
    state = videomae_to_backbone_state(bare)
    assert torch.equal(state["norm.weight"], torch.full((16,), 3.0)) and "fc_norm.weight" not in state
    assert not any(k.startswith("head.") for k in state)


def test_converter_errors_are_user_errors():
    model = tiny_vit()
    weights = to_videomae(model, "pretrain")["model"]
    del weights["encoder.blocks.1.attn.q_bias"], weights["encoder.norm.bias"]
    with pytest.raises(UserError, match=r"lacks 2 weights a ViT backbone needs: norm.bias, blocks.1.attn.q_bias\."):
        videomae_to_backbone_state({"model": weights})
    scaled = to_videomae(model, "finetune")
    scaled["module"]["blocks.0.gamma_1"] = torch.ones(16)
    with pytest.raises(UserError, match=r"has no place for .*: blocks.0.gamma_1\."):
        videomae_to_backbone_state(scaled)
    with pytest.raises(UserError, match=r"lacks 5 weights .*blocks\.0\.\*"):
        videomae_to_backbone_state({"model": {}})
    with pytest.raises(UserError, match=r"must be a dict of weights, got list"):
        videomae_to_backbone_state([1, 2])


def _layer_of(name: str, depth: int, prefix: str = "") -> int:
    name = name.removeprefix(prefix)
    if name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1  # the final norm (and a wrapper's head)


def test_timm_layer_decay_scales_each_block():
    from timm.optim import create_optimizer_v2

    model = tiny_vit()
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    names = {id(p): n for n, p in model.named_parameters()}
    seen = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            assert group["lr_scale"] == pytest.approx(0.75 ** (3 + 1 - _layer_of(name, 3))), name
            assert group["weight_decay"] == (0.0 if p.ndim == 1 else 0.05), name
            seen += 1
    assert seen == len(names)
    scales = sorted({g["lr_scale"] for g in optimizer.param_groups})
    assert scales == pytest.approx([0.75 ** k for k in range(4, -1, -1)])
    # timm leaves every group's lr at the base lr: the schedule must multiply by lr_scale (timm's schedulers do).
    assert all(g["lr"] == 1e-3 for g in optimizer.param_groups)


def test_layer_decay_through_a_wrapper_with_a_head():
    from timm.optim import create_optimizer_v2

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = tiny_vit()
            self.head = nn.Linear(16, 5)

        def group_matcher(self, coarse=False):
            groups = self.backbone.group_matcher(coarse, prefix="backbone.")
            groups["norm"] += "|^head"
            return groups

    model = Classifier()
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            layer = _layer_of(names[id(p)], 3, prefix="backbone.")
            assert group["lr_scale"] == pytest.approx(0.5 ** (3 + 1 - layer)), names[id(p)]
