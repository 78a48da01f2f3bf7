"""Loading backbone weights from files: hico-bench's checkpoints, the official HiCo S3D-G ``.pyth``, plain state dicts.

The official layout is written here by walking this project's S3D-G module by module (the test's own inverse of
the loader's name mapping), in the official registration order, with the ``block1..block5`` aliases, a ``head.*``
entry, the ``model_state`` wrapper and the ``backbone.`` prefix, as ``utils/checkpoint.py::save_checkpoint`` of the
official code writes it.
"""

import json

import pytest
import torch

from hico_bench.errors import UserError
from hico_bench.models import CONVERTERS, load_pretrained
from hico_bench.models.backbones import S3DG, build_backbone
from hico_bench.method import HiCoModel
from hico_bench.models.heads import ClassifierModel
from hico_bench.models.pretrained import (
    backbone_state,
    convert_official_s3dg,
    identify_backbone,
    load_state_strict,
    official_s3dg_name,
    read_checkpoint,
)
from hico_bench.train.checkpoint import save_checkpoint

TINY = {"out_dim": 16, "widths": (8, 8, 16)}

# ------------------------------------------------------------------------------------ the official layout, test side

# Official Inception3D (models/base/backbone.py): block name -> its members in order, as
# (official stage name, our S3DG attribute, kind); max pools hold no tensors.
OFFICIAL_BLOCKS = [
    ("block1", [("Conv_1a", "conv_1a", "st")]),
    ("block2", [("MaxPool_2a", None, None), ("Conv_2b", "conv_2b", "basic"), ("Conv_2c", "conv_2c", "st")]),
    ("block3", [("MaxPool_3a", None, None), ("Mixed_3b", "mixed_3b", "mixed"), ("Mixed_3c", "mixed_3c", "mixed")]),
    ("block4", [("MaxPool_4a", None, None)] + [(f"Mixed_4{c}", f"mixed_4{c}", "mixed") for c in "bcdef"]),
    ("block5", [("MaxPool_5a", None, None), ("Mixed_5b", "mixed_5b", "mixed"), ("Mixed_5c", "mixed_5c", "mixed")]),
]


def _prefixed(prefix, state):
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _layers(module, names):
    """The tensors of ``module``'s sub-layers ``names``, in the order given (the official registration order)."""
    out = {}
    for name in names:
        out.update(_prefixed(name, getattr(module, name).state_dict()))
    return out


def _official_stconv(st):  # official STConv3d registers conv1, conv2, bn1, bn2 in this order
    return _layers(st, ["conv1", "conv2", "bn1", "bn2"])


def _official_basic(conv):  # InceptionBaseConv3D: conv, bn
    return _layers(conv, ["conv", "bn"])


def _official_mixed(block):  # InceptionBlock3D: branch0..3 (Sequentials), then gating_b0..3
    out = _prefixed("branch0.0", _official_basic(block.branch0))
    for b in (1, 2):
        branch = getattr(block, f"branch{b}")
        out.update(_prefixed(f"branch{b}.0", _official_basic(branch[0])))
        out.update(_prefixed(f"branch{b}.1", _official_stconv(branch[1])))
    out.update(_prefixed("branch3.1", _official_basic(block.branch3[1])))
    for b in range(4):
        out.update(_prefixed(f"gating_b{b}.fc", getattr(block, f"gate{b}").fc.state_dict()))
    return out


def official_backbone_state(model: S3DG, aliases: bool = True) -> dict[str, torch.Tensor]:
    """``model``'s tensors under the official Inception3D names, in its state-dict order, block aliases included.

    The alias entries share the storage of the stage entries (as in a real state dict).
    """
    kinds = {"st": _official_stconv, "basic": _official_basic, "mixed": _official_mixed}
    out = {}
    for block, members in OFFICIAL_BLOCKS:
        for stage, attr, kind in members:
            if attr is not None:
                out.update(_prefixed(stage, kinds[kind](getattr(model, attr))))
        if aliases:
            for index, (stage, attr, kind) in enumerate(members):
                if attr is not None:
                    out.update(_prefixed(f"{block}.{index}", kinds[kind](getattr(model, attr))))
    return out


