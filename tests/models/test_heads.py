import torch
import torch.nn.functional as F

from hico_bench.models.backbones import build_backbone
from hico_bench.models.heads import (
    ClassifierModel,
    ProjectionMLP,
    TopicalPredictor,
)


def test_projection_mlp_layers_and_normalisation():
    torch.manual_seed(0)
    mlp = ProjectionMLP(16, mid_dim=32, out_dim=8)
    assert mlp.bn1.eps == 1e-3 and mlp.bn2.eps == 1e-3
    x = torch.randn(6, 16)
    out = mlp(x)
    assert out.shape == (6, 8)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(6))
    # the same layers in the spec's order, by hand, with batch statistics (train mode)
    h = x @ mlp.linear1.weight.T + mlp.linear1.bias
    h = F.relu((h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-3))
    h = h @ mlp.linear2.weight.T + mlp.linear2.bias
    h = F.relu((h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-3))
    h = h @ mlp.linear3.weight.T + mlp.linear3.bias
    torch.testing.assert_close(out, h / h.norm(dim=1, keepdim=True))


def naive_pair_logits(phi: TopicalPredictor, t: torch.Tensor) -> torch.Tensor:
    net = lambda v: phi.fc2(F.relu(phi.fc1(v)))  # noqa: E731
    n = t.shape[0]
    rows = []
    for a in range(n):
        row = []
        for b in range(n):
            row.append(torch.cat([net(torch.cat([t[a], t[b]])), net(torch.cat([t[b], t[a]]))]))
        rows.append(torch.stack(row))
    return torch.stack(rows)


def test_topical_predictor_matches_the_concat_loop_values_and_gradients():
    torch.manual_seed(1)
    phi = TopicalPredictor(dim=8, hidden=16).double()
    t = F.normalize(torch.randn(5, 8, dtype=torch.float64), dim=1).requires_grad_()
    fast = phi(t)
    slow = naive_pair_logits(phi, t)
    assert fast.shape == (5, 5, 2)
    torch.testing.assert_close(fast, slow)
    weights = torch.randn_like(fast)
    params = [t, *phi.parameters()]
    g_fast = torch.autograd.grad((fast * weights).sum(), params)
    g_slow = torch.autograd.grad((slow * weights).sum(), params)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b)


def test_topical_predictor_channels_are_the_two_concatenation_orders():
    torch.manual_seed(2)
    phi = TopicalPredictor(dim=4, hidden=8)
    logits = phi(torch.randn(3, 4))
    torch.testing.assert_close(logits[..., 1], logits[..., 0].T)


def test_classifier_head_is_the_only_param_named_head():
    model = ClassifierModel(build_backbone("tiny", out_dim=16), num_classes=5, dropout=0.5)
    assert [n for n, _ in model.named_parameters() if "head" in n] == ["head.weight", "head.bias"]
    assert model(torch.randn(2, 3, 4, 16, 16)).shape == (2, 5)
    assert model.dropout.p == 0.5
