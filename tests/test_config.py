import copy
from pathlib import Path

import pytest
import yaml

from hico_bench.config import (
    dataset_paths,
    evaluated_runs,
    parse_settings,
    pretrain_runs,
    run_name,
    task_settings,
)
from hico_bench.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def load(name="config.yaml"):
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config" / name).read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_run_names_follow_the_pattern():
    assert run_name("hico", "s3dg", "uk400", 16, 112) == "hico_s3dg_uk400_16x112"
    assert run_name("hico", "s3dg", "uk400", 16, 112, seed=2) == "hico_s3dg_uk400_16x112_seed2"


def test_default_grid_is_every_variant_on_both_sets():
    config = load()
    runs = pretrain_runs(config)
    assert len(runs) == 12
    hico = runs["hico_tiny_uk400_8x16"]
    assert hico["settings"]["schedule"] == "gradual" and hico["settings"]["topical"] is True
    assert runs["hico_bce_tiny_k400_8x16"]["settings"]["gamma"] == 0.0
    assert runs["simclr_tiny_uk400_8x16"]["settings"]["num_clips"] == 2
    assert runs["simclr_tiny_uk400_8x16"]["settings"]["schedule"] == "none"
    # the model section reaches every run
    assert all(r["settings"]["backbone"] == "tiny" and r["settings"]["frames"] == 8 for r in runs.values())
    evaluated = evaluated_runs(config)
    assert evaluated["random_init_tiny_none_8x16"]["checkpoint"] is None
    assert len(evaluated) == 13


def test_seeds_add_replicates_without_renaming_seed_zero():
    config = load()
    config["seeds"] = [0, 1]
    runs = pretrain_runs(config)
    assert "hico_tiny_uk400_8x16" in runs and "hico_tiny_uk400_8x16_seed1" in runs
    assert runs["hico_tiny_uk400_8x16_seed1"]["settings"]["seed"] == 1


def test_unknown_variant_lists_the_valid_ones():
    config = load()
    config["pretrain"]["variants"] = ["hico", "moco"]
    with pytest.raises(UserError, match=r"unknown pretraining variant 'moco'.*hico_bce.*simclr"):
        pretrain_runs(config)


def test_per_set_and_per_dataset_settings_override():
    config = load()
    config["pretrain"]["per_set"] = {"uk400": {"epochs": 7}}
    runs = pretrain_runs(config)
    assert runs["hico_tiny_uk400_8x16"]["settings"]["epochs"] == 7
    assert runs["hico_tiny_k400_8x16"]["settings"]["epochs"] == config["pretrain"]["settings"]["epochs"]
    assert task_settings(config, "ft", "hmdb51")["lr"] == 0.001
    assert task_settings(config, "ft", "ucf101")["lr"] == 0.002


def test_real_dataset_paths_must_be_set_and_exist(tmp_path):
    config = load()
    config["synthetic"]["enabled"] = False
    with pytest.raises(UserError, match=r"datasets\.ucf101\.root is not set"):
        dataset_paths(config, "ucf101")
    config["datasets"]["ucf101"] = {"root": str(tmp_path / "nope"), "splits_dir": str(tmp_path)}
    with pytest.raises(UserError, match=r"datasets\.ucf101\.root points at .*nope, which does not exist"):
        dataset_paths(config, "ucf101")
    config["datasets"]["ucf101"]["root"] = str(tmp_path)
    assert dataset_paths(config, "ucf101")["root"] == str(tmp_path)


def test_synthetic_paths_live_under_the_synthetic_root():
    config = copy.deepcopy(load())
    paths = dataset_paths(config, "hmdb51")
    assert paths["splits_dir"].startswith(config["synthetic"]["root"])
    with pytest.raises(UserError, match="unknown dataset 'kinetics'"):
        dataset_paths(config, "kinetics")


def test_parse_settings(tmp_path):
    assert parse_settings('{"a": 1}') == {"a": 1}
    assert parse_settings(None) == {}
    f = tmp_path / "s.yaml"
    f.write_text("epochs: 3\n")
    assert parse_settings(f"@{f}") == {"epochs": 3}
    with pytest.raises(UserError, match="not valid JSON"):
        parse_settings("{epochs: 3")
    with pytest.raises(UserError, match="must be a JSON object"):
        parse_settings("[1]")