def official_file(path, model: S3DG, **backbone_overrides):
    """Save ``model`` as the official code saves a HiCo pretraining checkpoint (``.pyth``)."""
    backbone = official_backbone_state(model)
    backbone.update(backbone_overrides)
    state = {f"backbone.{k}": v for k, v in backbone.items()}
    state["head.mlp.linear1.weight"] = torch.randn(4, 1024)
    torch.save({"epoch": 3, "model_state": state, "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1}]},
                "cfg": json.dumps({"MODEL": {"NAME": "ContrastiveModel"}})}, path)
    return path


def randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor of ``model`` (weights, BN statistics, counters) set to a distinct random value, so that any two
    tensors swapped by a loader would change the model's output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                t.copy_(torch.randint(1, 1000, t.shape, generator=gen))
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() > 1:  # convolutions and the gating Linear layers: He-scaled, so activations stay finite
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / t[0].numel()) ** 0.5)
            elif name.endswith("weight"):  # BatchNorm gammas
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module")
def s3dg_source():
    torch.manual_seed(0)
    return randomised(build_backbone("s3dg"), seed=1).eval()


def one_line(exc_info, *needles):
    message = str(exc_info.value)
    assert "\n" not in message and message.endswith("."), message
    for needle in needles:
        assert needle in message, message
    return message


# -------------------------------------------------------------------------------------------- official S3D-G (.pyth)


def test_official_pyth_loads_with_every_tensor_by_name_and_the_same_features(tmp_path, s3dg_source):
    path = official_file(tmp_path / "checkpoint_epoch_00200.pyth", s3dg_source)
    torch.manual_seed(5)
    loaded = load_pretrained(path, "s3dg")
    source_state, loaded_state = s3dg_source.state_dict(), loaded.state_dict()
    assert list(loaded_state) == list(source_state)
    for name, value in source_state.items():
        assert torch.equal(loaded_state[name], value), name
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        expected, got = s3dg_source(x), loaded.eval()(x)
    assert expected.abs().sum() > 0 and torch.isfinite(expected).all()
    assert torch.equal(got, expected)


def test_official_layout_is_detected_and_every_official_name_maps_to_exactly_one_of_ours(s3dg_source):
    official = official_backbone_state(s3dg_source)
    ours = list(s3dg_source.state_dict())
    primary = {k: v for k, v in official.items() if not k.startswith("block")}
    aliases = {k: v for k, v in official.items() if k.startswith("block")}
    assert len(primary) == len(aliases) == len(ours)  # every layer of ours is registered twice officially
    assert sorted(official_s3dg_name(k) for k in primary) == sorted(ours)
    assert sorted(official_s3dg_name(k) for k in aliases) == sorted(ours)
    for name in aliases:  # the alias and the stage name give the same name of ours, for the same tensor
        stage = next(k for k in primary if primary[k].data_ptr() == aliases[name].data_ptr())
        assert official_s3dg_name(name) == official_s3dg_name(stage)
    fmt, state = backbone_state({"model_state": {f"module.backbone.{k}": v for k, v in official.items()}}, "s3dg")
    assert fmt == "official" and list(state) == [official_s3dg_name(k) for k in primary]


