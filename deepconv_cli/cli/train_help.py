"""`--help` of the training commands (train, fine-tune, localise fit) in about a second: deepconv's own options first.

A command's options are its declaration (training/options.py: the same records LightningCLI adds to its parser),
and the `__init__` parameters (and docstring `Args:`) of its LightningModule and LightningDataModule, read from the
source files with `ast` (this module is the only reader of that source), so the help cannot drift from what
LightningCLI parses, and neither torch nor Lightning is imported. `--help trainer` (or `--help full`) prints
LightningCLI's complete help, Lightning's Trainer options included.
"""

import ast
import importlib.util
import textwrap
from pathlib import Path

from deepconv_cli.training.options import Option, TrainingCommand

CONFIG_HELP = ("-c, --config FILE", ("a YAML recipe with any of the options below (recipes/quickstart/vgg_a.yaml trains"
                                     " on a CPU in about a minute; recipes/imagenet/*.yaml are the paper's)"))
LIGHTNING_OPTIONS = [  # LightningCLI's own options that a training run is steered by
    ("--print_config", "print the resolved configuration (every option and its value) and exit"),
    ("--trainer.default_root_dir DIR", ("the run directory: best.ckpt, last.ckpt, metrics.csv, config.yaml,"
                                       " curves.png (default: runs/default)")),
    ("--trainer.max_epochs N", ("epochs at most (default: 74, the paper's); training also stops at the plateau"
                               " after model.max_lr_drops drops")),
    ("--trainer.precision P", ("auto (default): bf16-mixed on a CUDA GPU with bf16, 32-true on the CPU; or any of"
                               " Lightning's (32-true, bf16-mixed, 16-mixed)")),
    ("--seed_everything N", "random seed (default: 0)"),
]


def _class_node(module: str, name: str) -> ast.ClassDef | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text())
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _docstring_args(doc: str) -> dict[str, str]:
    """name -> description from a Google-style `Args:` section."""
    args, current, inside = {}, None, False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Args:":
            inside = True
            continue
        if not inside:
            continue
        if stripped and not line.startswith(" " * 8) and ":" in stripped:
            current, _, text = stripped.partition(":")
            args[current] = text.strip()
        elif stripped and current:
            args[current] += " " + stripped
    return args


def class_options(command: TrainingCommand, section: str) -> list[tuple[str, str, str, str]]:
    """(option, type, default, help) of every __init__ parameter of a section's class, in declaration order."""
    node = _class_node(*command.sources[section])
    linked = command.linked()
    if node is None:
        return []
    init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    helps = _docstring_args(ast.get_docstring(node) or "")
    params = init.args.args[1:]
    defaults = [None] * (len(params) - len(init.args.defaults)) + list(init.args.defaults)
    rows = []
    for param, default in zip(params, defaults):
        option = f"{section}.{param.arg}"
        if option in linked:
            continue
        kind = ast.unparse(param.annotation) if param.annotation is not None else ""
        value = "required" if default is None else ast.unparse(default)
        rows.append((f"--{option}", kind, value, helps.get(param.arg, "")))
    return rows


def _format(rows: list[tuple[str, str]], width: int = 100) -> str:
    lines = []
    for name, text in rows:
        body = textwrap.wrap(text, width - 34) or [""]
        lines.append(f"  {name:<30}  {body[0]}" if len(name) <= 30 else f"  {name}\n  {'':<30}  {body[0]}")
        lines += [f"  {'':<30}  {more}" for more in body[1:]]
    return "\n".join(lines)


def _declared(option: Option) -> tuple[str, str]:
    if option.required:
        return option.shown(), f"{option.help}; required"
    default = str(option.default).lower() if isinstance(option.default, bool) else option.default  # as typed
    return option.shown(), option.help if default is None else f"{option.help} (default: {default})"


def train_help(command: TrainingCommand, summary: str = "", config_help: tuple[str, str] = CONFIG_HELP,
               lightning_options: list[tuple[str, str]] = LIGHTNING_OPTIONS) -> str:
    """The help text: run options, then model and data options, then where Lightning's Trainer options are."""
    required = [o for o in command.all_checked() if o.required]
    prog, usage_extra = command.prog, "".join(f" {o.shown()}" for o in required)
    run = [_declared(o) for o in dict.fromkeys((*required, *command.options))]  # a required option leads, once
    parts = [
        f"usage: {prog}{usage_extra} [-c FILE] [--model.KEY VALUE] [--data.KEY VALUE] [--trainer.KEY VALUE]"
        " [--resume BOOL]",
        "",
        summary or "Train a network of the registry (`deepconv models`: VGG A-E, AlexNet, ZFNet, LeNet-5, NiN, "
        "GoogLeNet) as in section 3.1 of the VGG paper (SGD with momentum, weight decay, plateau learning-rate "
        "drops, scale jitter, PCA colour shift) with Lightning's Trainer.",
        "",
        "run:",
        _format([*run, config_help, *lightning_options]),
    ]
    for section, title in command.titles.items():
        rows = class_options(command, section)
        shown = [(f"{o} {t.replace(' | None', '')}".strip(), f"{h} (default: {d})" if d != "required" else
                  f"{h} (required)") for o, t, d, h in rows]
        parts += ["", f"{title}:", _format(shown)]
    parts += [
        "",
        ("trainer (Lightning's Trainer: --trainer.devices, --trainer.strategy ddp, "
        "--trainer.accelerator, ...):"),
        f"  {prog} --help trainer      every option, Lightning's Trainer options included",
        "",
        "Options are spelled with underscores (--data.batch_size); YAML keys are the same names.",
    ]
    return "\n".join(parts)


def wants_help(argv: list[str]) -> str | None:
    """'short' for -h/--help, 'full' for `--help trainer`/`--help full`, None when no help is asked."""
    for i, arg in enumerate(argv):
        if arg in ("-h", "--help"):
            following = argv[i + 1] if i + 1 < len(argv) else ""
            return "full" if following in ("trainer", "full", "all") else "short"
    return None
