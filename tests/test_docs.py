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


def test_every_config_key_is_documented():
    import yaml

    doc = (ROOT / "config" / "README.md").read_text()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for section, value in config.items():
        assert f"`{section}" in doc, section
        if isinstance(value, dict) and section not in ("variants", "datasets"):
            for key in value:
                assert f"`{key}`" in doc or f"`{section}.{key}`" in doc or f"{key}." in doc, f"{section}.{key}"