def test_a_naive_order_based_mapping_would_swap_tensors_of_equal_shape(s3dg_source):
    official = [k for k in official_backbone_state(s3dg_source) if not k.startswith("block")]
    ours = s3dg_source.state_dict()
    shapes = {k: tuple(v.shape) for k, v in official_backbone_state(s3dg_source).items()}
    # Zipping the file's order with ours pairs tensors of equal shape under different names: a shape check
    # would not catch it (the official STConv3d registers conv1, conv2, bn1, bn2; ours conv1, bn1, conv2, bn2).
    swapped = [(o, m) for o, m in zip(official, ours)
               if official_s3dg_name(o) != m and shapes[o] == tuple(ours[m].shape)]
    assert ("Conv_1a.bn1.weight", "conv_1a.bn1.bias") in swapped
    assert official[:3] == ["Conv_1a.conv1.weight", "Conv_1a.conv2.weight", "Conv_1a.bn1.weight"]
    # by name, bn1 and bn2 of an STConv3d (same shape) each land on their own namesake
    assert ours["conv_2c.bn1.weight"].shape == ours["conv_2c.bn2.weight"].shape
    crafted = {"backbone.Conv_2c.bn1.weight": torch.full((192,), 1.0),
               "backbone.block2.2.bn2.weight": torch.full((192,), 2.0),
               "backbone.Conv_2c.conv2.weight": torch.full((192, 192, 3, 1, 1), 3.0),
               "backbone.Mixed_4c.gating_b2.fc.bias": torch.full((64,), 4.0)}
    converted = convert_official_s3dg(crafted, "x.pyth")
    assert {k: v.flatten()[0].item() for k, v in converted.items()} == {
        "conv_2c.bn1.weight": 1.0, "conv_2c.bn2.weight": 2.0, "conv_2c.conv2.weight": 3.0,
        "mixed_4c.gate2.fc.bias": 4.0}


def test_official_aliases_may_be_copies_but_must_agree(tmp_path, s3dg_source):
    official = official_backbone_state(s3dg_source)
    copied = {k: v.clone() for k, v in official.items()}
    assert convert_official_s3dg(copied, "x").keys() == s3dg_source.state_dict().keys()
    only_stages = {k: v for k, v in official.items() if not k.startswith("block")}
    assert convert_official_s3dg(only_stages, "x").keys() == s3dg_source.state_dict().keys()
    changed = official["block4.3.branch1.1.bn2.running_var"] + 1
    path = official_file(tmp_path / "bad.pyth", s3dg_source, **{"block4.3.branch1.1.bn2.running_var": changed})
    with pytest.raises(UserError) as err:
        load_pretrained(path, "s3dg")
    one_line(err, "bad.pyth", "'Mixed_4d.branch1.1.bn2.running_var'", "'block4.3.branch1.1.bn2.running_var'",
             "two different tensors")


def test_official_file_with_a_name_we_do_not_have_or_a_missing_tensor(tmp_path, s3dg_source):
    path = official_file(tmp_path / "extra.pyth", s3dg_source, **{"block2.0.weight": torch.zeros(1)})
    with pytest.raises(UserError) as err:  # block2.0 is the max pool MaxPool_2a
        load_pretrained(path, "s3dg")
    one_line(err, "extra.pyth", "1 tensor with no counterpart", "'block2.0.weight'")
    # a known layer with a tensor ours lacks maps by name and is then refused by the strict check
    path = official_file(tmp_path / "bias.pyth", s3dg_source, **{"Mixed_3b.branch0.0.conv.bias": torch.zeros(64)})
    with pytest.raises(UserError) as err:
        load_pretrained(path, "s3dg")
    one_line(err, "bias.pyth", "1 unexpected key ('mixed_3b.branch0.conv.bias')")
    official = {f"backbone.{k}": v for k, v in official_backbone_state(s3dg_source).items()
                if "gating_b3" not in k or not k.startswith(("Mixed_5c", "block5.2"))}
    torch.save({"model_state": official}, tmp_path / "short.pyth")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "short.pyth", "s3dg")
    one_line(err, "short.pyth", "2 missing keys ('mixed_5c.gate3.fc.weight', 'mixed_5c.gate3.fc.bias')")


