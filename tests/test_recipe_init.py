"""The ImageNet recipes' initialisation starts training sanely: N(0, 0.01) weights, zero biases, mean-RGB input.

Measured (digits, crop 32, the recipe's SGD: lr 0.01, momentum 0.9, weight decay 5e-4, batch 32, one core):
- std 0.01 as such on a narrow VGG-A never leaves ln 10 (loss 2.303 after 40 steps at width 1/8, 1/2 and 1, and
  after 600 steps at width 1/8). Each conv layer's output std shrinks ~10x at width 1/8 (fan-in 8x smaller)
  against ~2.5x at full width (conv8 output std: 1e-6 at width 1/8, 6e-3 at full width, 224 crops).
- So the test keeps the recipe's *fan-in behaviour*: each weight layer is drawn with std 0.01 x sqrt(full-width
  224-crop fan-in / narrow fan-in), the full-width net's per-layer gain (FC1's 7x7x512 fan-in included).
- Even then VGG-A sits on the ln K plateau for hundreds of steps: with one data order the loss left it after
  ~490 steps (2.30 -> 1.41 by step 600), with this test's order it was still 2.299 at step 600. "The loss
  falls within a few dozen steps" is therefore not true of std 0.01 and cannot be tested in a CPU budget; what
  is tested is what separates the recipe from the paper's literal std 0.1: at the same fan-ins 0.1 blows up
  at once while 0.01 starts at chance with finite losses and gradients that reach the first layer.
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.models.registry import build_meta
from deepconv_cli.training.module import ClassifierModule

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "imagenet" / "vgg_a_s256.yaml"
STEPS = 40

def rescale_to_full_width_fan_in(module: ClassifierModule, std: float) -> None:
    """Redraw each weight layer N(0, std * sqrt(fan-in of the full-width 224-crop layer / this layer's fan-in))."""
    full = dict(build_meta(module.meta.arch, num_classes=module.meta.num_classes, width=1.0,
                           crop_size=224).weight_layers())
    with torch.no_grad():
        for name, layer in module.model.weight_layers():
            ratio = full[name].weight[0].numel() / layer.weight[0].numel()
            layer.weight.normal_(0.0, std * ratio**0.5)


def first_steps(digits_dir: Path, std: float) -> tuple[list[float], float]:
    """Losses of the first STEPS steps of a width-1/8 VGG-A at the recipe's fan-in behaviour, and the first conv
    layer's gradient norm at step 1, with the recipe's preprocessing (mean RGB, PCA shift, flips) and SGD."""
    recipe = yaml.safe_load(RECIPE.read_text())
    model, data = recipe["model"], recipe["data"]
    torch.manual_seed(0)
    dm = ImageFolderData(str(digits_dir), s_min=36, s_max=36, crop_size=32, batch_size=32, num_workers=0,
                         flip=data["flip"], pca_std=data["pca_std"])
    dm.setup("fit")
    module = ClassifierModule(model["arch"], dm.num_classes, width=0.125, crop_size=32, dropout=model["dropout"],
                              init=model["init"], init_std=std, channels_last=False, compile=False)
    rescale_to_full_width_fan_in(module, std)
    module.adopt_data_stats(dm.stats, 36, 36, data["pca_std"])  # mean RGB only (scale 1), PCA colour shift
    assert module.meta.scale == [1.0, 1.0, 1.0]
    opt = torch.optim.SGD(module.parameters(), lr=model["lr"], momentum=model["momentum"],
                          weight_decay=model["weight_decay"])
    module.train()
    losses, first_grad = [], 0.0
    for batch in dm.train_dataloader():
        x, y = module.on_after_batch_transfer(batch, 0)
        loss = F.cross_entropy(module(x), y)
        opt.zero_grad()
        loss.backward()
        if not losses:
            first_grad = module.model.weight_layers()[0][1].weight.grad.norm().item()
        opt.step()
        losses.append(loss.item())
        if len(losses) == STEPS:
            break
    return losses, first_grad


def test_the_recipe_std_starts_at_chance_where_the_papers_literal_std_blows_up(digits_dir):
    recipe = yaml.safe_load(RECIPE.read_text())["model"]
    assert (recipe["init"], recipe["init_std"]) == ("normal", 0.01)  # what this test stands for
    losses, grad = first_steps(digits_dir, recipe["init_std"])
    chance = math.log(10)
    assert all(math.isfinite(v) and abs(v - chance) < 0.1 for v in losses)
    assert math.isfinite(grad) and grad > 1e-6  # the signal reaches the first layer
    literal, _ = first_steps(digits_dir, 0.1)  # "10^-2 variance" taken literally
    assert not math.isfinite(literal[0]) or literal[0] > 1e3 or not all(map(math.isfinite, literal))
