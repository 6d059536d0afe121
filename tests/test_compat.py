"""deepconv_cli/compat/: the library behaviour deepconv relies on without a public API still holds, and no module
outside compat/ reaches into a library's private names."""

import ast
import io
from pathlib import Path
from typing import get_args

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from rich.console import Console
from rich.table import Table

from deepconv_cli.compat.lightning import (
    PRECISION_INPUT,
    DescribedRichProgressBar,
    attached_trainer,
    should_update_logs,
)
from deepconv_cli.compat.rich import column_room

PACKAGE = Path(__file__).resolve().parents[1] / "deepconv_cli"
LIBRARIES = ("lightning", "torch", "torchvision", "litdata", "jsonargparse", "rich", "torchmetrics")
STDLIB_PRIVATE = {("os", "_exit")}


def defined_names(tree: ast.AST) -> set[str]:
    """The functions, classes, attributes and variables a module defines."""
    names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
              for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Attribute)}
    return names | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


OURS = {name for p in PACKAGE.rglob("*.py") for name in defined_names(ast.parse(p.read_text()))}


def private_accesses(path: Path) -> list[str]:
    """`lib._name` imports, `obj._name` reads of another object's private name, `super()._name` calls, and
    `self._name` reads of a name this package never defines (i.e. inherited from a library)."""
    tree = ast.parse(path.read_text())
    ours = OURS | defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") or "._" in f".{node.module}"]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and (owner.id, node.attr) in STDLIB_PRIVATE:
                continue
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls") and node.attr in ours:
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_private_library_access_outside_compat():
    found = {str(p.relative_to(PACKAGE)): hits for p in sorted(PACKAGE.rglob("*.py"))
             if "compat" not in p.parts and (hits := private_accesses(p))}
    assert found == {}


def test_the_check_sees_a_private_access(tmp_path):
    code = "from litdata.utilities.env import _DistributedEnv\nclass A(B):\n    def f(self):\n" \
           "        return self._trainer, trainer._logger_connector, super()._create_shuffler(1)\n"
    (tmp_path / "m.py").write_text(code)
    assert len(private_accesses(tmp_path / "m.py")) == 4


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.decisions: list[tuple[int, bool]] = []

    def training_step(self, batch, batch_idx):
        self.decisions.append((self.trainer.global_step, should_update_logs(self.trainer)))
        loss = self.layer(batch[0]).sum()
        self.log("loss", loss, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(7, 2)), batch_size=1)


class MemoryLogger(Logger):
    name, version = "memory", 0

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    def log_metrics(self, metrics, step=None) -> None:
        if "loss" in metrics:
            self.steps.append(step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


class CountingBar(DescribedRichProgressBar):
    described: list[int] = []

    def train_description(self, current_epoch: int) -> str:
        self.described.append(current_epoch)
        return f"Epoch {current_epoch + 1}"


def test_should_update_logs_is_true_on_exactly_the_steps_the_logger_writes(tmp_path):
    module, logger = Tiny(), MemoryLogger()
    trainer = L.Trainer(max_epochs=1, log_every_n_steps=3, logger=logger, default_root_dir=tmp_path,
                        enable_checkpointing=False, enable_model_summary=False, callbacks=[CountingBar()])
    assert attached_trainer(module) is None
    trainer.fit(module)
    assert attached_trainer(module) is trainer
    assert [step for step, logs in module.decisions if logs] == logger.steps == [2, 5]
    assert CountingBar.described  # Lightning still reads the training bar's description through our method


def test_precision_names_are_lightnings():
    names = {name for arg in get_args(PRECISION_INPUT) for name in (get_args(arg) or (arg,))}
    assert {"32-true", "bf16-mixed", "16-mixed"} <= names


def test_column_room_is_the_room_rich_gives_each_column():
    """A word fits its column's room exactly when rich prints it whole, on both sides of the limit."""
    verdicts = set()
    for length in range(4, 60, 3):
        console = Console(width=40, record=True, file=io.StringIO())
        table = Table("name", "value")
        table.add_row("a" * 12, "x" * length)
        fits = length <= column_room(console, table)[1]
        console.print(table)
        assert ("x" * length in console.export_text()) is fits
        verdicts.add(fits)
    assert verdicts == {True, False}