def test_explicit_formats(tmp_path, s3dg_source):
    path = official_file(tmp_path / "o.pyth", s3dg_source)
    assert torch.equal(load_pretrained(path, "s3dg", format="official").conv_1a.bn2.running_mean,
                       s3dg_source.conv_1a.bn2.running_mean)
    with pytest.raises(UserError) as err:
        load_pretrained(path, "s3dg", format="state_dict")
    one_line(err, "o.pyth", "does not fit the s3dg backbone", "missing keys ('conv_1a.conv1.weight'")
    with pytest.raises(UserError) as err:
        load_pretrained(path, "s3dg", format="hico-bench")
    one_line(err, "o.pyth", "not a hico-bench pretraining checkpoint")
    torch.save(build_backbone("tiny", **TINY).state_dict(), tmp_path / "t.pt")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "t.pt", "tiny", format="official", **TINY)
    one_line(err, "t.pt", "no converter is registered for it", "s3dg")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "t.pt", "s3dg", format="official")
    one_line(err, "t.pt", "not in the official layout of the s3dg backbone", "'body.0.weight'")
    with pytest.raises(UserError, match=r"unknown checkpoint format 'pyth'; valid choices are: auto, hico-bench"):
        load_pretrained(tmp_path / "t.pt", "tiny", format="pyth")


def test_converters_are_consulted_before_the_generic_path(tmp_path, monkeypatch):
    src = randomised(build_backbone("tiny", **TINY), seed=3)
    torch.save({"model": {f"encoder.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "up.pth")
    seen = []

    def upstream(state, source):
        seen.append(source)
        if not all(k.startswith("encoder.") for k in state):
            return None
        return {k[len("encoder."):]: v for k, v in state.items()}

    monkeypatch.setitem(CONVERTERS, "tiny", upstream)
    loaded = load_pretrained(tmp_path / "up.pth", "tiny", **TINY)
    assert seen == [f"checkpoint {tmp_path / 'up.pth'}"]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in src.state_dict().items())
    torch.save(src.state_dict(), tmp_path / "plain.pt")  # not its layout: the generic path still loads it
    assert torch.equal(load_pretrained(tmp_path / "plain.pt", "tiny", **TINY).body[0].weight, src.body[0].weight)


# -------------------------------------------------------------------------------- hico-bench's own and plain files


def test_hico_bench_checkpoint_round_trip_from_the_trainer_state(tmp_path):
    from hico_bench.train.loop import _state

    torch.manual_seed(2)
    pre = HiCoModel(randomised(build_backbone("tiny", **TINY), seed=4), 3, True, mid_dim=32, out_dim=8)
    optimizer = torch.optim.SGD(pre.parameters(), lr=0.1)
    settings = {"backbone": "tiny", "backbone_kwargs": {"out_dim": 16, "widths": [8, 8, 16]}}
    save_checkpoint(tmp_path / "checkpoint_last.pt", _state(pre, optimizer, 1, 10, settings, world=1))
    assert read_checkpoint(tmp_path / "checkpoint_last.pt")["format"] == "hico-bench-pretrain-v1"
    loaded = load_pretrained(tmp_path / "checkpoint_last.pt", "tiny", **TINY)  # tuples match the saved lists
    assert list(loaded.state_dict()) == list(pre.backbone.state_dict())
    for name, value in pre.backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "checkpoint_last.pt", "s3dg")
    one_line(err, "checkpoint_last.pt", "holds a 'tiny' backbone with {'out_dim': 16, 'widths': [8, 8, 16]}",
             "but a 's3dg' backbone was asked for")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "checkpoint_last.pt", "tiny", out_dim=32)
    one_line(err, "but a 'tiny' backbone with {'out_dim': 32} was asked for")


