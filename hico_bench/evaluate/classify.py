"""Supervised evaluation on UCF101 / HMDB51: full fine-tuning (``ft``) and HiCo's linear evaluation (``lft``).

Both put a new linear head on the backbone and train with cross-entropy, Adam, coupled weight
decay (0 for BatchNorm and biases) and a cosine schedule with linear warm-up, on clips with the fine-tuning
augmentations. ``lft`` is the official behaviour: only the final layer is optimised, and the backbone stays in train
mode so that its BatchNorm statistics keep updating (a quirk of the official code, kept on purpose to match the
paper's numbers; the strict alternative is the ``probe`` task). The paper's recipe: Adam, lr 0.002 (UCF101) or 0.001
(HMDB51), 300 epochs with 10 warm-up epochs, batch 128 (64), weight decay 1e-3, clips of 16 frames at stride 4.

Test: ``views`` clips uniformly spaced x ``crops`` crops per video, softmax scores summed (HiCo's 10 x 1 by default),
and the single centre clip (``top1_1clip``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hico_bench.errors import UserError, choice_error
from hico_bench.evaluate.probe import check_test_classes, topk_accuracy

def finetune(checkpoint: str | None, manifest, model: dict[str, Any], settings: dict[str, Any], where: str = "",
             *, mode: str, checkpoint_format: str = "auto") -> dict[str, Any]:
    """Train a classifier (``mode`` ``ft`` or ``lft``) on the train split; return test metrics in percent.

    ``model`` is the backbone and the clip geometry (:data:`hico_bench.settings.MODEL`), ``settings`` the task's
    (:data:`hico_bench.evaluate.tasks.TASKS`); missing keys take their defaults.
    """
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hico_bench.data.datasets import ClipDataset
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.models.heads import ClassifierModel
    from hico_bench.train.optim import WarmupCosine, build_optimizer, set_lr

    from hico_bench.evaluate.tasks import TASKS
    from hico_bench.settings import MODEL

    if mode not in ("ft", "lft"):
        raise choice_error("fine-tuning mode", mode, ("ft", "lft"))
    s = TASKS[mode].settings.resolve(settings)
    model = MODEL.resolve(model)
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    t0 = time.perf_counter()
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    test = manifest[manifest["split"] == "test"].reset_index(drop=True)
    if train.empty or test.empty:
        raise UserError(f"{where}: the manifest needs both train- and test-split videos.")
    train_y, test_y = train["label_index"].to_numpy(), test["label_index"].to_numpy()
    check_test_classes(train_y, test_y, where)
    num_classes = int(max(train_y.max(), test_y.max())) + 1

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format)
    torch.manual_seed(s["seed"])
    net = ClassifierModel(backbone, num_classes, dropout=s["dropout"]).to(device)
    trainable = net.head if mode == "lft" else net
    if mode == "lft":
        # Only the head is optimised; no gradient flows into the backbone (3x cheaper), whose BatchNorm statistics
        # still update because it stays in train mode below.
        backbone.requires_grad_(False)
    optimizer = build_optimizer(trainable, "adam", lr=s["lr"], weight_decay=s["weight_decay"])
    schedule = WarmupCosine(s["lr"], s["epochs"], s["warmup_epochs"], s["warmup_start_lr"])

    clip_args = dict(frames=model["frames"], sampling_rate=model["sampling_rate"], target_fps=model["target_fps"],
                     size=model["size"], decode_size=model.get("decode_size"), cache_frames=s["cache_frames"])
    train_set = ClipDataset(train, mode="train", seed=s["seed"], **clip_args)
    generator = torch.Generator().manual_seed(s["seed"])
    loader = DataLoader(train_set, batch_size=min(s["batch_size"], len(train_set)), shuffle=True, drop_last=True,
                        num_workers=s["num_workers"], generator=generator,
                        persistent_workers=s["num_workers"] > 0)
    iters = len(loader)
    bar = tqdm(total=iters * s["epochs"], desc=f"{mode} {where}", unit="step", dynamic_ncols=True,
               disable=not s["progress_bar"])
    net.train()  # lft too: the backbone's BatchNorm statistics keep updating (the official behaviour)
    for epoch in range(s["epochs"]):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        for it, (clips, labels, _index) in enumerate(loader):
            set_lr(optimizer, schedule.lr_at(epoch + it / iters))
            logits = net(clips.to(device))
            loss = F.cross_entropy(logits, labels.to(device))
            if not torch.isfinite(loss):
                raise UserError(f"{where}: the {mode} loss became {loss.item()} at epoch {epoch}; lower lr.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
    bar.close()

    scores, single = _test_scores(net, test, clip_args, s, num_classes, device)
    return {
        "metrics": {
            "top1": topk_accuracy(scores, test_y, 1),
            "top5": topk_accuracy(scores, test_y, 5),
            "top1_1clip": topk_accuracy(single, test_y, 1),
        },
        "protocol": {"mode": mode, "test_views": s["test_views"], "test_crops": s["test_crops"],
                     "ensemble": "sum of softmax", "epochs": s["epochs"], "lr": s["lr"],
                     "bn_statistics": "updating (train mode)" if mode == "lft" else "trained"},
        "seconds": time.perf_counter() - t0,
    }


@torch.no_grad()
def _test_scores(net, test, clip_args, s, num_classes, device) -> tuple[np.ndarray, np.ndarray]:
    """Summed softmax over all views and crops, and the softmax of the single centre view."""
    from torch.utils.data import DataLoader

    from hico_bench.data.datasets import ClipDataset

    net.eval()
    views = s["test_views"]
    dataset = ClipDataset(test, mode="test", num_views=views, crops=s["test_crops"], **clip_args)
    loader = DataLoader(dataset, batch_size=max(1, 32 // (views * s["test_crops"])), shuffle=False,
                        num_workers=s["num_workers"])
    summed = np.zeros((len(dataset), num_classes), dtype=np.float64)
    single = np.zeros_like(summed)
    centre = (views // 2) * s["test_crops"] + s["test_crops"] // 2  # middle clip, centre crop
    for clips, _labels, index in loader:
        b, v = clips.shape[:2]
        probs = F.softmax(net(clips.flatten(0, 1).to(device)).float(), dim=1).view(b, v, -1).cpu().numpy()
        summed[index.numpy()] = probs.sum(1)
        single[index.numpy()] = probs[:, centre]
    return summed, single
