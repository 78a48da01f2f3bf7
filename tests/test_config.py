import copy
from pathlib import Path

import pytest
import yaml

from hico_bench.config import build_grid, dataset_paths, parse_settings, task_settings
from hico_bench.errors import UserError
from hico_bench.identity import RunIdentity
from hico_bench.settings import validate_config

ROOT = Path(__file__).resolve().parents[1]


def load(name="config.yaml", **overrides):
    raw = yaml.safe_load((ROOT / "config" / name).read_text())
    raw.update(overrides)
    return validate_config(raw)


def test_run_names_follow_the_pattern():
    assert RunIdentity("hico", "s3dg", "uk400", "16x112").name == "hico_s3dg_uk400_16x112"
    assert RunIdentity("hico", "s3dg", "uk400", "16x112", seed=2).name == "hico_s3dg_uk400_16x112_seed2"
    assert RunIdentity("random_init", "s3dg", "none", "none").name == "random_init_s3dg"
    assert RunIdentity("hico", "s3dg", "uk400", "16x112", external="official").name == "official"


def test_default_grid_is_every_variant_on_both_sets():
    grid = build_grid(load())
    runs = grid.pretrain
    assert len(runs) == 13  # and HiCo on HACS (a group)
    assert runs["hico_tiny_hacs_8x16"].settings["method"] == "hico"
    hico = runs["hico_tiny_uk400_8x16"].settings
    assert hico["schedule"] == "gradual" and hico["topical"] is True
    assert runs["hico_bce_tiny_k400_8x16"].settings["gamma"] == 0.0
    assert runs["simclr_tiny_uk400_8x16"].settings["num_clips"] == 2
    assert runs["simclr_tiny_uk400_8x16"].settings["schedule"] == "none"
    # the model section and the pretraining input reach every run
    assert all(r.settings["backbone"] == "tiny" and r.settings["frames"] == 8 for r in runs.values())
    assert set(grid.runs) == {"random_init_tiny", *runs}
    assert grid.runs["random_init_tiny"].checkpoint is None
    assert {label for _, label in grid.evaluations} == {"8x16"}
    from hico_bench.evaluate.tasks import TASKS

    assert len(grid.eval_outputs("results")) == 14 * (len(TASKS) * 2 + 1)
    assert runs["simclr_tiny_k400_8x16"].settings["trimmed"] is True  # trimmed clips: interval sampling
    assert "trimmed" not in runs["simclr_tiny_uk400_8x16"].settings


def test_seeds_add_replicates_without_renaming_seed_zero():
    runs = build_grid(load(seeds=[0, 1], groups={})).pretrain
    assert "hico_tiny_uk400_8x16" in runs and "hico_tiny_uk400_8x16_seed1" in runs
    assert runs["hico_tiny_uk400_8x16_seed1"].settings["seed"] == 1


def test_unknown_variant_lists_the_valid_ones():
    config = load()
    config["pretrain"]["variants"] = ["hico", "moco"]
    with pytest.raises(UserError, match=r"unknown pretraining variant 'moco'.*hico_bce.*simclr"):
        build_grid(config)


def test_a_config_variant_adds_to_the_built_in_ones():
    config = load(variants={"hico_g1": {"gamma": 1.0}})
    config["pretrain"]["variants"] = ["hico_g1"]
    # a new variant starts from the pretraining defaults (HiCo's switches) and sets what it changes
    assert build_grid(config).pretrain["hico_g1_tiny_uk400_8x16"].settings["gamma"] == 1.0


def test_per_set_and_per_dataset_settings_override():
    config = load()
    config["pretrain"]["per_set"] = {"uk400": {"epochs": 7}}
    runs = build_grid(config).pretrain
    assert runs["hico_tiny_uk400_8x16"].settings["epochs"] == 7
    assert runs["hico_tiny_k400_8x16"].settings["epochs"] == config["pretrain"]["settings"]["epochs"]
    assert task_settings(config, "ft", "hmdb51")["lr"] == 0.001
    assert task_settings(config, "ft", "ucf101")["lr"] == 0.002


def test_pretraining_and_downstream_inputs_are_separate():
    config = load()
    config["pretrain"]["input"].update(frames=4)
    config["downstream"]["input"].update(frames=16, size=32)
    grid = build_grid(config)
    assert "hico_tiny_uk400_4x16" in grid.pretrain
    assert grid.pretrain["hico_tiny_uk400_4x16"].settings["frames"] == 4
    ev = grid.evaluations[("hico_tiny_uk400_4x16", "16x32")]
    assert ev.model["frames"] == 16 and ev.model["size"] == 32 and ev.model["backbone"] == "tiny"
    assert "results/eval/hico_tiny_uk400_4x16/16x32/ft_ucf101.json" in grid.eval_outputs("results")


def test_groups_add_grids_and_share_identical_jobs():
    config = load(groups={
        "big_ft": {"pretrain": {"sets": ["uk400"], "variants": ["hico"]},
                   "downstream": {"input": {"frames": 16, "size": 32}, "tasks": ["ft"], "random_init": False},
                   "localization": {"enabled": False}},
        "r3d": {"model": {"backbone": "r3d18"}, "pretrain": {"variants": ["hico"], "sets": ["uk400"]}},
    })
    grid = build_grid(config)
    assert len(grid.pretrain) == 12 + 1  # hico_tiny_uk400_8x16 is shared with the base grid
    assert "hico_r3d18_uk400_8x16" in grid.pretrain
    big = grid.evaluations[("hico_tiny_uk400_8x16", "16x32")]
    assert list(big.tasks) == ["ft"] and big.localization is None
    assert ("random_init_tiny", "16x32") not in grid.evaluations
    assert ("random_init_r3d18", "8x16") in grid.evaluations


def test_groups_that_ask_for_one_job_with_other_settings_are_refused():
    config = load(groups={"other": {"pretrain": {"settings": {"epochs": 3}}}})
    with pytest.raises(UserError, match=r"pretraining run simclr_tiny_k400_8x16 is asked for by the base config and "
                                        r"by group 'other' with different settings"):
        build_grid(config)
    with pytest.raises(UserError, match=r"group 'x' sets 'results'; a group may set only"):
        build_grid(load(groups={"x": {"results": "elsewhere"}}))
    with pytest.raises(UserError, match=r"in group 'y': unknown setting 'pretrain.setts'"):
        build_grid(load(groups={"y": {"pretrain": {"setts": {}}}}))


def test_external_checkpoints_are_evaluated_as_their_own_runs(tmp_path):
    config = load(external={"official_hico": {"path": str(tmp_path / "x.pyth"), "backbone": "s3dg", "method": "hico",
                                              "set": "uk400", "pretrain_input": "16x112"}})
    grid = build_grid(config)
    ev = grid.evaluations[("official_hico", "8x16")]
    assert ev.run.checkpoint == str(tmp_path / "x.pyth") and ev.model["backbone"] == "s3dg"
    assert ev.run.identity.as_dict() == {"name": "official_hico", "method": "hico", "backbone": "s3dg",
                                         "set": "uk400", "pretrain_input": "16x112", "seed": 0,
                                         "external": "official_hico"}
    with pytest.raises(UserError, match=r"config key external.bad.path is not set"):
        load(external={"bad": {"backbone": "tiny"}})


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
