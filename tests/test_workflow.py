"""The Snakemake workflow: dry runs of both configs, the SLURM profile, lint, and the fast DAG end to end.

The end-to-end test runs config/ci.yaml (every variant and task on a smaller synthetic benchmark), then checks the
tables, that a finished DAG has nothing left to do, that changing one key reruns exactly the jobs depending on it,
and that a job killed half-way is rerun (and resumed), never taken as done.
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake(*args, cwd=ROOT, check=True, timeout=900):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_default_dry_run_lists_the_whole_grid():
    counts = job_counts(snakemake("-n").stdout)
    assert counts["pretrain"] == 13  # 6 variants x {k400, uk400}, and HiCo on HACS
    assert counts["features"] == 14 * 2  # 13 checkpoints + random init, x UCF101 / HMDB51
    assert counts["task_on_videos"] == 14 * 2 * 3  # ft, lft and the attentive probe
    assert counts["task_on_features"] == 14 * 2 * 3  # probe, retrieval and kNN
    assert counts["export_features"] == counts["localize"] == 14
    assert counts["tables"] == counts["plots"] == 1


def test_command_line_overrides_arrive_as_the_declared_types():
    """The overrides config/README.md shows: Snakemake hands list and mapping values over as strings."""
    counts = job_counts(snakemake("-n", "--config", "seeds=[0,1,2]").stdout)
    assert counts["pretrain"] == 3 * 13
    out = snakemake("-n", "-p", "--config", 'pretrain={"settings": {"epochs": 3}}').stdout
    pretrain_lines = [line for line in out.splitlines() if "hico-bench pretrain" in line]
    assert len(pretrain_lines) == 13 and all('"epochs":3,' in line for line in pretrain_lines)


def test_a_config_mistake_is_one_sentence_naming_the_key():
    result = snakemake("-n", "--config", "bogus=1", check=False)
    assert result.returncode != 0
    assert "config: unknown setting 'bogus'; the valid keys are: datasets, downstream" in result.stdout + result.stderr
    result = snakemake("-n", "--config", "seeds=[0,x]", check=False)
    assert "config: setting seeds must be a list of integers; item 1 is 'x'." in result.stdout + result.stderr


@pytest.fixture
def fake_tree(tmp_path):
    """Paths for config/paper.yaml that exist (a dry run checks paths, not contents)."""
    paths = {}
    for name, keys in {"k400": ("csv", "videos"), "uk400": ("csv", "videos"), "hacs": ("json", "videos"),
                       "ucf101": ("root", "splits_dir"), "hmdb51": ("root", "splits_dir"),
                       "activitynet": ("json", "videos")}.items():
        paths[name] = {}
        for key in keys:
            p = tmp_path / name / key
            if key in ("csv", "json"):
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("")
            else:
                p.mkdir(parents=True)
            paths[name][key] = str(p)
    config = tmp_path / "paths.yaml"
    config.write_text(yaml.safe_dump({"datasets": paths, "results": str(tmp_path / "results")}))
    return config


def test_paper_config_without_paths_fails_with_a_sentence_naming_the_key():
    result = snakemake("-n", "--configfile", "config/paper.yaml", check=False)
    assert result.returncode != 0
    assert "config key datasets.k400.csv is not set" in result.stdout + result.stderr


def rule_blocks(output: str) -> dict[str, list[str]]:
    """The job descriptions of a dry run, by rule name."""
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if m:
            blocks.setdefault(m.group(1), []).append(block)
    return blocks


def video_task_gpus(block: str, default: int) -> int:
    """paper.yaml: fine-tuning and linear evaluation run under torchrun on its downstream.gpus (8); any other job of
    the block's rule gets ``default``."""
    if re.search(r"\btask=(ft|lft)\b", block):
        return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["downstream"]["gpus"]
    return default


def test_paper_config_on_slurm_gives_every_gpu_job_its_gpus(fake_tree):
    result = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", "--configfile", "config/paper.yaml",
                       str(fake_tree))
    counts = job_counts(result.stdout)
    assert counts["prepare"] == 6  # k400, uk400, hacs, activitynet, ucf101 and hmdb51 split 1
    blocks = rule_blocks(result.stdout)
    expected_gpus = {"pretrain": 8, "task_on_videos": 1, "features": 1, "export_features": 1}
    for rule, gpus in expected_gpus.items():
        assert blocks[rule], rule
        for block in blocks[rule]:
            assert re.search(rf"\bgpu={video_task_gpus(block, gpus)}\b", block), (rule, block)
    assert all("cpus_per_gpu=10" in b and "runtime=4320" in b for b in blocks["pretrain"])
    cpu_rules = set(blocks) - set(expected_gpus)
    for rule in cpu_rules:
        for block in blocks[rule]:
            assert not re.search(r"\bgpu=[1-9]", block), (rule, block)
    assert "hico_s3dg_uk400_16x112" in result.stdout


