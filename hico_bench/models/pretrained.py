"""Backbone weights from checkpoint files, whoever wrote them: the one loading path of hico-bench.

:func:`load_pretrained` builds a backbone by name (:func:`~hico_bench.models.backbones.build_backbone`) and fills
it, strictly, from a file in one of these formats, detected from the file or named with ``format=``:

- ``"hico-bench"``: this project's pretraining checkpoint (``hico_bench/train/loop.py::_state``): a dict with
  ``"format": "hico-bench-pretrain-v1"``, ``"backbone_name"``, ``"backbone_kwargs"`` and ``"model"``, the pretraining
  model's state (``backbone.*`` and the pretraining heads ``g.*``, ``h.*``, ``phi.*``). A checkpoint of another
  backbone, or of the same backbone with other options, is refused naming both.
- ``"official"``: the backbone's upstream layout, translated by ``CONVERTERS[backbone]``. For ``s3dg`` that is the
  layout of the official HiCo / TAdaConv code (pytorch-video-understanding ``.pyth`` files, weights under
  ``"model_state"``; an EMA copy under ``"model_ema_state"`` is not read), see :func:`convert_official_s3dg`; for
  ``vit_s16`` / ``vit_b16`` VideoMAE's published ``"model"`` / ``"module"`` state dicts (pretraining files with
  ``encoder.`` and a decoder, or fine-tuned ones), see :func:`convert_videomae`.
- ``"state_dict"``: a state dict in this project's own naming, bare or under ``"model_state"``, ``"state_dict"``,
  ``"model"`` or ``"module"``, its keys optionally prefixed with ``module.`` (DistributedDataParallel) and/or
  ``backbone.``.

Auto-detection: a dict with ``"backbone_name"`` or hico-bench's ``"format"`` is ``hico-bench``; otherwise the state
dict is found (the dict itself, or the first of the wrapper keys above that holds one) and, when the asked backbone
has a converter that recognises it, it is ``official``; anything else is ``state_dict``.

Everything outside the backbone is dropped only when it is a pretraining or classification head (top-level names
``g.``, ``h.``, ``phi.``, ``head.``, ``fc.``), as the official ``strict=False`` fine-tuning load drops the head; any
other surplus tensor, any missing one and any shape mismatch is an error of one sentence naming the file and the
first keys. Files are read with ``torch.load(..., weights_only=True)`` only: nothing in them is executed.

Adding a converter for another backbone: write ``convert(state, source) -> dict | None`` and add it to
:data:`CONVERTERS` under the backbone's name in :data:`~hico_bench.models.backbones.BACKBONES`. It receives the file's
state dict with any ``module.`` prefix removed (other prefixes, such as ``backbone.`` or ``encoder.``, are left for it
to interpret), returns ``None`` when the state is not in the layout it knows (the generic ``state_dict`` path is then
tried), and otherwise returns the state in the backbone's own names; a broken file of its layout is a
:class:`~hico_bench.errors.UserError` naming ``source``. The strict check against the built backbone runs after it.
Keep the module defining the converter free of a module-level import of this one (this module imports it).
"""

from __future__ import annotations

import functools

import os
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from hico_bench.errors import UserError, choice_error
from hico_bench.models.backbones import BACKBONES, build_backbone

#: The values of ``format=``.
FORMATS = ("auto", "hico-bench", "official", "state_dict")
#: The ``"format"`` value of hico-bench's pretraining checkpoints (``hico_bench/train/loop.py::_state``).
HICO_BENCH_FORMAT = "hico-bench-pretrain-v1"
#: Keys under which a file may hold its state dict, tried in this order when the file is not a state dict itself.
WRAPPER_KEYS = ("model_state", "state_dict", "model", "module")
#: Top-level module names of pretraining and classification heads, dropped when they are outside the backbone.
HEAD_PREFIXES = ("g.", "h.", "phi.", "head.", "fc.")

Converter = Callable[[Mapping[str, Tensor], str], "dict[str, Tensor] | None"]


