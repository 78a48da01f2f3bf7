"""VideoMAE-style video ViTs (``vit_s16``, ``vit_b16``) and the converter from VideoMAE's checkpoint layout.

:class:`VideoViT` follows VideoMAE (MCG-NJU/VideoMAE, ``modeling_finetune.py`` / ``modeling_pretrain.py``):

- tubelet embedding ``patch_embed.proj`` = Conv3d(3, D, kernel (2, 16, 16), stride (2, 16, 16)): a 16x112x112 clip
  gives 8x7x7 = 392 tokens, ordered time, then height, then width;
- VideoMAE's fixed 1-D sinusoid table over the flattened token index (``get_sinusoid_encoding_table``: angle
  ``pos / 10000 ** (2 * (j // 2) / D)``, sine on even channels j and cosine on odd ones, computed in float64 and
  stored as float32), added to the tokens. It is not a parameter and not in the state dict. It is computed once at
  build time for ``frames`` x ``size`` x ``size`` clips (options, default 16 x 112) and kept as a non-persistent
  buffer; a clip whose token count differs gets a table computed on the fly for its own count;
- joint space-time attention over all tokens: ``depth`` timm ``Block`` s (pre-norm LayerNorm eps 1e-6, attention
  with a qkv bias, GELU MLP of ratio 4, stochastic depth rising linearly from 0 to ``drop_path_rate``);
- a final LayerNorm ``norm`` applied to every token (VideoMAE's pretraining encoder layout), then the mean over
  tokens as the pooled feature, ``out_dim`` = D. ``features(x)`` returns the normalised tokens as (B, D, T/2,
  H/16, W/16) so that an attentive probe treats every backbone alike; ``forward(x)`` is their mean.

Kept: ``norm`` (per token, before pooling), not VideoMAE's fine-tuning ``fc_norm`` (applied to the mean): with it
pooling stays a plain mean of ``features``, as for every other backbone, and the token map an attentive probe
reads is normalised. A VideoMAE pretraining file loads exactly (its ``encoder.norm`` is this ``norm``).
A fine-tuned VideoMAE file has ``fc_norm`` and no ``norm``; :func:`videomae_to_backbone_state` then takes
``fc_norm``'s weight and bias as ``norm``'s. Its blocks are then exactly VideoMAE's, but the pooled feature is
mean(LN(token)) where VideoMAE computed LN(mean(token)): close, not equal.

Names match VideoMAE's checkpoints (``patch_embed.proj``, ``blocks.N.norm1``, ``blocks.N.attn.qkv``,
``blocks.N.attn.proj``, ``blocks.N.norm2``, ``blocks.N.mlp.fc1`` / ``fc2``, ``norm``) except one: VideoMAE keeps
``attn.q_bias`` and ``attn.v_bias`` and no key bias, timm's attention a single ``attn.qkv.bias``. The converter
writes ``[q_bias, 0, v_bias]``. A key bias changes nothing: it adds ``q . b_k`` to every logit of a query, and
softmax is invariant to that, so the zero block stays a faithful copy (its gradient is zero up to rounding).
VideoMAE's layer scale (``gamma_1`` / ``gamma_2``, off in its published models) and learnable position
embeddings are not supported; the converter says so.

Initialisation is VideoMAE's pretraining encoder's: Xavier-uniform Linear weights, zero biases, LayerNorm 1 / 0,
PyTorch's default for the tubelet Conv3d.

Layer-wise lr decay: :meth:`VideoViT.group_matcher` and :meth:`VideoViT.no_weight_decay` are what timm's
``param_groups_layer_decay`` reads (``timm.optim.create_optimizer_v2(model, "adamw", lr=..., weight_decay=...,
layer_decay=0.75)``): patch embedding = layer 0, block i = layer i + 1, the final norm = layer depth + 1, so the
lr scale of layer l is ``layer_decay ** (depth + 1 - l)``, as VideoMAE's ``LayerDecayValueAssigner``.

timm is imported when a ViT is built, not when this module is imported (it takes seconds).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial

import torch
from torch import Tensor, nn

from hico_bench.errors import UserError

TUBELET = 2
PATCH = 16
LN_EPS = 1e-6

#: Keys of one VideoMAE block (relative to ``blocks.N.``) as VideoMAE stores them.
VIDEOMAE_BLOCK_KEYS = (
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.q_bias", "attn.v_bias", "attn.proj.weight",
    "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
    "mlp.fc2.bias",
)
#: Prefixes of a VideoMAE pretraining file that are not the encoder (dropped).
VIDEOMAE_PRETRAIN_ONLY = ("decoder.", "encoder_to_decoder.", "mask_token")
#: Prefix of a fine-tuned file's classifier (dropped).
VIDEOMAE_HEAD = "head."


def sinusoid_table(num_tokens: int, dim: int) -> Tensor:
    """VideoMAE's position table (num_tokens, dim), float32 on the CPU; see the module docstring for the formula."""
    cpu64 = {"dtype": torch.float64, "device": "cpu"}
    pos = torch.arange(num_tokens, **cpu64)[:, None]
    j = torch.arange(dim, **cpu64)
    angle = pos / torch.pow(torch.tensor(10000.0, **cpu64), 2 * torch.floor(j / 2) / dim)
    return torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


