"""README.md opens with the two commands that do everything, and CI runs exactly the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.strip() for line in lines[:12] if line.startswith("    ")]


def test_readme_opens_with_the_main_job_and_the_test_command():
    main, tests = readme_commands()[:2]
    assert main.endswith("snakemake --cores all") and "pip install -e ." in main
    assert tests.endswith("pytest -q") and "'.[test]'" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]


def test_every_declared_setting_is_documented_with_its_default():
    """config/README.md lists every key of the settings model (hico_bench/settings.py, the task registry) as a row
    `| `key` | `default` | meaning |`; a new or changed setting fails here with the row to write."""
    from hico_bench.settings import CLIP, PRETRAIN, SYNTHETIC, config_section, doc_rows

    doc = (ROOT / "config" / "README.md").read_text()
    excluded = ("backbone", "backbone_kwargs", *CLIP.keys, "method", "seed")
    rows = doc_rows(config_section()) + doc_rows(SYNTHETIC)
    rows += [r for r in doc_rows(PRETRAIN) if r[0] not in excluded]
    missing = [f"| `{k}` | `{d}` | {h} |" for k, d, h in rows if f"| `{k}` | `{d}` | {h} |" not in doc]
    assert not missing, "config/README.md lacks these rows:\n" + "\n".join(missing)


def test_every_key_of_the_shipped_configs_is_declared():
    """The shipped configurations validate (a misspelt key would stop the workflow)."""
    import yaml

    from hico_bench.config import build_grid
    from hico_bench.settings import validate_config

    for name in ("config.yaml", "ci.yaml", "paper.yaml"):
        config = validate_config(yaml.safe_load((ROOT / "config" / name).read_text()))
        if config["synthetic"]["enabled"]:
            build_grid(config)
