"""ClassifierModule: any registered network trained as in section 3.1 of the VGG paper (SGD, momentum, plateau
lr drops); the network comes from the registry by name, so this module knows no architecture."""

import re
import time
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, OpenUnitInterval, PositiveFloat
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from deepconv_cli.compat.lightning import attached_trainer
from deepconv_cli.data.device_decode import DeferredBatch
from deepconv_cli.data.transforms import pca_color_shift
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.registry import accepted_names, build, resolve_arch
from deepconv_cli.training.stops import logging_step

# the registry's names and aliases, so `--model.arch vgg16` works and a typo is a one-line usage error
ArchName = Literal[accepted_names()]


def freeze_parameters(model: torch.nn.Module, pattern: str) -> list[str]:
    """Stop training the parameters whose name matches the regular expression `pattern` (re.search), e.g.
    `features` = every conv layer: only the FC layers train (the VGG paper's ILSVRC-submission D, Table 6)."""
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"model.freeze {pattern!r} is not a regular expression: {e}") from None
    names = [n for n, _ in model.named_parameters()]
    frozen = [n for n in names if regex.search(n)]
    if not frozen or len(frozen) == len(names):
        raise ValueError(f"model.freeze {pattern!r} matches {'no' if not frozen else 'every'} parameter; names look "
                         f"like {names[0]} ... {names[-1]}")
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    return frozen


class WeightedMean(MeanMetric):
    """MeanMetric without its per-update NaN check (`isnan(x).any()`: the host waits for the device every step;
    NonFiniteGuard reports NaNs). torchmetrics' own nan_strategy="disable" also drops the weights."""

    def _cast_and_nan_check_input(self, x, weight=None):
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        weight = torch.ones_like(x) if weight is None else torch.as_tensor(weight, dtype=self.dtype, device=self.device)
        return x, weight


def sgd_implementation(impl: str, device_type: str) -> dict:
    """torch.optim.SGD's `fused`/`foreach` arguments for `--model.sgd_impl` (auto: fused on CUDA, foreach else)."""
    if impl == "auto":
        impl = "fused" if device_type == "cuda" else "foreach"
    return {"fused": impl == "fused", "foreach": impl == "foreach"}