class TubeletEmbed(nn.Module):
    """``proj`` = Conv3d(in, D, kernel = stride = (2, 16, 16)); returns the (B, D, T/2, H/16, W/16) grid."""

    def __init__(self, embed_dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, embed_dim, (TUBELET, PATCH, PATCH), stride=(TUBELET, PATCH, PATCH))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class VideoViT(nn.Module):
    """VideoMAE-style video ViT with joint space-time attention (see the module docstring)."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0, frames: int = 16,
                 size: int = 112, drop_path_rate: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.patch_embed = TubeletEmbed(embed_dim, in_channels)
        num_tokens = (frames // TUBELET) * (size // PATCH) ** 2
        # Built on the CPU whatever the default device, so that a model built on the meta device still has it.
        self.register_buffer("pos_embed", sinusoid_table(num_tokens, embed_dim), persistent=False)
        norm = partial(nn.LayerNorm, eps=LN_EPS)
        rates = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rate, norm_layer=norm)
            for rate in rates
        )
        self.norm = norm(embed_dim)
        self.out_dim = embed_dim
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _position(self, tokens: Tensor) -> Tensor:
        n, dim = tokens.shape[1], tokens.shape[2]
        table = self.pos_embed if self.pos_embed.shape[0] == n else sinusoid_table(n, dim)
        return table.to(device=tokens.device, dtype=tokens.dtype)

    def features(self, x: Tensor) -> Tensor:
        t, h, w = x.shape[2:]
        if t % TUBELET or h % PATCH or w % PATCH:
            raise UserError(f"a ViT backbone needs clips whose frames are a multiple of {TUBELET} and whose height "
                            f"and width are multiples of {PATCH}; got {t}x{h}x{w}.")
        grid = self.patch_embed(x)
        b, d, gt, gh, gw = grid.shape
        tokens = grid.flatten(2).transpose(1, 2)
        tokens = tokens + self._position(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(b, d, gt, gh, gw)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3, 4))

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False, prefix: str = "") -> dict[str, str]:
        """Layer groups for timm's layer-wise lr decay: ``stem`` (patch embedding), one group per block, ``norm``.

        ``coarse`` changes nothing (every block is a group either way). ``prefix`` is the module's name inside a
        wrapper, e.g. ``"backbone."``; a wrapper adds its head to the last layer with ``groups["norm"] += "|^head"``.
        """
        p = re.escape(prefix)
        return {"stem": rf"^{p}patch_embed", "blocks": rf"^{p}blocks\.(\d+)", "norm": rf"^{p}norm"}

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameter names timm must not decay beyond its default (all 1-d parameters): none.

        The position table is a buffer, not a parameter, and there is no class token.
        """
        return set()


def build_vit_s16(embed_dim: int = 384, depth: int = 12, num_heads: int = 6, mlp_ratio: float = 4.0,
                  frames: int = 16, size: int = 112, drop_path_rate: float = 0.0) -> VideoViT:
    """ViT-S/16 as VideoMAE's ``vit_small_patch16_224``: D 384, 12 blocks, 6 heads, 384-d features."""
    return _build_vit(embed_dim, depth, num_heads, mlp_ratio, frames, size, drop_path_rate)


def build_vit_b16(embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                  frames: int = 16, size: int = 112, drop_path_rate: float = 0.0) -> VideoViT:
    """ViT-B/16 as VideoMAE's ``vit_base_patch16_224``: D 768, 12 blocks, 12 heads, 768-d features."""
    return _build_vit(embed_dim, depth, num_heads, mlp_ratio, frames, size, drop_path_rate)


