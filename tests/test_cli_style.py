"""One command style: every subcommand takes -c and --print_config, spells options with underscores (dashed
spellings hidden aliases), refuses abbreviations and unknown options in one line with a suggestion; --help and
mistyped paths answer before torch is imported; the version; CPU threads from the cores available."""

import json
import subprocess
import sys

import pytest

from deepconv_cli.__main__ import COMMANDS as ALL_COMMANDS
from deepconv_cli.__main__ import main
from deepconv_cli.cli.commands import HELP_ACTIONS
from deepconv_cli.cli.evaluate import Method, evaluate
from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import DeepconvError
from deepconv_cli.training.resources import intra_op_threads, workers_warning

# each subcommand with the arguments that make it reach option parsing
COMMANDS = {
    "evaluate": ["--ckpt", "x.ckpt", "--data", "val"],
    "export": ["--ckpt", "x.ckpt"],
    "predict": ["--ckpt", "x.ckpt", "img.png"],
    "import": ["w.pth", "--out", "x.ckpt"],
    "stats": ["data"],
    "data": ["digits", "out"],
    "models": [],
    "benchmark": ["startup"],
    "recipe": ["run", "chain.yaml"],
    "localise": ["evaluate", "--ckpt", "x.ckpt", "--data", "val"],
}
ACTION = {"benchmark": "startup", "recipe": "run", "data": "digits", "localise": "evaluate"}  # first word chooses


