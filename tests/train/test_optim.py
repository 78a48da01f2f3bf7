import math

import pytest
import timm.optim
import torch
from torch import nn

from hico_bench.errors import UserError
from hico_bench.models.backbones import build_backbone
from hico_bench.train.optim import Lars, WarmupCosine, build_optimizer, param_groups, scaled_lr, set_lr


def one_param(values, grad, **group):
    p = nn.Parameter(torch.tensor(values, dtype=torch.float64))
    opt = Lars([dict(params=[p], **group)], lr=0.5, momentum=0.9, nesterov=True)
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p, opt


def test_lars_one_step_with_weight_decay_by_hand():
    # w = (3, 4), |w| = 5; g = (1, 0), |g| = 1; wd 0.1; eta 0.001; lr 0.5
    # local_lr = 0.001 * 5 / (1 + 0.1 * 5) = 1/300; d = (1.3, 0.4) / 300 * 0.5 = (1.3, 0.4) / 600
    # first step: buf = d; Nesterov: w -= d + 0.9 d
    p, opt = one_param([3.0, 4.0], [1.0, 0.0], weight_decay=0.1)
    opt.step()
    torch.testing.assert_close(p.data, torch.tensor([3 - 1.9 * 1.3 / 600, 4 - 1.9 * 0.4 / 600], dtype=torch.float64))


def test_lars_one_step_without_weight_decay_by_hand():
    # local_lr = 0.001 * 5 / 1 = 0.005; d = (1, 0) * 0.005 * 0.5 = (0.0025, 0)
    p, opt = one_param([3.0, 4.0], [1.0, 0.0], weight_decay=0.0)
    opt.step()
    torch.testing.assert_close(p.data, torch.tensor([3 - 1.9 * 0.0025, 4.0], dtype=torch.float64))


def test_lars_excluded_group_is_plain_nesterov_sgd():
    # local_lr = 1: d = g * lr = (0.25, -0.5)
    p, opt = one_param([1.0, 2.0], [0.5, -1.0], weight_decay=0.0, lars_exclude=True)
    opt.step()
    torch.testing.assert_close(p.data, torch.tensor([1 - 1.9 * 0.25, 2 + 1.9 * 0.5], dtype=torch.float64))


def test_lars_zero_weight_never_moves_unless_excluded():
    p, opt = one_param([0.0, 0.0], [0.3, -0.1], weight_decay=0.0)
    for _ in range(3):
        opt.step()
    assert torch.all(p.data == 0)  # the spec's quirk: a zero-initialised BN bias under the trust ratio
    q, opt = one_param([0.0, 0.0], [0.3, -0.1], weight_decay=0.0, lars_exclude=True)
    opt.step()
    assert torch.all(q.data != 0)


def test_lars_second_step_folds_lr_in_before_momentum():
    p, opt = one_param([3.0, 4.0], [1.0, 0.0], weight_decay=0.1)
    opt.step()
    w1 = p.data.clone()
    d1 = torch.tensor([1.3, 0.4], dtype=torch.float64) / 600
    set_lr(opt, 0.1)
    g2 = torch.tensor([0.0, -2.0], dtype=torch.float64)
    p.grad = g2.clone()
    opt.step()
    local = 0.001 * w1.norm() / (g2.norm() + 0.1 * w1.norm())
    d2 = (g2 + 0.1 * w1) * local * 0.1
    buf = 0.9 * d1 + d2
    torch.testing.assert_close(p.data, w1 - (d2 + 0.9 * buf))


def run_steps(opt_factory, lrs, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64))
    opt = opt_factory([p])
    for lr in lrs:
        p.grad = torch.randn(4, 3, generator=g, dtype=torch.float64)
        set_lr(opt, lr)
        opt.step()
    return p.data


def test_lars_equals_timm_at_constant_lr_and_differs_when_lr_changes():
    ours = lambda ps: Lars(ps, lr=0.3, momentum=0.9, nesterov=True, weight_decay=1e-2)  # noqa: E731
    timms = lambda ps: timm.optim.Lars(ps, lr=0.3, momentum=0.9, nesterov=True, weight_decay=1e-2,  # noqa: E731
                                       eps=0.0, always_adapt=True, foreach=False)
    torch.testing.assert_close(run_steps(ours, [0.3] * 4), run_steps(timms, [0.3] * 4))
    schedule = [0.3, 0.2, 0.1, 0.05]
    assert not torch.allclose(run_steps(ours, schedule), run_steps(timms, schedule))


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, bias=False)
        self.seq = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4))  # a BN named by position, as in torchvision
        self.ln = nn.LayerNorm(4)
        self.my_norm = nn.Linear(4, 4)  # not a norm layer, but the spec's name rule puts it with the norms
        self.fc = nn.Linear(4, 2)
        self.head = nn.Linear(2, 2)
        self.scale = nn.Parameter(torch.ones(4))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def by_group(groups):
    return {g["group"]: (set(g["names"]), g["weight_decay"], g["lars_exclude"]) for g in groups}


