"""The attentive probe: the head's attention, learning a problem only attention solves, the lr chosen on held-out
train videos only, determinism, and the ``attentive`` verb on tiny real videos."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import hico_bench.evaluate.attentive as attentive
from hico_bench.cli import main
from hico_bench.errors import UserError
from hico_bench.evaluate.probe import holdout_split
from hico_bench.evaluate.attentive import (AttentiveHead, attentive_probe, run_attentive, train_head,
                                           video_probabilities, video_tokens)
from hico_bench.evaluate.features import load_backbone, video_features
from hico_bench.evaluate.probe import source_groups
from hico_bench.evaluate.tasks import TASKS
from hico_bench.settings import MODEL as MODEL_SECTION
from tests.conftest import write_test_video
from tests.evaluate.test_downstream import MODEL, row

TOY = {"heads": 2, "mlp_ratio": 1.0, "epochs": 15, "batch_size": 32, "lrs": [1e-5, 0.03], "threads": 1,
       "half_tokens": False}
RUN = '{"method": "hico", "backbone": "tiny", "set": "uk400", "pretrain_input": "8x16"}'


def toy_tokens(n, views=1, length=5, dim=8, seed=0):
    """(n, views, length, dim) tokens and labels in {0, 1}, where only the flagged token reveals the class.

    In every clip one token, at a random position, carries the flag (channel 0 = 3) and the class as channel 1 = +-1;
    another token carries the opposite sign, so that the tokens' mean (any pooling that weighs tokens alike) is the
    same for both classes. Channels 2.. are noise (standard deviation 0.5).
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    tokens = torch.randn(n, views, length, dim, generator=g) * 0.5
    tokens[..., :2] = 0
    sign = (2 * labels - 1).float()[:, None].expand(n, views)
    flag = torch.randint(0, length, (n, views), generator=g)
    other = (flag + torch.randint(1, length, (n, views), generator=g)) % length
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(views), indexing="ij")
    tokens[rows, cols, flag, 0] = 3.0
    tokens[rows, cols, flag, 1] = sign
    tokens[rows, cols, other, 1] = -sign
    return tokens, labels.numpy(), flag


def settings(**kw):
    return TASKS["attentive"].settings.resolve({**TOY, **kw})


def test_the_head_computes_standard_multi_head_cross_attention():
    torch.manual_seed(0)
    head = AttentiveHead(12, 5, heads=3, mlp_ratio=2.0).double()
    tokens = torch.randn(4, 7, 12, dtype=torch.float64)
    # the textbook order: project every token to keys and values, one query per head, softmax, weighted values
    x = head.norm_tokens(tokens)
    q = head.q(head.query).view(3, 4)
    k = head.k(x).view(4, 7, 3, 4)
    v = head.v(x).view(4, 7, 3, 4)
    weights = torch.softmax(torch.einsum("blhd,hd->bhl", k, q) / 2.0, dim=2)  # scale 1/sqrt(head dim 4)
    z = head.query + head.proj(torch.einsum("bhl,blhd->bhd", weights, v).reshape(4, 12))
    z = z + head.mlp(z)
    assert torch.allclose(head.attention(tokens), weights, atol=1e-12)
    assert torch.allclose(head(tokens), head.linear(z), atol=1e-12)
    assert AttentiveHead(12, 5, heads=3, mlp_ratio=0).mlp is None
    with pytest.raises(UserError, match=r"attentive.heads = 5 does not divide the backbone's 12 feature channels"):
        AttentiveHead(12, 5, heads=5)


def test_the_probe_learns_what_only_attention_to_one_token_reveals():
    train, train_y, _ = toy_tokens(96)
    test, test_y, _ = toy_tokens(64, seed=1)
    assert torch.equal(train[..., 1].mean(2), torch.zeros(96, 1))  # mean pooling: no trace of the class
    result = attentive_probe(train, train_y, test, test_y, TOY)
    assert result["top1"] >= 95 and result["lr"] == 0.03
    assert result["holdout_accuracy"]["0.03"] >= 95 and result["holdout_accuracy"]["1e-05"] < 75
    # the trained head's skill is in its attention: with the weights made uniform (mean pooling) it is at chance
    head = train_head(train.flatten(0, 1), torch.as_tensor(train_y), 2, 0.03, settings())
    assert (video_probabilities(head, test).sum(1).argmax(1) == test_y).mean() >= 0.95
    head._weights = lambda x: torch.full((len(x), head.heads, x.shape[1]), 1 / x.shape[1])
    assert (video_probabilities(head, test).sum(1).argmax(1) == test_y).mean() <= 0.7


