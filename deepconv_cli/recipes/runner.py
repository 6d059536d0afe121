"""The stage graph of a recipe: checkpoint references, skip-finished / resume-interrupted, one subprocess per stage.

A recipe is YAML:

    run_root: runs/quickstart          # each stage gets run_root/<stage name>/
    stages:
      - name: vgg_a
        command: train                 # data | train | fine-tune | evaluate | export | predict
        config: quickstart/vgg_a.yaml  # optional -c file, relative to the recipe file
        args: ["--trainer.max_epochs=30"]
      - name: vgg_d
        command: fine-tune
        config: quickstart/vgg_d.yaml
        init_from: vgg_a               # a stage name -> its best.ckpt; "vgg_a:last" -> last.ckpt
      - name: eval_d
        command: evaluate
        ckpt: vgg_d                    # passed as --ckpt <resolved path>
        args: ["--data", "data/digits/val", "--json", "{run_dir}/results.json"]

Strings in `args` may use {run_dir} (this stage's folder), {run_root} and {<stage>} / {<stage>:last} for another
stage's checkpoint. A finished stage leaves a `.stage-done` marker in its folder (its command line and a
fingerprint of its config and input checkpoints) and is skipped next time; one whose recipe, arguments or inputs
changed since, or that reads a file written after it finished (the features a linear-svm stage scores, the results
a report stage collects), is run again (evaluate, export, data, predict) or, for training stages, kept and reported
with how to retrain it (`--rerun NAME`). train / fine-tune stages interrupted mid-way resume from their last.ckpt
because `train` does so by itself.

Each stage runs as a child process that dies with the runner (Linux parent-death signal), so a `kill -9` of the
runner never leaves a stage training on its own; SIGTERM, SIGUSR1, SIGHUP and Ctrl-C are passed on to the stage,
which saves its last.ckpt, and the runner waits for it and exits 143 (130 for Ctrl-C).
"""

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deepconv_cli.errors import DeepconvError, failure, usage
from deepconv_cli.files import reason, write_text_atomically
from deepconv_cli.recipes.checks import fingerprint

COMMANDS = ("data", "train", "fine-tune", "evaluate", "export", "predict", "compare", "localise fit",
            "localise evaluate", "localise predict", "features", "linear-svm", "report", "import")
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGINT)
PR_SET_PDEATHSIG = 1
TRAINING = ("train", "fine-tune", "localise fit")
DONE = ".stage-done"


@dataclass
class Stage:
    name: str
    command: str
    config: Path | None = None
    args: list[str] = field(default_factory=list)
    init_from: str | None = None
    ckpt: str | None = None


@dataclass
class Recipe:
    path: Path
    run_root: Path
    stages: list[Stage]
    data: str = "data"  # {data} in a stage's arguments: the recipe's `data:` or `recipe run --data DIR`

    def run_dir(self, stage: Stage) -> Path:
        return self.run_root / stage.name

    def checkpoint(self, reference: str) -> Path:
        """`stage` -> that stage's best.ckpt, `stage:last` -> its last.ckpt."""
        name, _, which = reference.partition(":")
        names = [s.name for s in self.stages]
        if name not in names:
            raise usage(f"{self.path}: unknown stage {name!r} referenced (stages: {', '.join(names)})")
        if which not in ("", "best", "last"):
            raise usage(f"{self.path}: checkpoint reference {reference!r} must be STAGE, STAGE:best or STAGE:last")
        return self.run_root / name / f"{which or 'best'}.ckpt"

    def status(self, stage: Stage) -> str:
        """done | changed (finished with other settings) | resume (interrupted training) | pending."""
        run_dir = self.run_dir(stage)
        marker = run_dir / DONE
        if marker.is_file():
            return "done" if self.finished_as_now(stage, marker) else "changed"
        if stage.command in TRAINING and (run_dir / "last.ckpt").is_file():
            return "resume"
        return "pending"

    def finished_as_now(self, stage: Stage, marker: Path) -> bool:
        """Whether the stage's marker records the command line and fingerprint it would run with now."""
        argv = self.argv(stage)
        try:
            text = marker.read_text()
        except OSError:
            return False
        try:
            record = json.loads(text)
        except ValueError:  # a 0.1.0 marker: the command line only
            return text.strip() == " ".join(["deepconv", *argv])
        same = isinstance(record, dict) and record.get("fingerprint") == fingerprint(self, stage, argv)
        return same and not self.inputs_newer_than(argv, marker)

    def inputs_newer_than(self, argv: list[str], marker: Path) -> bool:
        """Whether a file the stage reads was written after it finished (as make decides): a file named on its command
        line (features, labels, boxes, checkpoints), or a result JSON inside a folder of the run root it reads
        (`report RUN_ROOT`). Folders outside the run root (the data) are not walked."""
        try:
            done = marker.stat().st_mtime_ns
        except OSError:
            return True
        root = self.run_root.resolve()
        for before, arg in zip(["", *argv], argv):
            if arg.startswith("-") or "://" in arg or before in ("-c", "--config"):  # a config: by content, above
                continue
            path = Path(arg)
            try:
                if path.is_file():
                    if path.stat().st_mtime_ns > done:
                        return True
                elif path.is_dir() and path.resolve().is_relative_to(root):
                    if any(j.stat().st_mtime_ns > done for j in path.rglob("*.json")):
                        return True
            except OSError:
                continue
        return False

    def argv(self, stage: Stage) -> list[str]:
        """The deepconv command line of a stage, references resolved."""
        run_dir = self.run_dir(stage)
        argv = stage.command.split()  # "localise fit" is a command and its action
        if stage.config:
            argv += ["-c", str(stage.config)]
        if stage.command in TRAINING:
            argv.append(f"--trainer.default_root_dir={run_dir}")
        if stage.init_from:
            argv += ["--init_from", str(self.checkpoint(stage.init_from))]
        if stage.ckpt:
            argv += ["--ckpt", str(self.checkpoint(stage.ckpt))]
        return argv + [self._substitute(a, run_dir) for a in stage.args]

    def _substitute(self, arg: str, run_dir: Path) -> str:
        def resolve(match: re.Match) -> str:
            key = match.group(1)
            if key == "run_dir":
                return str(run_dir)
            if key == "run_root":
                return str(self.run_root)
            if key == "data":
                return self.data
            return str(self.checkpoint(key))

        return re.sub(r"\{([\w:.-]+)\}", resolve, arg)


