"""The command line: help, one-line errors with exit code 2 for user mistakes, `models`, `data`, `stats`."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepconv_cli.__main__ import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "deepconv_cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300, check=False)


def here(capsys, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The command run in this process (no interpreter start-up, ~3 s less than `run`): its exit code and what it
    printed, as `run` returns them. `run` stays where a fresh process is the point: what is imported, and one case
    of each kind of error, as a user's shell sees it."""
    capsys.readouterr()
    code, err = 0, ""
    with contextlib.chdir(cwd) if cwd else contextlib.nullcontext():
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse and LightningCLI end with sys.exit
            code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
            err = f"{stop.code}\n" if isinstance(stop.code, str) else ""
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err + err)


def test_help_lists_every_subcommand_without_importing_lightning():
    out = run("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout
    probe = "import sys; from deepconv_cli.__main__ import main; main(['--help']); print('lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("False")


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def assert_one_line_error(out: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert out.returncode == code, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_train_missing_data_dir_is_one_line_exit_2(tmp_path):
    out = run("train", "--data.data_dir", str(tmp_path / "missing"), cwd=tmp_path)
    assert_one_line_error(out, 2, "data_dir not found")


def test_train_unknown_key_and_bad_value_are_one_line_exit_2(tmp_path, digits_dir, capsys):
    out = run("train", "--data.data_dir", str(digits_dir), "--model.depth", "3", cwd=tmp_path)  # a fresh process
    assert_one_line_error(out, 2, "model.depth")
    out = here(capsys, "train", "--data.data_dir", str(digits_dir), "--model.arch", "F", cwd=tmp_path)
    assert_one_line_error(out, 2, "arch")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  arch: A\n  widht: 0.5\n")
    out = here(capsys, "train", "-c", str(bad), cwd=tmp_path)
    assert_one_line_error(out, 2, "widht")
    out = here(capsys, "train", "-c", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert_one_line_error(out, 2, "nope.yaml")


def test_print_config_shows_the_papers_defaults(tmp_path, digits_dir, capsys):
    out = here(capsys, "train", "--data.data_dir", str(digits_dir), "--print_config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for line in ("momentum: 0.9", "weight_decay: 0.0005", "lr: 0.01", "batch_size: 256", "max_epochs: 74",
                 "max_lr_drops: 3", "pca_std: 0.1"):
        assert line in out.stdout, line


def test_models_json_lists_table2(capsys):
    out = here(capsys, "models", "--json")
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["D"]["parameters"] == 138_357_544 and rows["D"]["weight_layers"] == 16
    assert rows["C"]["parameters"] == 133_638_952 and rows["A-LRN"]["parameters"] == 132_863_336


def test_data_digits_writes_the_tree_once(tmp_path):
    assert main(["data", "digits", str(tmp_path / "d")]) == 0
    assert len(list((tmp_path / "d" / "train").rglob("*.png"))) == 1438
    assert len(list((tmp_path / "d" / "val").rglob("*.png"))) == 359
    assert sorted(p.name for p in (tmp_path / "d" / "train").iterdir()) == [str(i) for i in range(10)]
    assert main(["data", "digits", str(tmp_path / "d")]) == 2  # never overwrites
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no staging folder left behind


@pytest.mark.parametrize("args", [["stats", "/nonexistent/dir"], ["data", "mnist", "x"], ["models", "--width", "wide"],
                                  ["fine-tune", "--data.data_dir", "x"], ["fine-tune", "--init-from", "missing.ckpt"],
                                  ["recipe", "run", "missing.yaml"], ["recipe", "walk", "x.yaml"]])
def test_other_commands_report_bad_input_in_one_line(args, tmp_path):
    assert_one_line_error(run(*args, cwd=tmp_path), 2)


def test_zero_byte_checkpoint_and_unwritable_outputs_fail_in_one_line(tmp_path, trained_ckpt, digits_dir, capsys):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    assert_one_line_error(run("predict", "--ckpt", str(empty), str(digits_dir / "val" / "3"), cwd=tmp_path), 1,
                          "cannot read checkpoint", "EOFError")
    (tmp_path / "taken").mkdir()
    out = here(capsys, "export", "--ckpt", str(trained_ckpt), "--format", "safetensors", "--out",
               str(tmp_path / "taken"), cwd=tmp_path)
    assert_one_line_error(out, 1, "cannot write", "is a folder")


def test_resuming_a_run_dir_of_another_architecture_is_refused(tmp_path, digits_dir, capsys):
    common = ["-c", str(REPO / "recipes/quickstart/vgg_a.yaml"), f"--data.data_dir={digits_dir}",
              f"--trainer.default_root_dir={tmp_path / 'run'}", "--trainer.max_epochs=1", "--data.num_workers=0",
              "--trainer.enable_progress_bar=false", "--trainer.limit_train_batches=2"]
    assert main(["train", *common]) == 0
    assert main(["train", *common, "--model.arch=B"]) == 2
    assert "belongs to another run (arch differs: A there, B here)" in capsys.readouterr().err