def test_views_are_examples_and_test_scores_are_summed_over_views(monkeypatch):
    train, train_y, _ = toy_tokens(40, views=3)
    test, test_y, _ = toy_tokens(10, views=3, seed=1)
    seen = []
    real = attentive.train_head

    def spy(tokens, labels, *args, **kwargs):
        seen.append((tokens.shape, labels.clone()))
        return real(tokens, labels, *args, **kwargs)

    monkeypatch.setattr(attentive, "train_head", spy)
    attentive_probe(train, train_y, test, test_y, settings(epochs=1))
    shape, labels = seen[-1]  # the refit on the whole train split
    assert shape == (120, 5, 8) and torch.equal(labels, torch.as_tensor(np.repeat(train_y, 3)))


def test_the_lr_is_chosen_on_held_out_train_videos_only(monkeypatch):
    train, train_y, _ = toy_tokens(60, views=2)
    test, test_y, _ = toy_tokens(20, views=2, seed=1)
    calls = []
    real = attentive.video_probabilities

    def spy(head, tokens, *args, **kwargs):
        calls.append(tokens)
        return real(head, tokens, *args, **kwargs)

    monkeypatch.setattr(attentive, "video_probabilities", spy)
    s = settings(epochs=3)
    first = attentive_probe(train, train_y, test, test_y, s)
    # every scoring before the last one (the test split's) sees held-out train videos
    held = np.sort(holdout_split(train_y, s["holdout"], s["seed"])[1])
    assert len(calls) == len(s["lrs"]) + 1
    assert all(torch.equal(t, train[torch.as_tensor(held)]) for t in calls[:-1])
    assert calls[-1] is test
    # another test split (noise, other labels) changes nothing of the choice
    noise = torch.randn_like(test) * 100
    other = attentive_probe(train, train_y, noise, 1 - test_y, s)
    for key in ("lr", "holdout_accuracy", "holdout_loss"):
        assert other[key] == first[key]


def test_the_held_out_part_keeps_source_groups_whole_or_is_class_stratified():
    ids = [f"v_Class{c}_g{g:02d}_c{k:02d}" for c in range(3) for g in range(1, 6) for k in range(1, 4)]
    labels = np.repeat(np.arange(3), 15)
    groups = source_groups(ids)
    fit, held = holdout_split(labels, 0.2, 0, groups)
    assert set(groups[fit]).isdisjoint(groups[held]) and len(fit) + len(held) == 45
    fit, held = holdout_split(labels, 0.2, 0)
    assert sorted(np.bincount(labels[held])) == [3, 3, 3] and len(fit) == 36


def test_ties_between_lrs_go_to_the_lower_held_out_loss_then_the_earlier_lr(monkeypatch):
    train, train_y, _ = toy_tokens(40)
    s = settings(lrs=[0.01, 0.03, 0.1], epochs=2)
    fake = {0.01: (100.0, 0.5), 0.03: (100.0, 0.2), 0.1: (100.0, 0.2)}  # (held-out top-1, cross-entropy)
    monkeypatch.setattr(attentive, "train_head", lambda tokens, labels, num_classes, lr, s, device: lr)

    def probabilities(lr, tokens, device):
        loss = fake[lr][1]
        held_y = train_y[np.sort(holdout_split(train_y, s["holdout"], s["seed"])[1])]
        probs = np.zeros((len(tokens), 1, 2))
        probs[np.arange(len(tokens)), 0, held_y] = np.exp(-loss)
        probs[np.arange(len(tokens)), 0, 1 - held_y] = 1 - np.exp(-loss)
        return probs

    monkeypatch.setattr(attentive, "video_probabilities", probabilities)
    lr, accuracy, loss = attentive.choose_lr(train, train_y, 2, s)
    assert lr == 0.03 and accuracy == {"0.01": 100.0, "0.03": 100.0, "0.1": 100.0}
    assert loss["0.03"] == loss["0.1"] < loss["0.01"]


