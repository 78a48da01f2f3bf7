import math

import pytest
import torch
import torch.nn.functional as F

from hico_bench.losses import nt_xent, tcl_loss, vcl_loss


def unit_rows(n, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).requires_grad_()


def vcl_loop(z, num_clips, tau):
    """The spec's formula, one anchor and one term at a time."""
    videos = z.shape[0] // num_clips
    total = 0.0
    for v in range(videos):
        for slot in (0, 1):
            a, p = v * num_clips + slot, v * num_clips + (1 - slot)
            e_pos = torch.exp(torch.dot(z[a], z[p]) / tau)
            e_neg = 0.0
            for b in range(z.shape[0]):
                if b // num_clips != v:
                    e_neg = e_neg + torch.exp(torch.dot(z[a], z[b]) / tau)
            total = total - torch.log(e_pos / (e_pos + e_neg))
    return total / (2 * videos)


def simclr_loop(z, tau):
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        den = 0.0
        for k in range(n):
            if k != i:
                den = den + torch.exp(torch.dot(z[i], z[k]) / tau)
        total = total - torch.log(torch.exp(torch.dot(z[i], z[i ^ 1]) / tau) / den)
    return total / n


def assert_same_value_and_grad(fast, slow, inputs):
    torch.testing.assert_close(fast, slow)
    for a, b in zip(torch.autograd.grad(fast, inputs), torch.autograd.grad(slow, inputs)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("videos,num_clips,tau", [(4, 3, 0.1), (3, 3, 0.5), (2, 4, 0.2), (5, 2, 0.1)])
def test_vcl_matches_the_loop(videos, num_clips, tau):
    z = unit_rows(videos * num_clips, seed=videos)
    assert_same_value_and_grad(vcl_loss(z, num_clips, tau), vcl_loop(z, num_clips, tau), [z])


def test_vcl_with_two_clips_is_nt_xent():
    z = unit_rows(10, seed=3)
    assert_same_value_and_grad(vcl_loss(z, num_clips=2, temperature=0.1), nt_xent(z, 0.1), [z])


def test_nt_xent_matches_the_loop():
    z = unit_rows(8, seed=5)
    assert_same_value_and_grad(nt_xent(z, 0.2), simclr_loop(z, 0.2), [z])


def test_vcl_single_video_is_zero():
    # Were the anchor's own v_k (or the anchor itself) in the denominator, this would be > 0.
    z = unit_rows(3, seed=1)
    loss = vcl_loss(z, 3)
    assert loss.item() == 0.0
    assert torch.all(torch.autograd.grad(loss, z)[0] == 0)


def test_vcl_local_slice_detaches_the_other_rows():
    z = unit_rows(12, seed=2)
    full = vcl_loss(z, 3)
    (g_full,) = torch.autograd.grad(full, z)
    part = vcl_loss(z, 3, local_slice=slice(6, 12))
    torch.testing.assert_close(part, full)
    (g_part,) = torch.autograd.grad(part, z)
    assert torch.all(g_part[:6] == 0)
    torch.testing.assert_close(g_part[6:], g_full[6:])


def test_vcl_rejects_a_batch_that_is_not_whole_videos():
    with pytest.raises(ValueError, match="multiple of 3"):
        vcl_loss(unit_rows(7), 3)
    with pytest.raises(ValueError, match="at least 2 clips"):
        vcl_loss(unit_rows(4), 1)


def tcl_loop(logits, clips, gamma, eps):
    n = logits.shape[0]
    pos, neg = [], []
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            for c in range(2):
                p = 1.0 / (1.0 + torch.exp(-logits[a, b, c]))
                if a // clips == b // clips:
                    pos.append((1 - p) ** gamma * torch.log(p + eps))
                else:
                    neg.append(p ** gamma * torch.log(1 - p + eps))
    return -sum(pos) / len(pos) - sum(neg) / len(neg)


@pytest.mark.parametrize("videos,clips,gamma", [(2, 3, 0.5), (3, 3, 0.0), (4, 2, 2.0), (2, 4, 0.5)])
def test_tcl_matches_the_loop(videos, clips, gamma):
    g = torch.Generator().manual_seed(videos * 10 + clips)
    n = videos * clips
    logits = (3 * torch.randn(n, n, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert_same_value_and_grad(tcl_loss(logits, clips, gamma, 1e-5), tcl_loop(logits, clips, gamma, 1e-5), [logits])


def test_tcl_ignores_the_diagonal():
    logits = torch.zeros(6, 6, 2, dtype=torch.float64)
    base = tcl_loss(logits)
    logits[2, 2] = 40.0
    assert tcl_loss(logits) == base


def test_tcl_gamma_zero_is_class_balanced_bce():
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(6, 6, 2, generator=g, dtype=torch.float64)
    same = (torch.arange(6)[:, None] // 3) == (torch.arange(6)[None, :] // 3)
    off = ~torch.eye(6, dtype=torch.bool)
    bce = F.binary_cross_entropy_with_logits(logits, same[..., None].double().expand(6, 6, 2), reduction="none")
    expected = bce[same & off].mean() + bce[~same].mean()
    torch.testing.assert_close(tcl_loss(logits, gamma=0.0, eps=0.0), expected)


def test_tcl_saturated_logits_give_finite_gradients():
    logits = torch.full((6, 6, 2), 200.0, requires_grad=True)
    with torch.no_grad():
        logits[:3, 3:] = -200.0
        logits[3:, :3] = -200.0
    loss = tcl_loss(logits)
    (grad,) = torch.autograd.grad(loss, logits)
    assert math.isfinite(loss.item()) and torch.isfinite(grad).all()


def test_tcl_single_video_is_an_error():
    with pytest.raises(ValueError, match="at least 2 videos"):
        tcl_loss(torch.zeros(3, 3, 2))
    with pytest.raises(ValueError, match=r"shape \(n, n, 2\)"):
        tcl_loss(torch.zeros(6, 6))
