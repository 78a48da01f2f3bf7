"""The Snakemake workflow: dry runs of both configs, the SLURM profile, lint, and the fast DAG end to end.

The end-to-end test runs config/ci.yaml (every variant and task on a smaller synthetic benchmark), then checks the
tables, that a finished DAG has nothing left to do, that changing one key reruns exactly the jobs depending on it,
and that a job killed half-way is rerun (and resumed), never taken as done.
"""

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
    assert counts["pretrain"] == 12  # 6 variants x {k400, uk400}
    assert counts["features"] == 13 * 2  # 12 checkpoints + random init, x UCF101 / HMDB51
    assert counts["finetune"] == 13 * 2 * 2  # ft and lft
    assert counts["probe_or_retrieval"] == 13 * 2 * 2
    assert counts["export_features"] == counts["localize"] == 13
    assert counts["tables"] == counts["plots"] == 1


@pytest.fixture
def fake_tree(tmp_path):
    """Paths for config/paper.yaml that exist (a dry run checks paths, not contents)."""
    paths = {}
    for name, keys in {"k400": ("csv", "videos"), "uk400": ("csv", "videos"), "ucf101": ("root", "splits_dir"),
                       "hmdb51": ("root", "splits_dir"), "activitynet": ("json", "videos")}.items():
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


def test_paper_config_on_slurm_lists_the_full_dag_with_gpu_resources(fake_tree):
    result = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", "--configfile", "config/paper.yaml",
                       str(fake_tree))
    counts = job_counts(result.stdout)
    assert counts["pretrain"] == 12 and counts["prepare"] == 5 and counts["finetune"] == 52
    blocks = result.stdout.split("rule ")
    pretrain = [b for b in blocks if b.startswith("pretrain:")]
    finetune = [b for b in blocks if b.startswith("finetune:")]
    assert pretrain and all("gpu=8" in b and "cpus_per_gpu=10" in b and "runtime=4320" in b for b in pretrain)
    assert finetune and all("gpu=1" in b for b in finetune)
    assert "s3dg_uk400_16x112" in result.stdout


def test_profiles_and_configs_parse_and_validate():
    from snakemake.utils import validate

    for profile in ("default", "slurm"):
        assert isinstance(yaml.safe_load((ROOT / "workflow/profiles" / profile / "config.yaml").read_text()), dict)
    schema = str(ROOT / "workflow/schemas/config.schema.yaml")
    for name in ("config.yaml", "paper.yaml", "ci.yaml"):
        validate(yaml.safe_load((ROOT / "config" / name).read_text()), schema)


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
    """config/ci.yaml, every variant and task, in a copy of the workflow (its own .snakemake/ and results/)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "Snakefile", work)
    shutil.copytree(ROOT / "workflow", work / "workflow")
    shutil.copytree(ROOT / "config", work / "config")
    results = work / "results" / "ci"
    configs = ["--configfile", "config/ci.yaml"]

    def smk(*args, **kwargs):
        return snakemake(*args, cwd=work, **kwargs)

    smk("--cores", "2", *configs, timeout=1200)

    tables = results / "tables"
    for name in ("recognition", "retrieval", "ablation", "trimmed_vs_untrimmed", "localization"):
        assert (tables / f"{name}.csv").stat().st_size > 0 and (tables / f"{name}.md").exists()
    for name in ("loss_curves", "delta_max", "ablation_bars", "retrieval_recall"):
        assert (results / "plots" / f"{name}.png").stat().st_size > 1000

    runs = [f"{m}_tiny_{s}_8x16" for m in ("simclr", "vcl_fixed", "vcl_gradual", "hico_fixed", "hico", "hico_bce")
            for s in ("k400", "uk400")] + ["random_init_tiny_none_8x16"]
    ablation = pd.read_csv(tables / "ablation.csv")
    text = ablation.to_csv()
    for run in runs:
        assert (results / "eval" / run / "localization_activitynet.json").exists()
    # every run has a row with numbers in every measured column
    measured = [c for c in ablation.columns
                if c.endswith(" mean") and ("top-1" in c or "R@1" in c or "mAP" in c) and "paper" not in c]
    assert measured, ablation.columns
    assert len(ablation) >= len(runs), text
    for column in measured:
        assert ablation[column].map(numeric).all(), (column, text)

    # a finished DAG has nothing left to do
    assert "Nothing to be done" in smk("-n", *configs).stdout

    # changing one key reruns exactly the jobs that depend on it
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"downstream": {"retrieval": {"center": True}}}))
    counts = job_counts(smk("-n", *configs, str(changed)).stdout)
    assert counts == {"probe_or_retrieval": 26, "merge_splits": 26, "tables": 1, "plots": 1, "all": 1, "total": 55}

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
    dry = smk("-n", target, *configs).stdout
    assert "pretrain" in job_counts(dry)
    smk("--cores", "1", target, *configs)
    log = (results / "logs" / "pretrain_hico_tiny_uk400_8x16.log").read_text()
    assert "resuming hico_tiny_uk400_8x16 from epoch 1" in log
