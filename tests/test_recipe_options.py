"""`deepconv recipe` on the one option parser: -c, --print_config, dashed aliases, and every pending stage's
arguments parsed by its own command's parser before anything starts (a typo in the last stage stops the recipe
at once, named with its stage and the nearest option, nothing written)."""

import json
from pathlib import Path

import pytest
import yaml
from helpers import QUICKSTART_A

from deepconv_cli.__main__ import main as deepconv


def write_recipe(tmp_path: Path, train_args: list[str], eval_args: list[str]) -> Path:
    recipe = tmp_path / "chain.yaml"
    stages = [
        {"name": "digits", "command": "data", "args": ["digits", str(tmp_path / "data")]},
        {"name": "a", "command": "train", "config": str(QUICKSTART_A),
         "args": [f"--data.data_dir={tmp_path / 'data'}", *train_args]},
        {"name": "ev", "command": "evaluate", "ckpt": "a", "args": ["--data", str(tmp_path / "data" / "val"),
                                                                    *eval_args]},
    ]
    recipe.write_text(yaml.safe_dump({"run_root": str(tmp_path / "runs"), "stages": stages}))
    return recipe


@pytest.mark.parametrize(("train_args", "eval_args", "expected"), [
    ([], ["--methd", "dense"], ["stage ev (evaluate)", "--methd", "did you mean --method?"]),
    ([], ["--batch_size", "many"], ["stage ev (evaluate)", "batch_size", "many"]),
    (["--trainer.max_epoch=3"], [], ["stage a (train)", "did you mean --trainer.max_epochs?"]),
    (["--model.width=wide"], [], ["stage a (train)", "model.width", "wide"]),
    ([], ["--help"], ["stage ev (evaluate)", "--help", "no place in a recipe stage"]),
])
@pytest.mark.parametrize("dry", [[], ["--dry-run"]])
def test_a_bad_option_in_a_later_stage_stops_the_recipe_before_anything_starts(
        tmp_path, capsys, train_args, eval_args, expected, dry):
    recipe = write_recipe(tmp_path, train_args, eval_args)
    assert deepconv(["recipe", "run", str(recipe), *dry]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, captured.err
    for text in expected:
        assert text in err[0], err[0]
    assert "Traceback" not in captured.err and "deepconv data" not in captured.out  # refused before the plan
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.yaml"]  # no data, no run folder


def test_a_correct_recipe_passes_the_stage_checks(tmp_path, capsys):
    recipe = write_recipe(tmp_path, ["--trainer.max_epochs=2", "--model.width=0.25"], ["--method", "10-crop"])
    assert deepconv(["recipe", "run", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--method 10-crop" in out and "--trainer.max_epochs=2" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.yaml"]


def test_only_stages_that_would_run_are_checked(tmp_path, capsys):
    recipe = write_recipe(tmp_path, [], ["--methd", "dense"])
    done = tmp_path / "runs" / "ev"
    done.mkdir(parents=True)
    from deepconv_cli.recipes.checks import fingerprint
    from deepconv_cli.recipes.runner import load_recipe

    loaded = load_recipe(recipe)
    stage = loaded.stages[2]
    record = {"command": "deepconv evaluate", "fingerprint": fingerprint(loaded, stage, loaded.argv(stage))}
    (done / ".stage-done").write_text(json.dumps(record))
    assert deepconv(["recipe", "run", str(recipe), "--dry-run"]) == 0  # the finished stage is not parsed again
    assert "done" in capsys.readouterr().out


def test_recipe_takes_a_config_file_print_config_and_dashed_aliases(tmp_path, capsys):
    recipe = write_recipe(tmp_path, [], [])
    options = tmp_path / "options.yaml"
    options.write_text(f"recipe: {recipe}\ndry_run: true\nrun_root: {tmp_path / 'elsewhere'}\n")
    assert deepconv(["recipe", "run", "-c", str(options)]) == 0
    out = capsys.readouterr().out
    assert f"--trainer.default_root_dir={tmp_path / 'elsewhere' / 'a'}" in out  # the dry run's commands
    with pytest.raises(SystemExit) as exit_:
        deepconv(["recipe", "run", str(recipe), "--dry-run", "--run-root", "r", "--rerun", "a", "--rerun", "ev",
                  "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == {"recipe": str(recipe), "dry_run": True, "run_root": "r", "rerun": ["a", "ev"], "data": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.yaml", "options.yaml"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "x.yaml", "--dry-ru"], "did you mean --dry_run?"),
    (["walk", "x.yaml"], "choose one of run"),
    (["run", "missing.yaml"], "recipe not found: missing.yaml"),
])
def test_bad_recipe_command_lines_are_one_line_exit_2(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert deepconv(["recipe", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_a_misspelt_key_in_a_stages_config_file_is_named_with_the_nearest_option(tmp_path, capsys):
    config = tmp_path / "vgg_a.yaml"
    config.write_text(QUICKSTART_A.read_text().replace("  width: 0.125", "  widht: 0.125"))
    assert "widht" in config.read_text()
    recipe = tmp_path / "chain.yaml"
    recipe.write_text(f"run_root: {tmp_path / 'runs'}\nstages:\n  - {{name: a, command: train, config: {config}}}\n")
    assert deepconv(["recipe", "run", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stage a (train)" in err[0] and "did you mean --model.width?" in err[0], err
    assert not (tmp_path / "runs").exists()
