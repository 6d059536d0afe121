"""`deepconv` dispatcher: reads only the subcommand name, imports that subcommand lazily, prints errors as one line."""

import argparse
import importlib
import os
import sys

from deepconv_cli import __version__
from deepconv_cli.errors import USAGE, DeepconvError

# name -> (module with `main(argv) -> int | None`, one-line summary). Lightning is imported only by the
# subcommands that need it, so `deepconv --help` and `deepconv models` start in well under a second.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("deepconv_cli.cli.train", "train a network from random init (LightningCLI fit: -c recipe.yaml)"),
    "fine-tune": ("deepconv_cli.cli.fine_tune", "train a network initialised from a checkpoint (--init-from CKPT)"),
    "evaluate": ("deepconv_cli.cli.evaluate", "top-1/top-5 error: dense, multi-crop, multi-scale, fused, ensembles"),
    "predict": ("deepconv_cli.cli.predict", "top-k classes of image files or folders"),
    "export": ("deepconv_cli.cli.export", "write TorchScript, ONNX or safetensors, verified against PyTorch"),
    "import": ("deepconv_cli.cli.import_", "turn torchvision/timm VGG weights into a deepconv checkpoint"),
    "recipe": ("deepconv_cli.cli.recipe", "run a chain of stages (train, fine-tune, evaluate, export) resumably"),
    "benchmark": ("deepconv_cli.cli.benchmark", "measure loader, training step and evaluation speed"),
    "compare": ("deepconv_cli.cli.compare", "one table of finished runs: parameters, val error, training time"),
    "report": ("deepconv_cli.cli.report", "the papers' tables: published numbers against the runs under RUN_ROOT"),
    "models": (
        "deepconv_cli.cli.models", "list the architectures (or one network's layers): weight layers, parameters, FLOPs"
    ),
    "stats": ("deepconv_cli.cli.stats", "compute and cache mean RGB and PCA colour statistics of a train/ folder"),
    "features": (
        "deepconv_cli.cli.features", "Appendix B image descriptors of a folder, for linear SVMs and retrieval"
    ),
    "linear-svm": ("deepconv_cli.cli.linear_svm", "linear SVMs on descriptors: mean class recall or mean AP"),
    "similar": ("deepconv_cli.cli.similar", "the images nearest to a query image by descriptor"),
    "localise": ("deepconv_cli.cli.localise", "object localisation (Appendix A): fit, evaluate, predict SCR/PCR boxes"),
    "data": ("deepconv_cli.cli.data", "write a built-in dataset as an ImageFolder tree (`deepconv data digits OUT`)"),
}


def usage_text() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return (
        "usage: deepconv <command> [options]   (deepconv <command> --help for a command's options;"
        " deepconv -V: the version)\n\n"
        "Train, deepen, evaluate and export the very deep ConvNets of Simonyan & Zisserman (VGG A-E), and AlexNet,\n"
        "ZFNet, LeNet-5, NiN and GoogLeNet through the same commands.\n\n"
        "commands:\n" + "\n".join(lines)
    )


def one_line(message: str, limit: int = 600) -> str:
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # `deepconv train --help | head`: the reader has gone; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage_text())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"deepconv {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"deepconv: error: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return USAGE
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return module.main(argv[1:]) or 0
    except DeepconvError as e:
        print(f"deepconv {name}: error: {one_line(e)}", file=sys.stderr)
        return e.code
    except argparse.ArgumentError as e:
        print(f"deepconv {name}: error: {one_line(e)} (see `deepconv {name} --help`)", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"deepconv {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
