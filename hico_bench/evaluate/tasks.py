"""The downstream tasks, found by name in the plain dict :data:`TASKS`.

Each task declares its settings (with types and defaults), what it reads and the function that runs it; the
Snakemake rules, the ``hico-bench <task>`` verbs, the config checks and the tables' columns all follow from this
table. A task reads one of:

* ``features``: the frozen per-video features cached by ``hico-bench features`` (``.npz``: ``train_x``,
  ``train_y``, ``train_ids``, ``test_x``, ...). Its function is ``run(features, settings, where) -> result``.
* ``videos``: the dataset's manifest and the checkpoint (it runs the backbone on clips). Its function is
  ``run(checkpoint, manifest, model, settings, where, checkpoint_format=...) -> result`` (a ``long_training`` task
  also takes ``resume_dir=``, where it keeps its resume points); such a task can use a GPU.

``result`` is ``{"metrics": {name: percent}, "protocol": {...}}``; the verb adds what was evaluated and the time.

Adding a task: a module with its function, and one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from hico_bench.settings import RECALL_KS, Section, Setting


@dataclass(frozen=True)
class Task:
    name: str
    help: str                         # one line: the verb's help and the config's documentation
    reads: str                        # "features" or "videos"
    settings: Section
    function: str                     # "module:function" that runs it
    headline: str                     # the metric the ablation table shows
    column: str                       # the ablation table's column label, before the dataset's name
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed keyword arguments of the function
    long_training: bool = False       # a task on videos that trains for many epochs: it runs under torchrun with DDP
                                      # on downstream.gpus GPUs and keeps resume points (its function takes resume_dir)
    protocol: str = ""                # one sentence: how the headline is measured (the tables' notes)

    def runner(self) -> Callable[..., dict[str, Any]]:
        module, _, name = self.function.partition(":")
        fn = getattr(importlib.import_module(module), name)
        if self.options:
            return lambda *args, **kwargs: fn(*args, **self.options, **kwargs)
        return fn


def _finetune_settings(name: str, help: str) -> Section:
    return Section(name, help, (
        Setting("epochs", "int", 300, "training epochs", minimum=1),
        Setting("warmup_epochs", "float", 10, "linear warm-up epochs, then cosine to 0", minimum=0),
        Setting("batch_size", "int", 128, "clips per step (global)", minimum=1),
        Setting("lr", "float", 0.002, "Adam learning rate (paper: 0.002 UCF101, 0.001 HMDB51)", minimum=0),
        Setting("warmup_start_lr", "float", 2e-4, "learning rate at the start of the warm-up", minimum=0),
        Setting("optimizer", "str", "adam", "adam: the official recipe (Adam, coupled L2 weight decay); adamw: timm's "
                "AdamW (decoupled decay), as ViT fine-tuning (VideoMAE) uses", choices=("adam", "adamw")),
        Setting("weight_decay", "float", 1e-3, "weight decay (not on BatchNorm, LayerNorm and biases)", minimum=0),
        Setting("layer_decay", "float", None, "layer-wise lr decay with adamw, for backbones made of layers (the "
                "ViTs): layer i of L gets lr x layer_decay^(L + 1 - i), the head the full lr (VideoMAE: 0.75 for "
                "ViT-B); null = none", minimum=1e-6, maximum=1, nullable=True),
        Setting("dropout", "float", 0.0, "dropout before the linear head", minimum=0, maximum=1),
        Setting("test_views", "int", 10, "test clips per video, uniformly spaced (HiCo's protocol)", minimum=1),
        Setting("test_crops", "int", 1, "1 (centre) or 3 (left, centre, right) test crops", choices=(1, 3)),
        Setting("num_workers", "int", 0, "DataLoader worker processes", minimum=0),
        Setting("cache_frames", "bool", False, "decode each video once and keep its frames (tiny datasets only)"),
        Setting("threads", "int", 0, "torch CPU threads; 0 = torch's default", minimum=0),
        Setting("seed", "int", 0, "seed of the head, the data order and the random-init backbone", minimum=0),
        Setting("progress_bar", "bool", True, "show a progress bar on stderr"),
        Setting("checkpoint_every", "int", 1, "epochs between resume points (in <metrics file>.resume/)", minimum=1),
        Setting("checkpoint_minutes", "float", 0.0, "also a resume point after the first step that ends this many "
                "minutes after the last one (mid-epoch too); 0 = off", minimum=0),
        Setting("keep_resume_dir", "bool", False, "keep <metrics file>.resume/ (the last resume points, with the "
                "trained weights, and steps.jsonl) after success instead of removing it"),
        Setting("precision", "str", "fp32", "fp32, or bf16 (bf16 autocast, CUDA only; CPU runs stay fp32)",
                choices=("fp32", "bf16")),
        Setting("sync_bn", "bool", False, "under torchrun, SyncBatchNorm over all processes (CUDA only); false: "
                "each BatchNorm sees its process's share of the batch, as in the paper"),
    ))


TASKS: dict[str, Task] = {
    "ft": Task(
        "ft", "full fine-tuning: every layer trained with a new linear head (HiCo's FT)", "videos",
        _finetune_settings("ft", "full fine-tuning"), "hico_bench.evaluate.classify:finetune", "top1",
        "FT top-1", options={"mode": "ft"}, long_training=True,
        protocol="every layer trained with a new linear head; top-1 of the softmax scores summed over the test "
        "clips x crops of each test video (10 x 1 by default)"),
    "lft": Task(
        "lft", "HiCo's linear evaluation: only the new linear head is optimised while the backbone's BatchNorm "
        "statistics keep updating (the official behaviour)", "videos",
        _finetune_settings("lft", "HiCo's linear evaluation"), "hico_bench.evaluate.classify:finetune", "top1",
        "LFT top-1", options={"mode": "lft"}, long_training=True,
        protocol="HiCo's linear evaluation: only a new linear head is optimised while the backbone's BatchNorm "
        "statistics keep updating; tested as FT"),
    "probe": Task(
        "probe", "strict linear probe: logistic regression on frozen features (C chosen on held-out train videos)",
        "features", Section("probe", "the strict linear probe", (
            Setting("cs", "list", [0.01, 0.1, 1.0, 10.0, 100.0], "inverse regularisation strengths tried",
                    item="float", minimum=1e-12),
            Setting("holdout", "float", 0.2, "fraction of the train split held out to choose C", minimum=0.01,
                    maximum=0.9),
            Setting("seed", "int", 0, "seed of the held-out split", minimum=0),
        )), "hico_bench.evaluate.probe:run_probe", "top1", "probe top-1",
        protocol="strict linear probe: logistic regression on frozen features, C chosen on held-out train videos; "
        "top-1 on the test split (no paper counterpart: the paper's frozen numbers are LFT)"),
    "retrieval": Task(
        "retrieval", "nearest-neighbour retrieval (VCOP protocol): test queries, train gallery, cosine, R@k",
        "features", Section("retrieval", "nearest-neighbour retrieval", (
            Setting("ks", "list", list(RECALL_KS), "R@k reported", item="int", minimum=1),
            Setting("center", "bool", False, "subtract each set's mean feature first (CoCLR's variant)"),
        )), "hico_bench.evaluate.retrieval:run_retrieval", "R@1", "retrieval R@1",
        protocol="test-split videos query the train-split gallery by cosine similarity of frozen features; R@1 = "
        "percent of queries whose nearest gallery video has their class"),
    "knn": Task(
        "knn", "weighted kNN on frozen features (DINO's protocol): the k most cosine-similar train videos vote "
        "exp(sim / T) for their class", "features", Section("knn", "the weighted kNN classifier", (
            Setting("k", "int", 20, "neighbours voting (clipped to the train split's size)", minimum=1),
            Setting("temperature", "float", 0.07, "T of the vote weight exp(cosine similarity / T)",
                    minimum=1e-6),
        )), "hico_bench.evaluate.knn:run_knn", "top1", "kNN top-1",
        protocol="weighted kNN: the k most cosine-similar train videos (L2-normalised frozen features) vote "
        "exp(sim / T) for their class (DINO's protocol, k 20, T 0.07 by default)"),
    "attentive": Task(
        "attentive", "attentive probe (V-JEPA's protocol): a learned query cross-attends over the frozen backbone's "
        "spatio-temporal tokens, then a linear classifier (lr chosen on held-out train videos)", "videos",
        Section("attentive", "the attentive probe", (
            Setting("views", "int", 10, "evenly spaced centre-cropped clips per video: each a training example, "
                    "test softmax summed over them", minimum=1),
            Setting("lrs", "list", [0.0003, 0.001, 0.003], "AdamW learning rates tried (V-JEPA: 0.001)",
                    item="float", minimum=1e-12),
            Setting("epochs", "int", 20, "training epochs over the cached tokens, cosine to 0 (V-JEPA: 20)",
                    minimum=1),
            Setting("batch_size", "int", 256, "clips per step", minimum=1),
            Setting("weight_decay", "float", 0.01, "AdamW weight decay, not on biases and LayerNorm (V-JEPA: 0.01)",
                    minimum=0),
            Setting("heads", "int", 16, "attention heads; must divide the backbone's channels", minimum=1),
            Setting("mlp_ratio", "float", 4.0, "MLP hidden width / channels after the attention; 0 = no MLP",
                    minimum=0),
            Setting("holdout", "float", 0.2, "fraction of the train split held out to choose the lr", minimum=0.01,
                    maximum=0.9),
            Setting("half_tokens", "bool", True, "keep the cached tokens in float16 (the head computes in float32)"),
            Setting("extract_batch_size", "int", 8, "videos per batch of the frozen pass", minimum=1),
            Setting("num_workers", "int", 0, "DataLoader worker processes of the frozen pass", minimum=0),
            Setting("cache_frames", "bool", False, "decode each video once and keep its frames (tiny datasets only)"),
            Setting("threads", "int", 0, "torch CPU threads; 0 = torch's default", minimum=0),
            Setting("seed", "int", 0, "seed of the head, the data order, the held-out split and the random-init "
                    "backbone", minimum=0),
            Setting("progress_bar", "bool", True, "show a progress bar of the frozen pass on stderr"),
        )), "hico_bench.evaluate.attentive:run_attentive", "top1", "attentive probe top-1",
        protocol="attentive probe: a learned query cross-attends over the frozen backbone's last spatio-temporal "
        "tokens, then a linear classifier; AdamW, lr chosen on held-out train videos; views' softmax summed"),
}
"""Every downstream task on UCF101 / HMDB51, in table order."""


def tasks_reading(what: str) -> tuple[str, ...]:
    return tuple(name for name, t in TASKS.items() if t.reads == what)
