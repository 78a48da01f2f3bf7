"""The settings model: every section and every verb answers an unknown key, a wrong type or a value out of range with
one sentence naming the key; command-line strings become the declared types."""

import copy
from pathlib import Path

import pytest
import yaml

from hico_bench.cli import COMMANDS, main
from hico_bench.errors import UserError
from hico_bench.settings import MapOf, Section, Setting, check_value, config_section, validate_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def section_paths(section: Section, prefix: tuple = ()) -> list[tuple]:
    """The key path of every section (and of one example entry of every mapping) of the config."""
    out = [prefix]
    for e in section.entries:
        if isinstance(e, Section):
            out += section_paths(e, prefix + (e.name,))
        elif isinstance(e, MapOf) and isinstance(e.value, Section):
            allowed = e.keys() if callable(e.keys) else e.keys
            key = next(iter(allowed)) if allowed else "x"
            out += section_paths(e.value, prefix + (e.name, key))
    return out


def with_key(config: dict, path: tuple, key: str, value) -> dict:
    config = copy.deepcopy(config)
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[key] = value
    return config


def required_for(path: tuple) -> dict:
    """Entries of mappings whose values have required keys (an external checkpoint needs a path and a backbone)."""
    return {"path": "x.pt", "backbone": "tiny"} if path[:1] == ("external",) else {}


@pytest.mark.parametrize("path", section_paths(config_section()), ids=lambda p: ".".join(p) or "top")
def test_an_unknown_key_in_any_config_section_is_one_sentence_naming_it(path):
    config = with_key(CONFIG, path, "bogus", 1)
    for key, value in required_for(path).items():
        config = with_key(config, path, key, value)
    dotted = ".".join((*path, "bogus"))
    with pytest.raises(UserError) as exc:
        validate_config(config)
    message = str(exc.value)
    assert message.startswith(f"unknown setting '{dotted}'; the valid keys") and message.endswith(".")
    assert "\n" not in message


def test_the_documented_command_line_overrides_arrive_typed():
    # snakemake --config seeds=[0,1,2] / pretrain='{"settings":{"epochs":3}}' hand these strings over
    config = validate_config({**CONFIG, "seeds": ["0", "1", "2"]})
    assert config["seeds"] == [0, 1, 2]
    config = validate_config({**CONFIG, "pretrain": {**CONFIG["pretrain"], "settings": {"epochs": "3"}}})
    assert config["pretrain"]["settings"] == {"epochs": 3}
    config = validate_config({**CONFIG, "downstream": {"retrieval": {"center": "true", "ks": ["1", "5"]},
                                                       "input": {"target_fps": "29.97", "decode_size": "null"}}})
    assert config["downstream"]["retrieval"] == {"center": True, "ks": [1, 5]}
    assert config["downstream"]["input"]["target_fps"] == 29.97 and config["downstream"]["input"]["decode_size"] is None
    config = validate_config({**CONFIG, "model": {"backbone": "tiny", "backbone_kwargs": {"out_dim": "64"}}})
    assert config["model"]["backbone_kwargs"] == {"out_dim": 64}


@pytest.mark.parametrize("kind, value, message", [
    ("int", "x", "setting a.b must be an integer, not 'x'."),
    ("int", 2.5, "setting a.b must be an integer, not 2.5."),
    ("float", True, "setting a.b must be a number, not True."),
    ("bool", "maybe", "setting a.b must be true or false, not 'maybe'."),
    ("str", 3, "setting a.b must be a string, not 3."),
])
def test_wrong_types_are_one_sentence(kind, value, message):
    with pytest.raises(UserError) as exc:
        check_value(Setting("b", kind, None, ""), value, "a.b")
    assert str(exc.value) == message


def test_bounds_choices_and_required_keys():
    with pytest.raises(UserError, match=r"^setting a.n must be at least 1, not 0.$"):
        check_value(Setting("n", "int", 1, "", minimum=1), 0, "a.n")
    with pytest.raises(UserError, match=r"^setting a.c must be one of 2, 3; 4 is not.$"):
        check_value(Setting("c", "int", 3, "", choices=(2, 3)), 4, "a.c")
    with pytest.raises(UserError, match=r"^setting a.r must satisfy lo <= hi, not \[3, 1\].$"):
        check_value(Setting("r", "range", [1, 2], "", item="int"), [3, 1], "a.r")
    assert check_value(Setting("r", "range", [1, 2], "", item="float"), 2, "a.r") == [2.0, 2.0]
    with pytest.raises(UserError, match=r"config key external.x.backbone is not set; it is required"):
        validate_config({**CONFIG, "external": {"x": {"path": "a.pt"}}})


def test_defaults_fill_in_and_partial_sections_stay_partial():
    config = validate_config({})
    assert config["pretrain"]["input"]["frames"] == 8 and config["downstream"]["splits"] == [1]
    assert config["pretrain"]["settings"] == {} and config["downstream"]["ft"] == {}


# ---- every verb --------------------------------------------------------------------------------------------------
def verb_args(verb: str, tmp_path: Path) -> list[str]:
    """Arguments that make a verb reach its settings check (the files need not exist: settings come first)."""
    f = str(tmp_path / "nothing")
    model = '{"backbone": "tiny"}'
    run = '{"method": "hico", "backbone": "tiny", "set": "uk400", "pretrain_input": "8x16"}'
    args = {
        "synthesize": ["--root", f],
        "pretrain": ["--manifest", f, "--out-dir", f],
        "features": ["--manifest", f, "--out", f, "--checkpoint", "none", "--model", model],
        "export-features": ["--manifest", f, "--out-dir", f, "--checkpoint", "none", "--model", model],
        "localize": ["--features", f, "--ground-truth", f, "--predictions", f, "--out", f],
    }
    if verb in args:
        return args[verb]
    from hico_bench.evaluate.tasks import TASKS

    task = TASKS[verb]
    common = ["--out", f, "--dataset", "ucf101", "--run", run]
    if task.reads == "features":
        return common + ["--features", f]
    return common + ["--manifest", f, "--checkpoint", "none", "--model", model]


def verbs_with_settings() -> list[str]:
    import argparse

    out = []
    for name, (_, configure, _) in COMMANDS.items():
        p = argparse.ArgumentParser()
        configure(p)
        if any("--settings" in a.option_strings for a in p._actions):
            out.append(name)
    return out


def test_the_verbs_with_settings_are_all_tested():
    from hico_bench.evaluate.tasks import TASKS

    assert set(verbs_with_settings()) == {"synthesize", "pretrain", "features", "export-features", "localize",
                                          *TASKS}


@pytest.mark.parametrize("verb", verbs_with_settings())
def test_every_verb_answers_an_unknown_setting_with_one_sentence(verb, tmp_path, capsys):
    assert main([verb, *verb_args(verb, tmp_path), "--settings", '{"bogus": 1}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hico-bench {verb}: error: unknown setting '") and "bogus" in err[0]
    assert "the valid keys of" in err[0]


@pytest.mark.parametrize("verb", ["features", "export-features", "ft"])
def test_an_unknown_model_key_is_one_sentence(verb, tmp_path, capsys):
    args = verb_args(verb, tmp_path)
    args[args.index("--model") + 1] = '{"backbone": "tiny", "frame": 8}'
    assert main([verb, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hico-bench {verb}: error: unknown setting 'model.frame'; the valid keys of model are: backbone, "
                   "backbone_kwargs, decode_size, frames, sampling_rate, size, target_fps."]