def test_the_probe_is_bit_identical_for_a_seed_and_the_seed_matters():
    train, train_y, _ = toy_tokens(48, views=2)
    a = train_head(train.flatten(0, 1), torch.as_tensor(np.repeat(train_y, 2)), 2, 0.01, settings(epochs=3))
    b = train_head(train.flatten(0, 1), torch.as_tensor(np.repeat(train_y, 2)), 2, 0.01, settings(epochs=3))
    c = train_head(train.flatten(0, 1), torch.as_tensor(np.repeat(train_y, 2)), 2, 0.01, settings(epochs=3, seed=1))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    """A tiny UCF101-style dataset: 2 classes x 3 source groups x 2 clips, train groups 1-2, test group 3."""
    root = tmp_path_factory.mktemp("ucf_attentive")
    rows = []
    for c in range(2):
        for g in range(1, 4):
            for k in range(1, 3):
                vid = f"v_Class{c}_g{g:02d}_c{k:02d}"
                path = write_test_video(root / f"{vid}.mp4", num_frames=24, fps=10,
                                        size=(32, 32), seed=10 * c + 3 * g + k)
                rows.append(row(path, vid, "test" if g == 3 else "train", c))
    frame = pd.DataFrame(rows)
    csv = root / "manifest.csv"
    frame.to_csv(csv, index=False)
    return frame, csv


VIDEO_SETTINGS = {"views": 2, "epochs": 2, "batch_size": 4, "lrs": [0.001, 0.01], "heads": 4, "threads": 1,
                  "progress_bar": False}


def test_tokens_are_the_backbone_map_before_pooling_for_each_view(ucf):
    frame, _ = ucf
    model = MODEL_SECTION.resolve(MODEL)
    backbone = load_backbone(None, model).eval()
    tokens = video_tokens(backbone, frame, model, views=2, half=False, progress_bar=False)
    assert tokens.shape == (12, 2, 4, 16) and tokens.dtype == torch.float32  # 4 frames x 16 px -> 1 x 2 x 2 tokens
    pooled = video_features(backbone, frame, model, views=2)  # the features stage: views' pooled maps averaged
    assert np.allclose(tokens.mean(dim=(1, 2)).numpy(), pooled, atol=1e-6)
    half = video_tokens(backbone, frame, model, views=2, progress_bar=False)
    assert half.dtype == torch.float16 and torch.equal(half, tokens.half())


def test_the_attentive_verb_on_tiny_real_videos_is_deterministic(ucf, tmp_path, capsys):
    frame, csv = ucf
    args = ["attentive", "--manifest", str(csv), "--checkpoint", "none", "--model", json.dumps(MODEL),
            "--dataset", "ucf101", "--run", RUN]
    records = []
    for name in ("a.json", "b.json"):
        assert main([*args, "--out", str(tmp_path / name), "--settings", json.dumps(VIDEO_SETTINGS)]) == 0
        records.append(json.loads((tmp_path / name).read_text()))
    record = records[0]
    assert record["task"] == "attentive" and record["downstream_input"] == "4x16" and record["run"]["set"] == "uk400"
    assert set(record["metrics"]) == {"top1", "top5"} and 0 <= record["metrics"]["top1"] <= 100
    assert record["metrics"]["top5"] == 100.0  # 2 classes
    protocol = record["protocol"]
    assert protocol["lr"] in (0.001, 0.01) and set(protocol["holdout_accuracy_by_lr"]) == {"0.001", "0.01"}
    assert protocol["holdout"] == "whole source groups" and protocol["views"] == 2
    for r in records:  # bit-identical twice (but for the timing)
        r["protocol"].pop("extract_seconds")
        r.pop("seconds")
    assert records[0] == records[1]
    # the library entry point gives the same numbers
    direct = run_attentive(None, frame, MODEL, VIDEO_SETTINGS, where=str(csv))
    assert direct["metrics"] == record["metrics"] and direct["protocol"]["lr"] == protocol["lr"]

    capsys.readouterr()
    assert main([*args[:-2], "--out", str(tmp_path / "c.json"), "--settings", '{"lr": 0.1}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown setting 'attentive.lr'" in err[0] and "lrs" in err[0], err
    assert not (tmp_path / "c.json").exists()