# ---------------------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | os.PathLike) -> Mapping[str, Any]:
    """The top-level dict of the checkpoint file at ``path``, loaded on the CPU with ``weights_only=True``.

    A missing file, a directory, a file that is not a PyTorch checkpoint, one that needs pickled Python objects
    beyond tensors and plain containers, and one whose top level is not a dict are each a :class:`UserError`.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory, not a checkpoint file.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every unpickling failure is one of the two user-facing problems below
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" ({found.group(1)})" if found else ""
            raise UserError(
                f"checkpoint {path} holds pickled Python objects{what} beyond tensors and plain containers, which "
                f"are never unpickled from a file (weights_only=True); re-save just its state dict with torch.save."
            ) from None
        first_line = text.strip().splitlines()[0] if text.strip() else "no detail"
        raise UserError(
            f"checkpoint {path} is not a PyTorch checkpoint file ({exc.__class__.__name__}: {first_line})."
        ) from None
    if not isinstance(obj, Mapping):
        raise UserError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict of weights.")
    return obj


# ------------------------------------------------------------------------------------------------ helpers on names


def _few(keys: Iterable[str], n: int = 3) -> str:
    """``'a', 'b', 'c' and 4 more``: the first ``n`` keys quoted, then how many were left out."""
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _n(count: int, noun: str) -> str:
    """``1 key``, ``3 keys``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _is_state(obj: Any) -> bool:
    """True for a non-empty mapping of string names to tensors."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()))


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    """Equal shape, dtype and values (one shared tensor saved under two names is equal by construction)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.data_ptr() == b.data_ptr() and a.stride() == b.stride():
        return True
    return torch.equal(a, b)


def _merge(renamed: Iterable[tuple[str, str, Tensor]], source: str) -> dict[str, Tensor]:
    """``{new name: tensor}`` from ``(file name, new name, tensor)``; two file names for one new name must agree.

    A checkpoint may hold one tensor under two names (the official S3D-G's ``block*`` aliases; ``x`` and
    ``module.x``). Such entries are kept once when they are equal; when they differ the file is ambiguous and
    that is an error naming both.
    """
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for file_name, new_name, value in renamed:
        if new_name in out:
            if not _same_tensor(out[new_name], value):
                raise UserError(
                    f"{source} holds two different tensors for {new_name!r}: {origin[new_name]!r} and "
                    f"{file_name!r} (they should be one tensor saved under two names)."
                )
            continue
        out[new_name] = value
        origin[new_name] = file_name
    return out