class ClassifierModule(L.LightningModule):
    """A network of the registry and its optimisation.

    Args:
        arch: architecture name or alias (`deepconv models` lists them): VGG A, A-LRN, B, B-shallow, C, D, E
            (vgg11/13/16/19), and the other networks of the source papers.
        num_classes: number of classes (linked from the data: the number of class folders).
        classes: class names (linked from the data), saved in every checkpoint.
        width: multiplier on every layer's width (1.0 = the paper; 0.125 trains on a CPU).
        crop_size: training crop side (linked from the data); VGG's FC1 is a (crop_size/32)^2 window.
        dropout: dropout ratio of the FC layers (VGG, AlexNet: 0.5 after FC1 and FC2); null = the paper's.
        init: random initialisation: "normal" (zero mean, std init_std, zero biases), "glorot", "kaiming", or
            "paper" (the network's own paper: e.g. AlexNet's N(0, 0.01) with biases 1 in conv2/4/5 and the FCs).
        init_std: std of the "normal" init. The VGG paper's text says variance 1e-2 (std 0.1); AlexNet uses 0.01.
        arch_options: architecture-specific options (e.g. LeNet-5's {"activation": "relu"}).
        lr: initial learning rate (1e-2; 1e-3 for S=384 nets initialised from S=256).
        momentum: SGD momentum.
        weight_decay: L2 penalty multiplier.
        lr_drop_factor: learning rate multiplier when validation error stops improving.
        lr_patience: epochs without improvement of validation top-1 error before a drop.
        max_lr_drops: training stops at the plateau after this many drops (3 in the paper).
        channels_last: keep weights and batches in NHWC memory order (faster convolutions on tensor-core GPUs);
            default: on when CUDA is available. The arithmetic is the Trainer's `--trainer.precision` (default
            auto: bf16-mixed on a CUDA GPU with bf16, 32-true on the CPU).
        compile: compile the network with torch.compile (a one-off pause in the first training step, reported
            in one line; checkpoints unchanged and loadable without compile); default: on when training on CUDA,
            off on CPU.
        freeze: regex of parameter names left untrained (`features`: only the FC layers train).
        sgd_impl: SGD kernels (same update): auto = fused on CUDA, foreach elsewhere.
    """

    def __init__(
        self,
        arch: ArchName = "A",
        num_classes: int = 1000,
        classes: list[str] | None = None,
        width: PositiveFloat = 1.0,
        crop_size: int = 224,
        dropout: ClosedUnitInterval | None = None,
        init: Literal["normal", "glorot", "kaiming", "paper"] = "normal",
        init_std: PositiveFloat = 0.01,
        arch_options: dict | None = None,
        lr: PositiveFloat = 0.01,
        momentum: NonNegativeFloat = 0.9,
        weight_decay: NonNegativeFloat = 5e-4,
        lr_drop_factor: OpenUnitInterval = 0.1,
        lr_patience: NonNegativeInt = 2,
        max_lr_drops: NonNegativeInt = 3,
        channels_last: bool | None = None,
        compile: bool | None = None,
        freeze: str | None = None,
        sgd_impl: Literal["auto", "fused", "foreach", "for-loop"] = "auto",
    ) -> None:
        super().__init__()
        # jsonargparse's constrained types (PositiveFloat, ...) are float/int subclasses that torch.load(weights_only)
        # refuses: the checkpoint's hyperparameters and metadata must hold plain numbers
        width, init_std, lr, momentum, weight_decay, lr_drop_factor = (
            float(v) for v in (width, init_std, lr, momentum, weight_decay, lr_drop_factor))
        dropout = None if dropout is None else float(dropout)
        lr_patience, max_lr_drops = int(lr_patience), int(max_lr_drops)
        self.save_hyperparameters()
        self.epoch_started = time.perf_counter()  # also set when a mid-epoch checkpoint resumes
        classes = list(classes) if classes else [str(i) for i in range(num_classes)]
        if len(classes) != num_classes:
            raise ValueError(f"{len(classes)} class names for num_classes={num_classes}")
        if width <= 0 or lr <= 0:
            raise ValueError(f"model.width and model.lr must be > 0 (got width={width}, lr={lr})")
        arch, options = resolve_arch(arch), dict(arch_options or {})
        self.meta = ModelMeta(arch, num_classes, classes, width, crop_size, dropout, options=options)
        self.model = build(arch, num_classes=num_classes, width=width, crop_size=crop_size, dropout=dropout,
                           init=init, init_std=init_std, **options)
        if freeze:
            freeze_parameters(self.model, freeze)
        self.register_buffer("pca_eigval", torch.zeros(0), persistent=False)
        self.register_buffer("pca_eigvec", torch.zeros(0), persistent=False)
        self.pca_std = 0.0
        self.kept_preprocessing: ModelMeta | None = None
        self.channels_last = torch.cuda.is_available() if channels_last is None else channels_last
        self.compile_model = compile
        self.compiled, self.compile_reported, self.first_step_started = False, False, 0.0
        k = min(5, num_classes)
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=k, average="micro")
        # image-weighted means synced exactly across devices (Lightning's sync_dist averages per-process means)
        self.train_loss, self.val_loss = WeightedMean(), WeightedMean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_model(self) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        trainer = attached_trainer(self)
        on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        if self.compile_model or (self.compile_model is None and on_cuda):
            self.model.compile()  # in place: parameter names, hence checkpoints, stay as they are
            self.compiled = True  # the first training step's pause is reported once (on_train_batch_end)

    def setup(self, stage: str) -> None:
        trainer = attached_trainer(self)
        data = trainer.datamodule if trainer is not None else None
        if data is not None and getattr(data, "stats", None):
            self.adopt_data_stats(data.stats, data.s_min, data.s_max, data.pca_std)
            if getattr(data, "mean_image", None) is not None and self.kept_preprocessing is None:
                self.model.normalize.set_mean_image(torch.from_numpy(data.mean_image))
                self.meta.preprocessing = "mean_image"
            self.meta.center_square = bool(getattr(data, "center_square", False))

    def keep_preprocessing(self, source: ModelMeta) -> None:
        """Fine-tuning imported weights: keep their input normalisation instead of the data's mean RGB."""
        self.kept_preprocessing = source

    def adopt_data_stats(self, stats: dict, s_min: int, s_max: int, pca_std: float) -> None:
        """Take the training set's mean RGB (unless kept from the source) and PCA statistics and the scales."""
        self.meta.mean, self.meta.scale = list(stats["mean"]), [1.0, 1.0, 1.0]
        if self.kept_preprocessing is not None:
            kept = self.kept_preprocessing
            self.meta.preprocessing, self.meta.mean, self.meta.scale = kept.preprocessing, kept.mean, kept.scale
        self.meta.s_min, self.meta.s_max = s_min, s_max
        self.meta.pca_eigval, self.meta.pca_eigvec = list(stats["pca_eigval"]), [list(r) for r in stats["pca_eigvec"]]
        self.model.normalize.set(self.meta.mean, self.meta.scale)
        self.pca_eigval = torch.tensor(self.meta.pca_eigval, device=self.device)
        self.pca_eigvec = torch.tensor(self.meta.pca_eigvec, device=self.device)
        self.pca_std = pca_std

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """uint8 crops arrive on the device (or, with data.decode_on cuda, are decoded and cropped there); make them
        float there and add the colour shift when training."""
        if isinstance(batch, DeferredBatch):
            batch = batch.make()
        x, y = batch
        x = x.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.training:
            x = pca_color_shift(x, self.pca_eigval, self.pca_eigvec, self.pca_std)
        return x, y

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        scores, aux = self.model.forward_train(x)
        loss = F.cross_entropy(scores, y)
        if aux:  # GoogLeNet's side classifiers, weighted into the loss during training only
            loss = loss + self.model.aux_loss_weight * sum(F.cross_entropy(a, y) for a in aux)
        self.train_loss.update(loss.detach(), weight=len(y))
        # each self.log costs Lightning ~0.7 ms of bookkeeping, 3% of a narrow net's CPU step (`deepconv benchmark
        # train`): the step loss is logged only on the steps the logger writes, the epoch mean once an epoch
        # (not a progress-bar metric: Lightning would turn it into a number, a wait for the device, every step;
        # EpochProgressBar shows it from the logging steps)
        trainer = attached_trainer(self)
        if trainer is None or logging_step(trainer):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.compiled and not self.compile_reported:
            self.first_step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.compiled and not self.compile_reported:
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds, self.compile_reported = time.perf_counter() - self.first_step_started, True
            trainer = attached_trainer(self)
            if trainer is None or trainer.is_global_zero:
                print(f"torch.compile: the first training step took {seconds:.1f} s (kernels generated once per "
                      "run; later steps run compiled; --model.compile false skips it)")

    def on_train_epoch_start(self) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self.log("train/loss_epoch", self.train_loss.compute())
        self.train_loss.reset()
        # wall seconds of the epoch's training steps (validation excluded): `deepconv compare` sums them
        self.log("time/train_seconds", time.perf_counter() - self.epoch_started)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_loss.update(F.cross_entropy(logits, y), weight=len(y))
        self.val_top1.update(logits, y)
        self.val_top5.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        # torchmetrics' compute() already syncs across devices: the values are global, no sync_dist needed
        self.log("val/loss", self.val_loss.compute())
        self.log("val/top1_error", 100.0 * (1 - self.val_top1.compute()), prog_bar=True)
        self.log("val/top5_error", 100.0 * (1 - self.val_top5.compute()), prog_bar=True)
        for metric in (self.val_loss, self.val_top1, self.val_top5):
            metric.reset()

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
                              **sgd_implementation(hp.get("sgd_impl", "auto"), self.device.type))
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=hp.lr_drop_factor, patience=hp.lr_patience
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val/top1_error"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["deepconv"] = self.meta.to_dict()
