"""deepconv prints commands only in their current spelling: no `--init-from`, `--skip-bad-images` or `--no-flip`
(hidden aliases kept for old scripts) in any command's help text or in the commands `recipe run` runs and prints."""

import re
from pathlib import Path

import pytest

from deepconv_cli.__main__ import main
from deepconv_cli.recipes.runner import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# an option word joined by a dash (`--init-from`, `--data.skip-bad-images`) or a `--no-` boolean
DEPRECATED = re.compile(r"(?<![\w-])--(?:no-[a-z]|[a-z][\w.]*[a-z0-9]-[a-z])[\w.-]*")
HELPS = [[], ["train"], ["fine-tune"], ["evaluate"], ["predict"], ["export"], ["import"], ["recipe", "run"],
         ["benchmark", "loader"], ["benchmark", "train"], ["benchmark", "evaluate"], ["benchmark", "startup"],
         ["benchmark", "prepare"], ["compare"], ["models"], ["stats"], ["features"], ["linear-svm"], ["similar"],
         ["localise"], ["localise", "fit"], ["localise", "evaluate"], ["localise", "predict"], ["data", "digits"],
         ["data", "digit-boxes"]]


def deprecated(text: str) -> list[str]:
    return sorted(set(DEPRECATED.findall(text)))


def test_the_pattern_finds_deprecated_spellings_and_passes_current_ones():
    assert deprecated("fine-tune (--init-from CKPT); --no-flip; --data.skip-bad-images") == [
        "--data.skip-bad-images", "--init-from", "--no-flip"]
    assert deprecated("--init_from X --method dense+multi-crop --protocol centre-gt --flip false --help trainer") == []


@pytest.mark.parametrize("argv", HELPS, ids=lambda a: " ".join(a) or "deepconv")
def test_no_help_text_shows_a_deprecated_spelling(argv, capsys):
    try:
        main([*argv, "--help"])
    except SystemExit as e:
        assert e.code in (0, None)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "deepconv" in text
    assert deprecated(text) == [], " ".join(argv)


def test_recipe_runner_commands_use_current_spellings(tmp_path):
    recipes = [p for p in RECIPES.rglob("*.yaml") if "stages:" in p.read_text()]
    assert len(recipes) >= 3
    commands = 0
    for path in recipes:
        recipe = load_recipe(path, run_root=str(tmp_path))
        for stage in recipe.stages:
            line = " ".join(["deepconv", *recipe.argv(stage)])
            assert deprecated(line) == [], line
            commands += 1
    assert commands >= 10
