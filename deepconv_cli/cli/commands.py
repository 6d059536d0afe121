"""The table of `deepconv` subcommands: name -> (the cli module with `main(argv)`, and `parse(argv)` where it can be
a recipe stage; summary).

The dispatcher (`__main__`), `recipe run` (each stage checked by its command's parser) and the start-up benchmark
(every command's `--help`) read it; `HELP_ACTIONS` are the sub-actions whose `--help` is a page of its own.
"""

# name -> (module with `main(argv) -> int | None`, one-line summary). Lightning is imported only by the
# subcommands that need it, so `deepconv --help` and `deepconv models` start in well under a second.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("deepconv_cli.cli.train", "train a network from random init (LightningCLI fit: -c recipe.yaml)"),
    "fine-tune": ("deepconv_cli.cli.fine_tune", "train a network initialised from a checkpoint (--init_from CKPT)"),
    "evaluate": ("deepconv_cli.cli.evaluate", "top-1/top-5 error: dense, multi-crop, multi-scale, fused, ensembles"),
    "predict": ("deepconv_cli.cli.predict", "top-k classes of image files or folders"),
    "export": ("deepconv_cli.cli.export", "write TorchScript, ONNX or safetensors, verified against PyTorch"),
    "import": ("deepconv_cli.cli.import_", "turn torchvision/timm VGG weights into a deepconv checkpoint"),
    "recipe": ("deepconv_cli.cli.recipe", "run a chain of stages (data, train, evaluate, export, ...) resumably"),
    "benchmark": (
        "deepconv_cli.cli.benchmark", "speed of the loader, training, evaluation, start-up; gpu: every GPU figure"
    ),
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
    "data": (
        "deepconv_cli.cli.data", "the built-in digits (and digit-boxes) as folders; VOC/Caltech splits; litdata packs"
    ),
}

HELP_ACTIONS = ["localise fit", "localise evaluate", "localise predict", "data digit-boxes", "recipe run",
                "benchmark startup"]