def load_recipe(path: str | Path, run_root: str | None = None, data: str | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise usage(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise usage(f"{path} is not valid YAML: {reason(e)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise usage(f"{path}: a recipe needs a non-empty `stages:` list")
    unknown = set(raw) - {"run_root", "stages", "description", "data"}
    if unknown:
        allowed = "run_root, data, stages, description"
        raise usage(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {allowed})")
    stages, seen = [], set()
    for i, s in enumerate(raw["stages"]):
        if not isinstance(s, dict) or "name" not in s or "command" not in s:
            raise usage(f"{path}: stage {i + 1} needs `name` and `command`")
        extra = set(s) - {"name", "command", "config", "args", "init_from", "ckpt"}
        if extra:
            raise usage(f"{path}: stage {s['name']!r} has unknown key(s) {', '.join(sorted(extra))}")
        if s["command"] not in COMMANDS:
            raise usage(f"{path}: stage {s['name']!r}: command must be one of {', '.join(COMMANDS)}")
        if s["name"] in seen:
            raise usage(f"{path}: stage name {s['name']!r} is used twice")
        seen.add(s["name"])
        config = (path.parent / s["config"]) if s.get("config") else None
        if config and not config.is_file():
            raise usage(f"{path}: stage {s['name']!r}: config not found: {config}")
        for ref in filter(None, (s.get("init_from"), s.get("ckpt"))):
            if ref.partition(":")[0] not in seen - {s["name"]}:
                raise usage(f"{path}: stage {s['name']!r} refers to {ref!r}, which is not an earlier stage")
        stages.append(Stage(s["name"], s["command"], config, [str(a) for a in s.get("args") or []],
                            s.get("init_from"), s.get("ckpt")))
    root = Path(run_root or raw.get("run_root") or Path("runs") / path.stem)
    return Recipe(path, root, stages, str(data or raw.get("data") or "data"))


def _die_with_parent() -> None:
    """In the stage's process before it starts: its own process group (the runner forwards Ctrl-C once) and,
    on Linux, SIGKILL when the runner dies, whatever kills it."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        return
    if os.getppid() == 1:  # the runner died before prctl took effect
        os._exit(1)


def run_stage(recipe: Recipe, stage: Stage, extra: tuple[str, ...] = ()) -> None:
    """Run one stage as `python -m deepconv_cli ...`; mark it done on success, stop the chain on failure.

    Signals to the runner go to the stage, which saves and stops; the runner waits for it, then stops too."""
    run_dir = recipe.run_dir(stage)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = recipe.argv(stage)
    command = [sys.executable, "-m", "deepconv_cli", *argv, *extra]
    # preexec_fn (PLW1509): the runner starts no threads of its own (torch, imported to check training stages, leaves
    # one idle helper thread); the function only calls setpgid and prctl before exec
    proc = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: PLW1509
    received: list[int] = []

    def forward(signum: int, frame) -> None:
        received.append(signum)
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        name = signal.Signals(received[0]).name
        raise DeepconvError(
            f"stopped by {name} during stage {stage.name!r} (it exited with {code}); run the same command again to"
            " resume", 130 if received[0] == signal.SIGINT else 143)
    if code != 0:
        raise failure(f"stage {stage.name!r} ({stage.command}) failed with exit code {code}; re-run to resume")
    record = {"command": " ".join(["deepconv", *argv]), "fingerprint": fingerprint(recipe, stage, argv)}
    write_text_atomically(run_dir / DONE, json.dumps(record, indent=1) + "\n")