def test_param_groups_by_name_and_type():
    got = by_group(param_groups(Toy(), weight_decay=1e-6, bn_lars_exclude=True))
    assert got["decay"] == ({"conv.weight", "seq.0.weight", "fc.weight", "head.weight"}, 1e-6, False)
    assert got["no_decay"] == ({"seq.0.bias", "fc.bias", "head.bias", "scale"}, 0.0, False)
    assert got["norm"] == ({"seq.1.weight", "seq.1.bias", "ln.weight", "ln.bias", "my_norm.weight", "my_norm.bias"},
                           0.0, True)


def test_param_groups_options():
    got = by_group(param_groups(Toy(), weight_decay=1e-3, bn_lars_exclude=False, decay_biases=True))
    assert got["no_decay"][1] == 1e-3 and got["norm"][1:] == (0.0, False)
    head = by_group(param_groups(Toy(), 1e-3, only_head=True))
    assert head == {"decay": ({"head.weight"}, 1e-3, False), "no_decay": ({"head.bias"}, 0.0, False)}


def test_every_batchnorm_of_a_torchvision_backbone_is_in_the_norm_group():
    with torch.device("meta"):
        model = build_backbone("r2plus1d10")
    norm = next(g for g in param_groups(model, 1e-6) if g["group"] == "norm")
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert len(norm["params"]) == 2 * n_bn
    assert all("." in n for n in norm["names"])


def test_build_optimizer_kinds():
    lars = build_optimizer(Toy(), "lars", lr=0.9)
    assert isinstance(lars, Lars) and all(g["nesterov"] and g["momentum"] == 0.9 for g in lars.param_groups)
    assert {g["group"]: g["lars_exclude"] for g in lars.param_groups}["norm"] is True
    sgd = build_optimizer(Toy(), "sgd", lr=0.1, weight_decay=1e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["nesterov"]
    adam = build_optimizer(Toy(), "adam", lr=2e-3, weight_decay=1e-3, betas=(0.9, 0.99))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.9, 0.99)
    assert {g["group"]: g["weight_decay"] for g in adam.param_groups} == {"decay": 1e-3, "no_decay": 0.0, "norm": 0.0}
    with pytest.raises(UserError, match=r"unknown optimizer 'rmsprop'; valid choices are: adam, lars, sgd"):
        build_optimizer(Toy(), "rmsprop", lr=0.1)


def test_build_optimizer_steps_a_real_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = build_optimizer(model, "lars", lr=0.5, weight_decay=1e-6)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(8, 3)).square().mean().backward()
    opt.step()
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert moved == [True, True, True, True, True, True]  # BN excluded from LARS: its zero bias moves too


def test_scaled_lr():
    assert scaled_lr(0.3, 8 * 32 * 3) == pytest.approx(0.9)
    assert scaled_lr(0.3, 256) == pytest.approx(0.3)


def test_warmup_cosine_values():
    s = WarmupCosine(base_lr=0.9, epochs=100, warmup_epochs=10, warmup_start_lr=0.001)
    cos10 = 0.9 * 0.5 * (1 + math.cos(math.pi * 10 / 100))  # 0.8779754...
    assert s.lr_at(0) == pytest.approx(0.001)
    assert s.lr_at(2.5) == pytest.approx(0.2202438580832048)
    assert s.lr_at(5) == pytest.approx(0.4394877161664096)
    assert s.lr_at(10) == pytest.approx(cos10)
    assert s.lr_at(10 - 1e-9) == pytest.approx(cos10)
    assert s.lr_at(55) == pytest.approx(0.3796044907318961)
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-15)
    assert s.lr_at(130) == pytest.approx(0.0, abs=1e-15)


def test_cosine_without_warmup_and_bad_arguments():
    s = WarmupCosine(base_lr=1.0, epochs=4)
    half = 0.5 / math.sqrt(2)
    assert [s.lr_at(e) for e in (0, 1, 2, 3)] == pytest.approx([1.0, 0.5 + half, 0.5, 0.5 - half])
    with pytest.raises(ValueError):
        WarmupCosine(1.0, epochs=5, warmup_epochs=5)


def test_set_lr():
    opt = build_optimizer(Toy(), "sgd", lr=0.1)
    set_lr(opt, 0.025)
    assert all(g["lr"] == 0.025 for g in opt.param_groups)
