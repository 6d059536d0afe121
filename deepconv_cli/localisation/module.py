"""LocaliserModule: a trained classifier turned box regressor (VGG paper Appendix A.1), trained with Euclidean loss.

The network, its input normalisation and its class list come from the classification checkpoint (`init_from`,
trained at the same scale S); every layer is copied and the last one is replaced by a random SCR (4 outputs) or
PCR (4 x classes) layer. `train_layers: fc` fine-tunes only the two weight layers before it (VGG: FC1 and FC2,
as OverFeat did) and the new layer; `all` fine-tunes everything (better in the paper's Table 8).
"""

from typing import Literal

import lightning as L
import torch
from torch import nn

from deepconv_cli.compat.lightning import attached_trainer
from deepconv_cli.data.transforms import pca_color_shift
from deepconv_cli.errors import usage
from deepconv_cli.localisation.boxes import decode, iou
from deepconv_cli.localisation.network import (
    LOCALISER_KEY,
    Regression,
    regression_outputs,
    replace_last_layer,
    select_boxes,
)
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.training.module import WeightedMean
from deepconv_cli.training.stops import logging_step


def box_iou_pairs(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each encoded predicted box with its encoded target (both relative to the same crop)."""
    a, b = decode(pred, 0.0, 0.0, 1.0), decode(target, 0.0, 0.0, 1.0)
    return torch.stack([iou(x, y)[0, 0] for x, y in zip(a, b)]) if len(a) else a.new_zeros(0)


class LocaliserModule(L.LightningModule):
    """Box regression fine-tuned from a classification checkpoint.

    Args:
        init_from: the classification checkpoint (set by `deepconv localise fit --init_from CKPT`).
        regression: "pcr" (per-class, 4 x classes outputs) or "scr" (single-class, 4 outputs).
        train_layers: "all" (every layer) or "fc" (only the two layers before the last, VGG's FC1-FC2).
        classes: class names of the data (linked), checked against the classifier's.
        lr: initial learning rate (1e-3 in the paper).
        momentum: SGD momentum.
        weight_decay: L2 penalty multiplier.
        lr_drop_factor: learning-rate multiplier when the validation localisation error stops improving.
        lr_patience: epochs without improvement before a drop.
        max_lr_drops: stop at the plateau after this many drops.
        iou_threshold: a box is correct when its IoU with the ground truth exceeds this (ILSVRC: 0.5).
        dropout: the dropout ratio of the network's dropout layers while fine-tuning (default: the classifier's).
    """

    def __init__(self, init_from: str | None = None, regression: Regression = "pcr",
                 train_layers: Literal["all", "fc"] = "all", classes: list[str] | None = None, lr: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 5e-4, lr_drop_factor: float = 0.1, lr_patience: int = 2,
                 max_lr_drops: int = 3, iou_threshold: float = 0.5, dropout: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not init_from:
            raise usage("a localiser starts from a classification checkpoint: pass --init_from CKPT")
        self.model, self.meta = load_model(init_from)
        if classes is not None and list(classes) != self.meta.classes:
            raise usage(f"the data's classes differ from those of {init_from} ({len(classes)} vs "
                        f"{len(self.meta.classes)}); the localiser must be trained on the classifier's classes")
        self.regression = regression
        replace_last_layer(self.model, regression_outputs(regression, self.meta.num_classes))
        self.model.train()
        if dropout is not None:
            for layer in self.model.modules():
                if isinstance(layer, nn.Dropout):
                    layer.p = dropout
        if train_layers == "fc":
            tuned = {id(p) for _, layer in self.model.weight_layers()[-3:] for p in layer.parameters()}
            for p in self.model.parameters():
                p.requires_grad_(id(p) in tuned)
        self.register_buffer("pca_eigval", torch.zeros(0), persistent=False)
        self.register_buffer("pca_eigvec", torch.zeros(0), persistent=False)
        self.pca_std = 0.0
        # WeightedMean: no per-step NaN check (a host wait each step; NonFiniteGuard reports NaNs)
        self.train_loss, self.val_loss, self.val_error = WeightedMean(), WeightedMean(), WeightedMean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def setup(self, stage: str) -> None:
        trainer = attached_trainer(self)
        data = trainer.datamodule if trainer is not None else None
        if data is None:
            return
        if data.crop_size != self.meta.crop_size:
            raise usage(f"data.crop_size {data.crop_size} differs from the classifier's crop {self.meta.crop_size}")
        if data.stats:
            self.meta.s_min, self.meta.s_max = data.s_min, data.s_max
            self.meta.pca_eigval = list(data.stats["pca_eigval"])
            self.meta.pca_eigvec = [list(r) for r in data.stats["pca_eigvec"]]
            self.pca_eigval = torch.tensor(self.meta.pca_eigval, device=self.device)
            self.pca_eigvec = torch.tensor(self.meta.pca_eigvec, device=self.device)
            self.pca_std = data.pca_std

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, target, y = batch
        x = x.float()
        if self.training:
            x = pca_color_shift(x, self.pca_eigval, self.pca_eigvec, self.pca_std)
        return x, target.float(), y

    def loss(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Euclidean loss: the squared distance between predicted and true (cx, cy, w, h), averaged over images."""
        x, target, y = batch
        pred = select_boxes(self(x), self.regression, y)
        return ((pred - target) ** 2).sum(dim=1).mean(), pred, target

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, _, target = self.loss(batch)
        self.train_loss.update(loss.detach(), weight=len(target))
        trainer = attached_trainer(self)
        if trainer is None or logging_step(trainer):  # no per-step device read (training/stops.py)
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train/loss_epoch", self.train_loss.compute())
        self.train_loss.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, pred, target = self.loss(batch)
        self.val_loss.update(loss, weight=len(target))
        wrong = (box_iou_pairs(pred, target) <= self.hparams.iou_threshold).float()
        self.val_error.update(wrong.mean(), weight=len(target))

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss.compute())
        self.log("val/loc_error", 100.0 * self.val_error.compute(), prog_bar=True)
        for metric in (self.val_loss, self.val_error):
            metric.reset()

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=hp.lr_drop_factor,
                                                             patience=hp.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val/loc_error"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["deepconv"] = self.meta.to_dict()
        checkpoint[LOCALISER_KEY] = {
            "regression": self.regression,
            "outputs": regression_outputs(self.regression, self.meta.num_classes),
            "train_layers": self.hparams.train_layers,
            "init_from": str(self.hparams.init_from),
        }