def _strip_module(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """The state with every leading DistributedDataParallel / DataParallel ``module.`` removed from its names."""
    def strip(key: str) -> str:
        while key.startswith("module."):
            key = key[len("module."):]
        return key

    return _merge(((k, strip(k), v) for k, v in state.items()), source)


def _split_backbone(state: Mapping[str, Tensor], source: str, own_keys: Collection[str] = ()) -> dict[str, Tensor]:
    """The backbone's part of a state dict (``module.`` already removed), still to be checked strictly.

    With ``backbone.*`` names present, those are the backbone (prefix removed), head entries outside them are
    dropped, and any other entry outside them is an error. Without, every entry belongs to the backbone except head
    entries (``HEAD_PREFIXES``) whose names are not among ``own_keys``, the target backbone's own names.
    """
    if any(k.startswith("backbone.") for k in state):
        inside = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        outside = [k for k in state if not k.startswith("backbone.") and not k.startswith(HEAD_PREFIXES)]
        if outside:
            raise UserError(
                f"{source} holds {_n(len(outside), 'tensor')} outside its 'backbone.*' weights that belong to no "
                f"pretraining or classification head ({_few(outside)}), so it is not clear what it holds."
            )
        return inside
    return {k: v for k, v in state.items() if not (k.startswith(HEAD_PREFIXES) and k not in own_keys)}


def _find_state(checkpoint: Mapping[str, Any], source: str) -> Mapping[str, Tensor]:
    """The checkpoint itself when it is a state dict, else the first state dict under one of ``WRAPPER_KEYS``."""
    if _is_state(checkpoint):
        return checkpoint
    for key in WRAPPER_KEYS:
        if _is_state(checkpoint.get(key)):
            return checkpoint[key]
    wrappers = ", ".join(repr(k) for k in WRAPPER_KEYS)
    raise UserError(
        f"{source} holds no state dict: neither its top level nor any of {wrappers} maps names to tensors "
        f"(its top-level keys: {_few(map(str, checkpoint), 6) or 'none'})."
    )


# ------------------------------------------------------------------------------------- official S3D-G (HiCo/TAdaConv)

# Facts from alibaba-mmai-research/HiCo (same files in alibaba-mmai-research/TAdaConv):
# - models/base/backbone.py, Inception3D: stages Conv_1a (STConv3d, the STEM.NAME of configs/pool/backbone/s3dg.yaml),
#   MaxPool_2a, Conv_2b (InceptionBaseConv3D), Conv_2c (STConv3d), MaxPool_3a, Mixed_3b, Mixed_3c, MaxPool_4a,
#   Mixed_4b..4f, MaxPool_5a, Mixed_5b, Mixed_5c; every stage is registered a second time inside
#   block1 = Sequential(Conv_1a), block2 = Sequential(MaxPool_2a, Conv_2b, Conv_2c),
#   block3 = Sequential(MaxPool_3a, Mixed_3b, Mixed_3c), block4 = Sequential(MaxPool_4a, Mixed_4b, ..., Mixed_4f),
#   block5 = Sequential(MaxPool_5a, Mixed_5b, Mixed_5c), so the state dict holds each tensor under both names.
# - models/base/base_blocks.py, InceptionBaseConv3D: conv, bn.
# - models/module_zoo/branches/s3dg_branch.py, STConv3d: conv1, conv2, bn1, bn2 (registered in that order);
#   InceptionBlock3D: branch0 = Sequential(base), branch1/2 = Sequential(base, STConv3d),
#   branch3 = Sequential(MaxPool3d, base), gating_b0..gating_b3 = SelfGating (fc).
# - models/base/models.py, BaseVideoModel: backbone, head; utils/checkpoint.py saves {"model_state": the model's
#   state dict (DDP wrapper removed), "optimizer_state", "epoch", "cfg" (a JSON string)} and loads "model_state".

#: Official stage name -> this project's attribute of :class:`~hico_bench.models.backbones.S3DG`.
S3DG_OFFICIAL_STAGES = {
    "Conv_1a": "conv_1a", "Conv_2b": "conv_2b", "Conv_2c": "conv_2c",
    **{f"Mixed_{s}": f"mixed_{s}" for s in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")},
}
#: Official ``blockN`` Sequential -> the stages it holds, by index (max pools hold no tensors).
S3DG_OFFICIAL_BLOCKS = {
    "block1": ("Conv_1a",),
    "block2": ("MaxPool_2a", "Conv_2b", "Conv_2c"),
    "block3": ("MaxPool_3a", "Mixed_3b", "Mixed_3c"),
    "block4": ("MaxPool_4a", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"),
    "block5": ("MaxPool_5a", "Mixed_5b", "Mixed_5c"),
}
_STCONV_LAYERS = {name: name for name in ("conv1", "bn1", "conv2", "bn2")}
_BASIC_LAYERS = {"conv": "conv", "bn": "bn"}
_INCEPTION_LAYERS = {
    **{f"branch0.0.{m}": f"branch0.{m}" for m in ("conv", "bn")},  # official branch0 is a one-layer Sequential
    **{f"branch{b}.0.{m}": f"branch{b}.0.{m}" for b in (1, 2) for m in ("conv", "bn")},
    **{f"branch{b}.1.{m}": f"branch{b}.1.{m}" for b in (1, 2) for m in ("conv1", "bn1", "conv2", "bn2")},
    **{f"branch3.1.{m}": f"branch3.1.{m}" for m in ("conv", "bn")},
    **{f"gating_b{b}.fc": f"gate{b}.fc" for b in range(4)},
}
#: Official stage name -> {official layer path inside the stage: ours}.
_S3DG_STAGE_LAYERS = {
    "Conv_1a": _STCONV_LAYERS, "Conv_2b": _BASIC_LAYERS, "Conv_2c": _STCONV_LAYERS,
    **{stage: _INCEPTION_LAYERS for stage in S3DG_OFFICIAL_STAGES if stage.startswith("Mixed_")},
}


def official_s3dg_name(name: str) -> str | None:
    """This project's S3D-G name of the official backbone tensor ``name`` (no ``backbone.`` prefix), else None.

    ``Conv_1a.bn1.weight`` and its alias ``block1.0.bn1.weight`` both give ``conv_1a.bn1.weight``;
    ``Mixed_3b.branch0.0.conv.weight`` gives ``mixed_3b.branch0.conv.weight``; ``Mixed_4c.gating_b2.fc.bias``
    gives ``mixed_4c.gate2.fc.bias``. Every layer is matched by its name, never by its position in the file.
    """
    parts = name.split(".")
    if parts[0] in S3DG_OFFICIAL_BLOCKS:
        members = S3DG_OFFICIAL_BLOCKS[parts[0]]
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) >= len(members):
            return None
        stage, rest = members[int(parts[1])], parts[2:]
    else:
        stage, rest = parts[0], parts[1:]
    layers = _S3DG_STAGE_LAYERS.get(stage)
    if layers is None or len(rest) < 2:
        return None
    ours = layers.get(".".join(rest[:-1]))
    if ours is None:
        return None
    return f"{S3DG_OFFICIAL_STAGES[stage]}.{ours}.{rest[-1]}"


def convert_official_s3dg(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor] | None:
    """The official HiCo / TAdaConv S3D-G state (``backbone.Conv_1a...``) in this project's names, else None.

    ``state`` is the file's ``model_state`` without ``module.`` prefixes; its ``head.*`` entries are dropped. It is
    recognised by official stage or block names (``Conv_1a``, ``Mixed_3b``, ``block1`` ...), with or without the
    ``backbone.`` prefix. Each official name maps to one name of ours (:func:`official_s3dg_name`); a name of ours
    may come from a stage name and its ``block*`` alias, which must hold the same tensor (an error naming both
    otherwise), and either one alone is enough. An official name with no counterpart is an error; a tensor of ours
    that the file lacks is left to the strict check.
    """
    body = _split_backbone(state, source)
    first = {k.split(".", 1)[0] for k in body}
    if not first & (set(S3DG_OFFICIAL_STAGES) | set(S3DG_OFFICIAL_BLOCKS)):
        return None
    renamed = [(k, official_s3dg_name(k), v) for k, v in body.items()]
    unknown = [k for k, ours, _ in renamed if ours is None]
    if unknown:
        raise UserError(
            f"{source} is in the official S3D-G layout but holds {_n(len(unknown), 'tensor')} with no "
            f"counterpart in hico-bench's S3D-G ({_few(unknown)})."
        )
    return _merge(renamed, source)


def convert_videomae(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor] | None:
    """VideoMAE's published layouts (MCG-NJU/VideoMAE: pretraining ``encoder.*`` + decoder, or fine-tuned with
    ``attn.q_bias`` / ``attn.v_bias`` and a head) into :class:`~hico_bench.models.vit.VideoViT`'s names; None when
    ``state`` holds no VideoMAE-style attention biases (then the generic path is tried)."""
    if not any(k.endswith(("attn.q_bias", "attn.v_bias")) for k in state):
        return None
    from hico_bench.models.vit import videomae_to_backbone_state

    try:
        return videomae_to_backbone_state(dict(state))
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


#: Backbone name -> converter from its upstream checkpoint layout (see the module docstring); consulted before the
#: generic ``state_dict`` path.
CONVERTERS: dict[str, Converter] = {
    "s3dg": convert_official_s3dg,
    "vit_s16": convert_videomae,
    "vit_b16": convert_videomae,
}


# ---------------------------------------------------------------------------------------------- formats and loading


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively, so that options from YAML and from Python compare equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_hico_bench(checkpoint: Mapping[str, Any]) -> bool:
    return checkpoint.get("format") == HICO_BENCH_FORMAT or "backbone_name" in checkpoint


def backbone_state(checkpoint: Mapping[str, Any], backbone: str, backbone_kwargs: Mapping[str, Any] | None = None,
                   *, format: str = "auto", source: str = "the checkpoint",
                   own_keys: Collection[str] = ()) -> tuple[str, dict[str, Tensor]]:
    """``(format, state)``: the format of a loaded checkpoint and its backbone weights in this project's names.

    ``checkpoint`` is what :func:`read_checkpoint` returned; ``backbone`` and ``backbone_kwargs`` are what is asked
    for (a hico-bench checkpoint must hold exactly that); ``own_keys`` are the target backbone's state names (they
    keep a backbone tensor named like a head from being dropped). The state is not yet checked against a model.
    """
    if format not in FORMATS:
        raise choice_error("checkpoint format", format, FORMATS)
    backbone_kwargs = dict(backbone_kwargs or {})
    tag = checkpoint.get("format")
    if format in ("auto", "hico-bench") and isinstance(tag, str) and tag.startswith("hico-bench") \
            and tag != HICO_BENCH_FORMAT:
        raise UserError(f"{source} has format {tag!r}, which this version of hico-bench cannot read "
                        f"(it reads {HICO_BENCH_FORMAT!r}).")
    if format == "hico-bench" or (format == "auto" and _is_hico_bench(checkpoint)):
        if not _is_hico_bench(checkpoint):
            raise UserError(f"{source} is not a hico-bench pretraining checkpoint (it has no 'backbone_name').")
        held, held_kwargs = checkpoint.get("backbone_name"), checkpoint.get("backbone_kwargs") or {}
        if held != backbone or _plain(held_kwargs) != _plain(backbone_kwargs):
            def named(name, kwargs):
                return f"{name!r} backbone" + (f" with {dict(kwargs)}" if kwargs else "")
            raise UserError(
                f"{source} holds a {named(held, held_kwargs)} but a {named(backbone, backbone_kwargs)} was asked "
                f"for; set model.backbone (and model.backbone_kwargs) to match."
            )
        model_state = checkpoint.get("model")
        if not _is_state(model_state):
            raise UserError(f"{source} has no model weights under 'model'.")
        state = _strip_module(model_state, source)
        if not any(k.startswith("backbone.") for k in state):
            raise UserError(f"{source} holds no 'backbone.*' weights, so it cannot initialise the {backbone} "
                            f"backbone.")
        return "hico-bench", _split_backbone(state, source)

    state = _strip_module(_find_state(checkpoint, source), source)
    converter = CONVERTERS.get(backbone)
    if format == "official":
        if converter is None:
            raise UserError(f"{source} cannot be read in an official layout for the {backbone} backbone: no "
                            f"converter is registered for it (converters exist for: {', '.join(sorted(CONVERTERS))}).")
        converted = converter(state, source)
        if converted is None:
            raise UserError(f"{source} is not in the official layout of the {backbone} backbone "
                            f"(its first keys: {_few(state)}).")
        return "official", converted
    if format == "auto" and converter is not None:
        converted = converter(state, source)
        if converted is not None:
            return "official", converted
    return "state_dict", _split_backbone(state, source, own_keys)


def identify_backbone(state: Mapping[str, Tensor]) -> str | None:
    """The names in BACKBONES whose default build has exactly the tensor names of ``state`` (``"x3d_s or x3d_m"``
    when several have), or None.

    Shapes are not compared (``tiny`` of any width matches ``tiny``). Built once per name on the meta device (no
    memory, no init); a backbone that cannot be built here (its package missing) is skipped.
    """
    keys = frozenset(state)
    names = [name for name in BACKBONES if _tensor_names(name) == keys]
    return " or ".join(names) or None


@functools.lru_cache(maxsize=None)
def _tensor_names(name: str) -> frozenset[str]:
    try:
        with torch.device("meta"):
            return frozenset(BACKBONES[name]().state_dict())
    except (UserError, ImportError):
        return frozenset()


def load_state_strict(backbone: nn.Module, state: Mapping[str, Tensor], source: str = "the checkpoint") -> nn.Module:
    """Load ``state`` into ``backbone`` by name, requiring exactly its names and shapes; returns ``backbone``.

    A missing name, a surplus one or a shape mismatch is one :class:`UserError` naming ``source``, the first keys of
    each kind (and how many more) and, when the names are those of another backbone, which one.
    """
    own = backbone.state_dict()
    wanted = getattr(backbone, "backbone_name", None) or type(backbone).__name__
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or reshaped:
        problems = []
        if missing:
            problems.append(f"{_n(len(missing), 'missing key')} ({_few(missing)})")
        if unexpected:
            problems.append(f"{_n(len(unexpected), 'unexpected key')} ({_few(unexpected)})")
        if reshaped:
            shown = ", ".join(f"{k!r} is {tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in the model"
                              for k in reshaped[:3])
            more = f" and {len(reshaped) - 3} more" if len(reshaped) > 3 else ""
            problems.append(f"{_n(len(reshaped), 'tensor')} of another shape ({shown}{more})")
        held = identify_backbone(state)
        other = f" (its tensor names are those of the {held} backbone)" if held and held != wanted else ""
        raise UserError(f"{source} does not fit the {wanted} backbone{other}: {'; '.join(problems)}.")
    backbone.load_state_dict(state, strict=True)
    return backbone


def load_pretrained(path: str | os.PathLike, backbone: str, *, format: str = "auto",
                    clip: tuple[int, int] | None = None, **backbone_kwargs) -> nn.Module:
    """Build the backbone called ``backbone`` (options ``backbone_kwargs``, input ``clip`` = (frames, size) as
    :func:`~hico_bench.models.backbones.build_backbone` takes it) and load its weights from ``path``.

    ``format`` is ``"auto"`` (detected from the file), ``"hico-bench"``, ``"official"`` or ``"state_dict"`` (see the
    module docstring). The load is strict: every tensor of the backbone comes from the file, by name, with its
    shape, and the file holds nothing else but pretraining / classification heads. The backbone's random
    initialisation draws from torch's global RNG exactly as :func:`build_backbone` does, before the weights are
    replaced. Returns the backbone in training mode, as built.
    """
    if format not in FORMATS:
        raise choice_error("checkpoint format", format, FORMATS)
    source = f"checkpoint {path}"
    checkpoint = read_checkpoint(path)
    model = build_backbone(backbone, clip, **backbone_kwargs)
    _, state = backbone_state(checkpoint, backbone, backbone_kwargs, format=format, source=source,
                              own_keys=model.state_dict().keys())
    return load_state_strict(model, state, source)
