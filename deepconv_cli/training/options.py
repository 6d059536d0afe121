"""The options of the training commands (train, fine-tune, localise fit), each declared once, importable without torch.

training/run.py's `DeepconvCLI` adds a command's `options` and `links` to its LightningCLI parser; cli/train.py's
fast pre-checks and cli/train_help.py's `--help` read the same records before torch and Lightning are imported.
The model's and the data's own options are declared by their classes' `__init__` signatures (`sources`: LightningCLI
reads them by introspection, the fast path reads the same source with `ast`); `checked` adds what a pre-check must
know about a few of them: a path that must exist, a hidden spelling, a one-line error when it is left out.
"""

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Option:
    """One option as typed after `--` (`resume`, `data.data_dir`) and what the command line may do with it."""

    name: str
    type: Any = str  # a type, or the name of one of jsonargparse.typing's (imported only where the parser is built)
    default: Any = None
    help: str = ""
    value: str = "VALUE"  # its value's name in --help
    path: Literal["", "config", "folder", "checkpoint"] = ""  # must exist (checked before torch is imported)
    aliases: tuple[str, ...] = ()  # hidden spellings, rewritten to `--name` before LightningCLI parses
    required: str = ""  # the one-line error when neither the command line nor a -c config gives it
    spelled: str = ""  # the one spelling --help shows, when it is not `--name` (the class option is then hidden)

    def shown(self) -> str:
        return f"{self.spelled or '--' + self.name} {self.value}"


@dataclass(frozen=True)
class TrainingCommand:
    """A training command's declaration: its own options, its classes, the model options that the data sets."""

    prog: str
    options: tuple[Option, ...]  # added to the LightningCLI parser (training/run.py)
    sources: dict[str, tuple[str, str]]  # "model"/"data" -> (module, class) whose __init__ declares the options
    links: tuple[tuple[str, str, str], ...]  # (source, target, apply_on) given to parser.link_arguments
    checked: tuple[Option, ...] = ()  # class options that a pre-check checks (a path, an alias, required)
    titles: dict[str, str] = field(default_factory=dict)  # "model"/"data" -> the heading of its options in --help

    def linked(self) -> set[str]:
        """Model options set from the data (or through an alias): not options a user types."""
        return {target for _, target, _ in self.links} | {o.name for o in self.checked if o.spelled}

    def all_checked(self) -> tuple[Option, ...]:
        return CONFIG, *self.options, *self.checked


CONFIG = Option("config", path="config", aliases=("-c",))  # LightningCLI's own -c/--config; only checked here
RESUME = Option("resume", bool, True, "continue from RUN_DIR/last.ckpt when it exists; false starts over", "BOOL")
LAST_EVERY = Option("last_every_n_steps", "NonNegativeInt", 0, "also write last.ckpt every N optimisation steps (0: "
                    "at epoch ends only); with packed data a run killed mid-epoch resumes at that step with the same "
                    "batches", "N")
CURVES = Option("curves_log_error", bool, False, "curves.png: error axis on a log scale", "BOOL")
INIT_FROM = Option("init_from", str | None, None, "the trained checkpoint the network is initialised from (a "
                   "shallower net for deepening, or the same architecture)", "CKPT", path="checkpoint",
                   aliases=("--init-from",),
                   required="fine-tune needs --init_from CKPT (a trained deepconv checkpoint)")
INIT_LAYERS = Option("init_layers", Literal["paper", "all"] | None, None, "paper: A's first four convs + three FCs "
                     "into the same positions (default when the architectures differ); all: every layer (default for "
                     "the same architecture)", "paper|all")
DATA_DIR = Option("data.data_dir", path="folder")
FREEZE = Option("model.freeze", aliases=("--freeze",))
LOCALISER_INIT = Option("model.init_from", help="the classification checkpoint the localiser starts from",
                        value="CKPT", path="checkpoint", aliases=("--init_from", "--init-from"), spelled="--init_from",
                        required="localise fit needs --init_from CKPT (the classification checkpoint, trained at the "
                        "same S)")

CLASSIFIER = {"model": ("deepconv_cli.training.module", "ClassifierModule"),
              "data": ("deepconv_cli.data.datamodule", "ImageFolderData")}
CLASSIFIER_LINKS = (("data.crop_size", "model.crop_size", "parse"),
                    ("data.num_classes", "model.num_classes", "instantiate"),
                    ("data.classes", "model.classes", "instantiate"))
CLASSIFIER_TITLES = {"model": "model (the network and its optimisation)",
                     "data": "data (an ImageFolder tree: DATA_DIR/train and DATA_DIR/val)"}

TRAIN = TrainingCommand("deepconv train", (RESUME, LAST_EVERY, CURVES), CLASSIFIER, CLASSIFIER_LINKS, (DATA_DIR,),
                        CLASSIFIER_TITLES)
FINE_TUNE = TrainingCommand("deepconv fine-tune", (INIT_FROM, INIT_LAYERS, *TRAIN.options), CLASSIFIER,
                            CLASSIFIER_LINKS, (DATA_DIR, FREEZE), CLASSIFIER_TITLES)
LOCALISE_FIT = TrainingCommand(
    "deepconv localise fit", (RESUME,),
    {"model": ("deepconv_cli.localisation.module", "LocaliserModule"),
     "data": ("deepconv_cli.localisation.data", "LocaliseData")},
    (("data.classes", "model.classes", "instantiate"),), (DATA_DIR, LOCALISER_INIT),
    {"model": "model (the box regressor and its optimisation)",
     "data": "data (an ImageFolder tree with boxes: DATA_DIR/train, DATA_DIR/val, DATA_DIR/boxes)"})