def _build_vit(embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, frames: int, size: int,
               drop_path_rate: float) -> VideoViT:
    if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads or depth < 1:
        raise UserError(f"a ViT backbone needs depth >= 1 and embed_dim divisible by num_heads; got "
                        f"embed_dim={embed_dim!r}, depth={depth!r}, num_heads={num_heads!r}.")
    if frames < TUBELET or frames % TUBELET or size < PATCH or size % PATCH:
        raise UserError(f"a ViT backbone needs frames a multiple of {TUBELET} and size a multiple of {PATCH}; got "
                        f"frames={frames!r}, size={size!r}.")
    if not 0.0 <= drop_path_rate < 1.0:
        raise UserError(f"backbone option drop_path_rate={drop_path_rate!r} must be in [0, 1).")
    return VideoViT(embed_dim, depth, num_heads, mlp_ratio=mlp_ratio, frames=frames, size=size,
                    drop_path_rate=drop_path_rate)


def _weights(checkpoint: Mapping) -> Mapping:
    """The state dict inside a loaded VideoMAE file: under ``model``, else ``module``, else the file itself."""
    if not isinstance(checkpoint, Mapping):
        raise UserError(f"a VideoMAE checkpoint must be a dict of weights, got {type(checkpoint).__name__}.")
    for key in ("model", "module"):
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def _listing(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def videomae_to_backbone_state(checkpoint: Mapping) -> dict[str, Tensor]:
    """Convert a loaded VideoMAE file into a state dict that loads strictly into a :class:`VideoViT` of its size.

    ``checkpoint`` is what ``torch.load`` returns for a VideoMAE file: the weights under ``"model"`` (VideoMAE's own
    saves), under ``"module"`` (DeepSpeed saves), or the bare state dict. Pretraining files (encoder under
    ``encoder.``, plus ``decoder.*``, ``encoder_to_decoder.*``, ``mask_token``) keep the encoder, unprefixed;
    fine-tuned files drop ``head.*``. Per block, ``attn.q_bias`` and ``attn.v_bias`` become ``attn.qkv.bias`` =
    ``[q_bias, 0, v_bias]``. The final norm is ``norm``, or, when the file has no ``norm`` (a fine-tuned file
    with mean pooling), ``fc_norm`` (see the module docstring); when it has both, ``fc_norm`` is dropped.

    Raises :class:`UserError` when keys a ViT needs are missing or when the file holds weights this ViT cannot
    take (layer scale, learnable position embeddings, a class token).
    """
    weights = _weights(checkpoint)
    pretraining = any(str(k).startswith("encoder.") for k in weights)
    state: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, value in weights.items():
        key = str(key)
        if pretraining:
            if key.startswith("encoder."):
                state[key[len("encoder."):]] = value
            elif not key.startswith(VIDEOMAE_PRETRAIN_ONLY):
                unexpected.append(key)
        elif not key.startswith(VIDEOMAE_HEAD):
            state[key] = value

    if "norm.weight" not in state and "fc_norm.weight" in state:
        state["norm.weight"] = state.pop("fc_norm.weight")
        if "fc_norm.bias" in state:
            state["norm.bias"] = state.pop("fc_norm.bias")
    for key in ("fc_norm.weight", "fc_norm.bias"):
        state.pop(key, None)

    block_ids = sorted({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    depth = block_ids[-1] + 1 if block_ids else 0
    needed = ["patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"]
    needed += [f"blocks.{i}.{k}" for i in range(depth) for k in VIDEOMAE_BLOCK_KEYS]
    missing = [k for k in needed if k not in state]
    if depth == 0:
        missing.insert(0, "blocks.0.*")
    if missing:
        raise UserError(f"the VideoMAE checkpoint lacks {len(missing)} weights a ViT backbone needs: "
                        f"{_listing(missing)}.")
    unexpected += [k for k in state if k not in set(needed)]
    if unexpected:
        raise UserError(f"the VideoMAE checkpoint holds weights a ViT backbone has no place for (layer scale, "
                        f"learnable position embeddings and class tokens are not supported): {_listing(unexpected)}.")

    out: dict[str, Tensor] = {}
    for key in needed:
        if key.endswith("attn.q_bias"):
            q = state[key]
            v = state[key[: -len("q_bias")] + "v_bias"]
            out[key[: -len("q_bias")] + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
        elif not key.endswith("attn.v_bias"):
            out[key] = state[key]
    return out