def test_paper_config_on_one_machine_schedules_gpu_jobs_by_their_gpus(fake_tree):
    """`--resources gpu=8` on one machine: the same gpu resource reaches the local scheduler."""
    result = snakemake("-n", "--cores", "16", "--resources", "gpu=8", "--configfile", "config/paper.yaml",
                       str(fake_tree))
    blocks = rule_blocks(result.stdout)
    assert all(re.search(r"\bgpu=8\b", b) for b in blocks["pretrain"])
    assert all(re.search(rf"\bgpu={video_task_gpus(b, 1)}\b", b) for b in blocks["task_on_videos"])


def test_every_hico_row_of_the_paper_has_a_job_filling_its_measured_cell(fake_tree):
    """config/paper.yaml: for every HiCo row of the paper's recognition and retrieval tables, the dry run holds an
    evaluation job whose metrics file the tables put into that row (the tables' own matching rule)."""
    from hico_bench.config import build_grid
    from hico_bench.results.groups import Group
    from hico_bench.results.reference import load_reference, paper_rows
    from hico_bench.settings import validate_config

    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config.update(yaml.safe_load(fake_tree.read_text()))
    config = validate_config(config)
    dry = snakemake("-n", "--configfile", "config/paper.yaml", str(fake_tree)).stdout
    ref = load_reference()
    hico = ref[(ref["method"] == "HiCo") & ref["table"].isin(["sota_recognition", "retrieval_table6"])]
    assert len(hico) == 50  # 26 recognition rows (LFT, FT at 16x112 and 32x224) + 24 retrieval rows
    filled = {}
    for (run, label), ev in build_grid(config).evaluations.items():
        identity = ev.run.identity
        for task, per_dataset in ev.tasks.items():
            for dataset in per_dataset:
                group = Group(identity.method, identity.backbone, identity.set, identity.pretrain_input,
                              identity.external, task, dataset, label, "")
                output = f"{config['results']}/eval/{run}/{label}/{task}_{dataset}.json"
                for line in paper_rows(ref, group)["line"]:
                    if output in dry:
                        filled.setdefault(line, output)
    missing = hico[~hico["line"].isin(filled)]
    assert missing.empty, missing[["method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol",
                                   "dataset", "metric"]].to_string()


def test_profiles_parse():
    for profile in ("default", "slurm"):
        assert isinstance(yaml.safe_load((ROOT / "workflow/profiles" / profile / "config.yaml").read_text()), dict)


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def numeric(value) -> bool:
    try:
        return not math.isnan(float(str(value).split(" ")[0]))
    except ValueError:
        return False


