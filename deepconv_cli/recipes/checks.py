"""What a recipe needs before it starts, and what a finished stage was run with.

`problems` lists every data folder and checkpoint a recipe's pending stages need that neither exists nor is
written by an earlier stage, so `recipe run` (and `--dry-run`) can refuse before anything starts. `fingerprint`
digests a stage's command line, its config file's content and the checkpoints it reads, so a finished stage
whose recipe, arguments or inputs changed is not mistaken for done.
"""

import hashlib
import json
import os
from pathlib import Path

import yaml

from deepconv_cli.files import is_url

CHECKPOINT_OPTIONS = ("--init-from", "--init_from", "--ckpt")


def option_value(argv: list[str], name: str) -> str | None:
    """The last value given to option `name` in `argv` (`--name=X` or `--name X`), or None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg[len(name) + 1:]
    return value


def config_value(config: Path | None, dotted: str) -> str | None:
    """A value of a YAML config file by its dotted key (`data.data_dir`), or None when absent or unreadable."""
    if config is None:
        return None
    try:
        node = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError):
        return None
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return None if node is None else str(node)


def positionals(args: list[str]) -> list[str]:
    """The arguments that are not options (`deepconv data digits OUT` -> [digits, OUT])."""
    return [a for a in args if not a.startswith("-")]


def _within(path: Path, folders: list[Path]) -> bool:
    real = Path(os.path.abspath(path))
    return any(real == f or f in real.parents for f in folders)


def stage_outputs(recipe, stage) -> list[Path]:
    """Folders a stage writes: its run directory, and the dataset folder of a `data` stage."""
    outputs = [Path(os.path.abspath(recipe.run_dir(stage)))]
    words = positionals(recipe.argv(stage)[1:])  # {data}, {run_root} resolved
    out_at = 1 if words[:1] in (["digits"], ["digit-boxes"]) else 2  # data digits OUT / data voc|caltech|pack SRC OUT
    if stage.command == "data" and len(words) > out_at:
        outputs.append(Path(os.path.abspath(words[out_at])))
    return outputs


def _check_data(name: str, folder: str | None, needs_splits: bool, produced: list[Path]) -> list[str]:
    if folder is None:
        return [f"stage {name}: no data folder given (set data.data_dir in its config or args)"]
    path = Path(folder)
    if is_url(folder) or _within(path, produced):  # s3:// or gs:// packs are read by litdata, not checked here
        return []
    if not path.is_dir():
        what = f"{path}/train and {path}/val" if needs_splits else "a folder of class folders"
        return [f"stage {name}: data folder {path} not found (it should hold {what})"]
    missing = [s for s in ("train", "val") if needs_splits and not (path / s).is_dir()]
    return [f"stage {name}: data folder {path} has no {' or '.join(s + '/' for s in missing)}"] if missing else []


# the files and folders other stages read: (command, option or positional index after the command, what it is)
INPUTS = [
    ("linear-svm", "--features", "descriptor file"), ("linear-svm", "--train", "descriptor file"),
    ("linear-svm", "--test", "descriptor file"), ("linear-svm", "--labels", "labels file"),
    ("import", 0, "weights file"), ("import", "--classes", "class-name file"),
    ("data", 1, "source folder"),  # data voc|caltech|pack SRC OUT (digits/digit-boxes have no source)
    ("features", "--boxes", "boxes file"),
]


def _check_inputs(stage, argv: list[str], produced: list[Path]) -> list[str]:
    """The input files of linear-svm, import, features --boxes and data voc|caltech|pack stages that neither exist
    nor are made by an earlier stage."""
    found = []
    words = positionals(argv[1:])
    for command, where, what in INPUTS:
        if command != stage.command:
            continue
        if command == "data" and (not words or words[0] in ("digits", "digit-boxes")):
            continue
        value = option_value(argv, where) if isinstance(where, str) else (words[where] if len(words) > where else None)
        if value and not is_url(value) and not _within(Path(value), produced) and not Path(value).exists():
            found.append(f"stage {stage.name}: {what} {value} not found")
    return found


def problems(recipe, statuses: dict[str, str]) -> list[str]:
    """Every missing input of the stages that would run (statuses: stage name -> status), one line each."""
    found: list[str] = []
    produced: list[Path] = []
    for stage in recipe.stages:
        if statuses[stage.name] in ("done", "changed-kept"):
            continue
        argv = recipe.argv(stage)
        if stage.command in ("train", "fine-tune"):
            folder = option_value(argv, "--data.data_dir") or config_value(stage.config, "data.data_dir")
            found += _check_data(stage.name, folder, True, produced)
        elif stage.command == "localise fit":
            folder = option_value(argv, "--data.data_dir") or config_value(stage.config, "data.data_dir")
            found += _check_data(stage.name, folder, False, produced)
        elif stage.command in ("evaluate", "features", "localise evaluate"):
            found += _check_data(stage.name, option_value(argv, "--data"), False, produced)
        found += _check_inputs(stage, argv, produced)
        for option in CHECKPOINT_OPTIONS:
            ckpt = option_value(argv, option)
            if ckpt and not _within(Path(ckpt), produced) and not Path(ckpt).is_file():
                found.append(f"stage {stage.name}: checkpoint {ckpt} not found ({option})")
        produced += stage_outputs(recipe, stage)
    return _merge(found)


def _merge(lines: list[str]) -> list[str]:
    """"stage a: X", "stage b: X" -> "stages a, b: X" (the same missing folder is named once)."""
    by_text: dict[str, list[str]] = {}
    for line in lines:
        name, _, text = line.removeprefix("stage ").partition(": ")
        by_text.setdefault(text, []).append(name)
    return [f"stage{'s' if len(names) > 1 else ''} {', '.join(names)}: {text}" for text, names in by_text.items()]


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None


def fingerprint(recipe, stage, argv: list[str]) -> str:
    """A digest of what a stage runs with: its command line, its config's content, the checkpoints it reads."""
    inputs = {}
    for option in CHECKPOINT_OPTIONS:
        ckpt = option_value(argv, option)
        if ckpt:
            try:
                st = os.stat(ckpt)
                inputs[ckpt] = [st.st_size, st.st_mtime_ns]
            except OSError:
                inputs[ckpt] = None
    record = {"argv": argv, "config": _file_digest(stage.config), "inputs": inputs}
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()