def probe(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_config_print_config_and_one_help_layout(command, capsys):
    argv = [command, *([ACTION[command]] if command in ACTION else []), "--help"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepconv {' '.join(argv[:-1])}")
    for section in ("options:", "-c CONFIG, --config CONFIG", "--print_config"):
        assert section in out


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_one_line_exit_2_with_the_nearest_option(command, capsys):
    assert main([command, *COMMANDS[command], "--bogus_option", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bogus_option" in err[0] and f"deepconv {command}" in err[0]


def test_dashed_spellings_flags_and_repeated_lists_are_hidden_aliases():
    argv = ["--ckpt", "a.ckpt", "--ckpt=b.ckpt", "--data", "val", "--batch-size", "8", "--no-flip",
            "--skip-bad-images", "--num-workers=0", "--method", "10-crop"]
    options = parse_options(evaluate, argv, "deepconv evaluate")
    assert options["ckpt"] == ["a.ckpt", "b.ckpt"]
    assert (options["batch_size"], options["flip"], options["skip_bad_images"], options["num_workers"]) == (
        8, False, True, 0
    )
    assert options["method"] == "10-crop"
    same = parse_options(evaluate, ["--ckpt=[a.ckpt,b.ckpt]", "--data=val", "--batch_size=8", "--flip=false",
                                    "--skip_bad_images", "true", "--num_workers", "0", "--method=10-crop"], "x")
    assert same == options


def test_abbreviations_are_refused_and_typos_get_a_suggestion():
    with pytest.raises(DeepconvError, match=r"did you mean --batch_size\?") as error:
        parse_options(evaluate, ["--ckpt", "a", "--data", "v", "--batch", "8"], "deepconv evaluate")
    assert error.value.code == 2
    with pytest.raises(DeepconvError, match=r"did you mean --skip_bad_images\?"):
        parse_options(evaluate, ["--ckpt", "a", "--data", "v", "--skip_bad_image"], "deepconv evaluate")


def test_config_file_gives_the_same_options(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("ckpt: [a.ckpt, b.ckpt]\ndata: val\nmethod: dense+multi-crop\nflip: false\n")
    options = parse_options(evaluate, ["-c", str(config), "--batch_size", "4"], "deepconv evaluate")
    assert (options["ckpt"], options["method"], options["flip"], options["batch_size"]) == (
        ["a.ckpt", "b.ckpt"], "dense+multi-crop", False, 4)


def test_models_takes_a_config_file(tmp_path, capsys):
    config = tmp_path / "m.yaml"
    config.write_text("json_output: true\nwidth: 0.5\n")
    assert main(["models", "-c", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"A", "D", "E"}


def test_evaluate_methods_are_the_evaluation_methods():
    from typing import get_args

    from deepconv_cli.evaluation.fusion import METHODS

    assert set(get_args(Method)) == set(METHODS)


def test_missing_paths_and_help_answer_without_importing_torch(tmp_path):
    checks = [
        (["evaluate", "--ckpt", "nope.ckpt", "--data", str(tmp_path)], 2),
        (["export", "--ckpt", "nope.ckpt"], 2),
        (["predict", "--ckpt", "nope.ckpt", str(tmp_path)], 2),
        (["import", "nope.pth", "--out", str(tmp_path / "x.ckpt")], 2),
        (["train", "-c", "nope.yaml"], 2),
        (["train", "--data.data_dir", "nope"], 2),
        (["fine-tune", "--init-from", "nope.ckpt"], 2),
        (["train", "--model.widht", "2"], 2),
        *[([*name.split(), "--help"], 0) for name in [*ALL_COMMANDS, *HELP_ACTIONS]],  # every help, without torch
    ]
    for argv, code in checks:
        out = probe("import sys\nfrom deepconv_cli.__main__ import main\ntry:\n"
                    f"    code = main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
                    "print(code, 'torch' in sys.modules, 'lightning' in sys.modules)")
        assert out.strip().splitlines()[-1] == f"{code} False False", argv


@pytest.mark.parametrize("command", ["train", "fine-tune", "localise fit"])
def test_training_help_is_deepconvs_and_leads_with_its_own_options(command, capsys):
    assert main([*command.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepconv {command}") and "Lightning Trainer command line tool" not in out
    own = {"train": "--model.arch", "fine-tune": "--init_from", "localise fit": "--model.regression"}[command]
    body = out.split("\n", 1)[1]  # after the usage line, which names a required option
    order = [body.index(k) for k in ("\nrun:", own, "--data.data_dir", f"deepconv {command} --help trainer")]
    assert order == sorted(order)
    assert "--trainer.default_root_dir" in out and "--resume BOOL" in out and len(out.splitlines()) < 130
    assert "--trainer.accelerator " not in out.replace("--trainer.accelerator, ...", "")  # behind --help trainer


def test_training_help_lists_exactly_the_options_lightningcli_parses(capsys):
    import inspect

    from deepconv_cli.cli import train_help
    from deepconv_cli.data.datamodule import ImageFolderData
    from deepconv_cli.localisation.data import LocaliseData
    from deepconv_cli.localisation.module import LocaliserModule
    from deepconv_cli.training.module import ClassifierModule
    from deepconv_cli.training.options import FINE_TUNE, LOCALISE_FIT, TRAIN

    for command, classes in ((TRAIN, (ClassifierModule, ImageFolderData)), (FINE_TUNE, (ClassifierModule,
                             ImageFolderData)), (LOCALISE_FIT, (LocaliserModule, LocaliseData))):
        for section, cls in zip(("model", "data"), classes):
            parsed = {f"--{section}.{p}" for p in inspect.signature(cls.__init__).parameters if p != "self"}
            parsed -= {f"--{k}" for k in command.linked()}
            assert {row[0] for row in train_help.class_options(command, section)} == parsed


def test_version_and_bare_command(capsys):
    from deepconv_cli import __version__

    for flag in ("-V", "--version"):
        assert main([flag]) == 0
        assert capsys.readouterr().out.strip() == f"deepconv {__version__}"
    assert main([]) == 0
    assert "commands:" in capsys.readouterr().out


def test_threads_leave_the_loader_workers_their_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert [intra_op_threads(w) for w in (0, 1, 2, 4, 8)] == [4, 3, 2, 1, 1]
    assert intra_op_threads(1, processes=2) == 1
    assert workers_warning(4) is None and "4 usable CPU cores" in workers_warning(5)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert intra_op_threads(2) == 3  # the user's own setting wins


def test_train_typo_is_answered_with_the_nearest_option(capsys):
    assert main(["train", "--model.widht", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean --model.width?" in err[0]