@pytest.mark.slow
def test_fast_dag_end_to_end(tmp_path):
    """config/ci.yaml (every rule, variant and task, two seeds of one run) plus an external checkpoint, in a copy of
    the workflow (its own .snakemake/ and results/)."""
    import torch

    from hico_bench.models.backbones import build_backbone

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "Snakefile", work)
    shutil.copytree(ROOT / "workflow", work / "workflow")
    shutil.copytree(ROOT / "config", work / "config")
    results = work / "results" / "ci"

    # a checkpoint this project did not train (a plain state dict with DDP and backbone prefixes)
    torch.manual_seed(5)
    state = {f"module.backbone.{k}": v for k, v in build_backbone("tiny").state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "someone_elses.pth")
    external = tmp_path / "external.yaml"
    external.write_text(yaml.safe_dump({"external": {"ext_tiny": {
        "path": str(tmp_path / "someone_elses.pth"), "backbone": "tiny", "method": "hico", "set": "uk400",
        "pretrain_input": "8x16"}}}))
    configs = ["--configfile", "config/ci.yaml", str(external)]

    # a metrics file left behind by another configuration must not reach the tables
    leftover = results / "eval" / "leftover_run" / "8x16" / "probe_ucf101.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text(json.dumps({
        "run": {"method": "hico", "backbone": "tiny", "set": "uk400", "pretrain_input": "8x16", "seed": 7},
        "task": "probe", "dataset": "ucf101", "split": 1, "downstream_input": "8x16",
        "metrics": {"top1": 99.0}, "protocol": {}}))

    def smk(*args, **kwargs):
        return snakemake(*args, cwd=work, **kwargs)

    smk("--cores", "2", *configs, timeout=1500)

    tables = results / "tables"
    for name in ("recognition", "retrieval", "ablation", "trimmed_vs_untrimmed", "localization"):
        assert (tables / f"{name}.csv").stat().st_size > 0 and (tables / f"{name}.md").exists()
        assert "seed7" not in (tables / f"{name}.sources.csv").read_text()
        assert "leftover_run" not in (tables / f"{name}.sources.csv").read_text()
    for name in ("loss_curves", "delta_max", "ablation_bars", "retrieval_recall"):
        assert (results / "plots" / f"{name}.png").stat().st_size > 1000

    # config/ci.yaml: these go through every task (on UCF101) and the localization; HiCo on K400, the other variants
    # and HACS are probed; the second seed of HiCo on UK400 is probed and kNN-classified
    full = ["hico_tiny_uk400_8x16", "random_init_tiny", "ext_tiny"]
    probed = ["hico_tiny_k400_8x16", "hico_tiny_hacs_8x16"]
    probed += [f"{m}_tiny_uk400_8x16" for m in ("simclr", "vcl_fixed", "vcl_gradual", "hico_fixed", "hico_bce")]
    runs = full + probed + ["hico_tiny_uk400_8x16_seed1"]
    for run in full:
        assert (results / "eval" / run / "8x16" / "localization_activitynet.json").exists(), run
    for run in runs:
        assert json.loads((results / "eval" / run / "8x16" / "probe_ucf101.json").read_text())["run"]["name"] == run
    ablation = pd.read_csv(tables / "ablation.csv")
    text = ablation.to_csv()
    assert len(ablation) == len(runs) - 1, text  # the two seeds of HiCo on UK400 share one row

    def row(run: str) -> pd.Series:
        # the runs column names each configuration by its seed-0 run, e.g. "hico_tiny_uk400_8x16 (seeds 0,1)"
        rows = ablation[ablation["runs"].map(lambda text: run in {part.split(" (")[0] for part in text.split("; ")})]
        assert len(rows) == 1, (run, text)
        return rows.iloc[0]

    # a number in every column a run was evaluated for: each task's headline metric, the localization mAP
    headline = [c for c in ablation.columns
                if c.endswith(" mean") and ("UCF101" in c or "ActivityNet" in c) and "paper" not in c]
    assert {c.split(" ")[0] for c in headline} == {"FT", "LFT", "probe", "retrieval", "kNN", "attentive",
                                                   "localization"}, headline
    for run in full:
        assert all(numeric(row(run)[c]) for c in headline), (run, text)
    for run in probed:
        assert numeric(row(run)["probe top-1 UCF101 mean"]), (run, text)
    hico_uk400 = row("hico_tiny_uk400_8x16")
    assert "hico_tiny_uk400_8x16 (seeds 0,1)" in hico_uk400["runs"], text
    for column in ("probe top-1 UCF101", "kNN top-1 UCF101"):
        assert hico_uk400[f"{column} n"] == 2 and numeric(hico_uk400[f"{column} ci95"]), (column, text)
    assert hico_uk400["FT top-1 UCF101 n"] == 1, text

    # a finished DAG has nothing left to do
    assert "Nothing to be done" in smk("-n", *configs).stdout

    # changing one key reruns exactly the jobs that depend on it
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"downstream": {"retrieval": {"center": True}}}))
    counts = job_counts(smk("-n", *configs, str(changed)).stdout)
    evaluated = len(full)  # the runs with a retrieval job
    assert counts == {"task_on_features": evaluated, "merge_splits": evaluated, "tables": 1, "plots": 1, "all": 1,
                      "total": 2 * evaluated + 3}

    # a job killed half-way is not taken as done: it reruns, and pretraining resumes from its newest checkpoint
    run_dir = results / "pretrain" / "hico_tiny_uk400_8x16"
    shutil.rmtree(run_dir)
    longer = tmp_path / "longer.yaml"
    longer.write_text(yaml.safe_dump({"pretrain": {"settings": {"epochs": 30, "warmup_epochs": 1, "batch_videos": 8}}}))
    configs.append(str(longer))
    target = str((run_dir / "checkpoint_last.pt").relative_to(work))  # targets are matched as the rules spell them
    proc = subprocess.Popen([*SNAKEMAKE, "--cores", "1", target, *configs], cwd=work, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoint_epoch_0001.pt").exists():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / "checkpoint_epoch_0001.pt").exists() and not (run_dir / "checkpoint_last.pt").exists()
    smk("--unlock", *configs)  # a SIGKILL leaves Snakemake's lock behind
    refused = smk("-n", target, *configs, check=False)
    assert refused.returncode != 0 and "IncompleteFilesException" in refused.stdout + refused.stderr
    rerun = [target, *configs, "--rerun-incomplete"]  # as both profiles (workflow/profiles/) set
    assert "pretrain" in job_counts(smk("-n", *rerun).stdout)
    smk("--cores", "1", *rerun)
    log = (results / "logs" / "pretrain_hico_tiny_uk400_8x16.log").read_text()
    assert "resuming hico_tiny_uk400_8x16 from epoch 1" in log