def test_hico_bench_checkpoint_of_another_version_or_without_backbone(tmp_path):
    save_checkpoint(tmp_path / "v9.pt", {"format": "hico-bench-pretrain-v9", "model": {"x": torch.zeros(1)}})
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "v9.pt", "tiny")
    one_line(err, "v9.pt", "'hico-bench-pretrain-v9'", "'hico-bench-pretrain-v1'")
    save_checkpoint(tmp_path / "nb.pt", {"backbone_name": "tiny", "model": {"g.linear1.weight": torch.zeros(1)}})
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "nb.pt", "tiny")
    one_line(err, "nb.pt", "holds no 'backbone.*' weights")


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "module", "model_state"])
def test_plain_state_dict_with_module_backbone_prefixes_drops_the_heads(tmp_path, wrapper):
    torch.manual_seed(4)
    pre = HiCoModel(randomised(build_backbone("tiny", **TINY), seed=5), 3, True, mid_dim=32, out_dim=8)
    state = {f"module.{k}": v for k, v in pre.state_dict().items()}  # as saved from DDP: g, h, phi beside it
    torch.save(state if wrapper is None else {wrapper: state, "epoch": 7}, tmp_path / "p.pth")
    loaded = load_pretrained(tmp_path / "p.pth", "tiny", **TINY)
    for name, value in pre.backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_bare_state_dict_keeps_backbone_keys_and_drops_a_classifier_outside_it(tmp_path):
    src = randomised(build_backbone("tiny", **TINY), seed=6)
    torch.save({**src.state_dict(), "fc.weight": torch.zeros(3, 16), "fc.bias": torch.zeros(3)}, tmp_path / "b.pt")
    loaded = load_pretrained(tmp_path / "b.pt", "tiny", **TINY)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in src.state_dict().items())
    # a head-like name that is the backbone's own is kept, not dropped
    fmt, state = backbone_state({"fc.weight": torch.ones(1)}, "tiny", own_keys={"fc.weight"})
    assert fmt == "state_dict" and list(state) == ["fc.weight"]


# ------------------------------------------------------------------------------------------------------ strictness


def tiny_file(path, drop=(), add=None, **kwargs):
    state = build_backbone("tiny", **{**TINY, **kwargs}).state_dict()
    state = {f"backbone.{k}": v for k, v in state.items() if k not in drop}
    state.update(add or {})
    torch.save({"state_dict": state}, path)
    return path


def test_missing_unexpected_and_mis_shaped_keys_are_one_sentence_each(tmp_path):
    with pytest.raises(UserError) as err:
        load_pretrained(tiny_file(tmp_path / "m.pt", drop=["body.1.running_mean"]), "tiny", **TINY)
    one_line(err, f"checkpoint {tmp_path / 'm.pt'} does not fit the tiny backbone: 1 missing key "
                  f"('body.1.running_mean').")
    drop = [k for k in build_backbone("tiny", **TINY).state_dict() if k.startswith("body.4")]
    with pytest.raises(UserError) as err:
        load_pretrained(tiny_file(tmp_path / "m5.pt", drop=drop), "tiny", **TINY)
    one_line(err, "5 missing keys ('body.4.weight', 'body.4.bias', 'body.4.running_mean' and 2 more)")
    with pytest.raises(UserError) as err:
        load_pretrained(tiny_file(tmp_path / "u.pt", add={"backbone.body.12.weight": torch.zeros(2)}), "tiny",
                        **TINY)
    one_line(err, "u.pt", "1 unexpected key ('body.12.weight')")
    with pytest.raises(UserError) as err:
        load_pretrained(tiny_file(tmp_path / "s.pt", out_dim=32), "tiny", **TINY)
    one_line(err, "s.pt", "5 tensors of another shape", "'body.9.weight' is (32, 16, 3, 3, 3) in the file but "
             "(16, 16, 3, 3, 3) in the model", "and 2 more")
    with pytest.raises(UserError) as err:
        load_pretrained(tiny_file(tmp_path / "o.pt", add={"queue": torch.zeros(4)}), "tiny", **TINY)
    one_line(err, "o.pt", "1 tensor outside its 'backbone.*' weights", "'queue'")


def test_a_state_dict_of_another_backbone_is_named(tmp_path):
    with torch.device("meta"):
        names = build_backbone("r2plus1d10").state_dict()
    torch.save({f"backbone.{k}": torch.zeros(1) for k in names}, tmp_path / "r.pt")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "r.pt", "tiny")
    one_line(err, "r.pt", "does not fit the tiny backbone (its tensor names are those of the r2plus1d10 backbone)")


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "nope.pyth", "tiny")
    one_line(err, "nope.pyth does not exist")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path, "tiny")
    one_line(err, "is a directory")
    (tmp_path / "notes.txt").write_text("hello world\n")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "notes.txt", "tiny")
    one_line(err, "notes.txt is not a PyTorch checkpoint file")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "empty.pt", "tiny")
    one_line(err, "empty.pt is not a PyTorch checkpoint file (EOFError")
    import numpy as np

    torch.save({"model_state": build_backbone("tiny").state_dict(), "best": np.float64(0.5)}, tmp_path / "np.pyth")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "np.pyth", "tiny")
    one_line(err, "np.pyth holds pickled Python objects (numpy.", "weights_only=True")
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "t.pt", "tiny")
    one_line(err, "t.pt holds a Tensor, not a dict of weights")
    torch.save({"epoch": 3, "model": {"note": "x"}}, tmp_path / "d.pt")
    with pytest.raises(UserError) as err:
        load_pretrained(tmp_path / "d.pt", "tiny")
    one_line(err, "d.pt holds no state dict", "'epoch', 'model'")


# -------------------------------------------------------------------------- the in-memory pieces (moved from heads)


def test_load_state_strict_takes_a_bare_backbone_and_leaves_the_rest_alone():
    torch.manual_seed(4)
    pre = HiCoModel(build_backbone("tiny", out_dim=16), 3, True, mid_dim=32, out_dim=8)
    clf = ClassifierModel(build_backbone("tiny", out_dim=16), num_classes=4)
    head_before = clf.head.weight.clone()
    _, state = backbone_state({f"module.{k}": v for k, v in pre.state_dict().items()}, "tiny")
    assert load_state_strict(clf.backbone, state) is clf.backbone
    for key, value in pre.backbone.state_dict().items():
        assert torch.equal(clf.backbone.state_dict()[key], value)
    assert torch.equal(clf.head.weight, head_before)


def test_identify_backbone_from_tensor_names():
    with torch.device("meta"):
        names = {n: build_backbone(n).state_dict() for n in ("r2plus1d10", "r2plus1d18", "r3d18", "s3dg")}
    for name, state in names.items():
        assert identify_backbone(state) == name
    assert identify_backbone({"foo": torch.zeros(1)}) is None


def test_videomae_checkpoints_load_through_the_strict_loader(tmp_path):
    """VideoMAE's published layouts (the ``model`` / ``module`` dicts it saves) go through load_pretrained."""
    from hico_bench.models.pretrained import load_pretrained
    from hico_bench.models.vit import build_vit_s16

    torch.manual_seed(0)
    kwargs = {"embed_dim": 32, "depth": 2, "num_heads": 2, "frames": 4, "size": 32}
    source = build_vit_s16(**kwargs).eval()
    own = source.state_dict()
    pretraining = {}
    for key, value in own.items():
        if key.endswith("attn.qkv.bias"):  # VideoMAE: separate q and v biases, no k bias
            d = value.shape[0] // 3
            pretraining[f"encoder.{key[:-len('qkv.bias')]}q_bias"] = value[:d]
            pretraining[f"encoder.{key[:-len('qkv.bias')]}v_bias"] = value[2 * d:]
        elif key != "pos_embed":
            pretraining[f"encoder.{key}"] = value
    pretraining["decoder.norm.weight"] = torch.ones(4)  # the pretraining decoder is dropped
    pretraining["mask_token"] = torch.zeros(1, 1, 4)
    path = tmp_path / "videomae_pretrain.pth"
    torch.save({"model": pretraining}, path)
    # the source has a zero k bias (VideoMAE has none), so every tensor matches after the round trip
    with torch.no_grad():
        for block in source.blocks:
            d = block.attn.qkv.bias.shape[0] // 3
            block.attn.qkv.bias[d:2 * d] = 0
    loaded = load_pretrained(path, "vit_s16", **kwargs).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
    torch.save({"module": {"blocks.0.attn.q_bias": torch.zeros(32)}}, tmp_path / "broken.pth")
    with pytest.raises(UserError, match=r"broken.pth"):
        load_pretrained(tmp_path / "broken.pth", "vit_s16", **kwargs)
