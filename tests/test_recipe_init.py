"""The ImageNet recipes' initialisation trains: N(0, 0.01) weights, zero biases, mean-RGB input, SGD as the recipe.

Measured (tests/test_recipe_init.py's loop, digits, crop 32): a width-1/8 VGG-A with std 0.01 as such never leaves
ln 10 (loss 2.303 after 40 steps at width 1/8, 1/2 and 1, and after 600 steps at width 1/8): each conv layer's
output std shrinks ~10x at width 1/8 (fan-in 8x smaller) against ~2.5x at full width, so the scores reaching
the loss are ~1e-6 of the input. The test therefore keeps the recipe's *fan-in behaviour*: every weight layer
is drawn with std 0.01 x sqrt(full-width fan-in / narrow fan-in) (the full-width, 224-crop net's per-layer
gain, FC1's 7x7x512 fan-in included), and so starts like the recipe's network does. Even then VGG-A sits on the
ln K plateau for ~500 steps before the loss falls (the known slow start of std-0.01 VGG training); the test
runs 600 steps (~50 s on one core: the one test here over the ~30 s budget, because the plateau is the point).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.models.registry import build_meta
from deepconv_cli.training.module import ClassifierModule

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "imagenet" / "vgg_a_s256.yaml"
STEPS = 600


def rescale_to_full_width_fan_in(module: ClassifierModule, std: float) -> None:
    """Redraw each weight layer N(0, std * sqrt(fan-in of the full-width 224-crop layer / this layer's fan-in))."""
    full = dict(build_meta(module.meta.arch, num_classes=module.meta.num_classes, width=1.0,
                           crop_size=224).weight_layers())
    with torch.no_grad():
        for name, layer in module.model.weight_layers():
            ratio = full[name].weight[0].numel() / layer.weight[0].numel()
            layer.weight.normal_(0.0, std * ratio**0.5)


def test_the_imagenet_recipe_init_trains_a_narrow_vgg_a(digits_dir):
    recipe = yaml.safe_load(RECIPE.read_text())
    model, data = recipe["model"], recipe["data"]
    assert (model["init"], model["init_std"]) == ("normal", 0.01)  # what this test stands for
    torch.manual_seed(0)
    dm = ImageFolderData(str(digits_dir), s_min=36, s_max=36, crop_size=32, batch_size=32, num_workers=0,
                         flip=data["flip"], pca_std=data["pca_std"])
    dm.setup("fit")
    module = ClassifierModule(model["arch"], dm.num_classes, width=0.125, crop_size=32, dropout=model["dropout"],
                              init=model["init"], init_std=model["init_std"], channels_last=False, compile=False)
    rescale_to_full_width_fan_in(module, model["init_std"])
    module.adopt_data_stats(dm.stats, 36, 36, data["pca_std"])  # mean RGB only (scale 1), PCA colour shift
    assert module.meta.scale == [1.0, 1.0, 1.0]
    opt = torch.optim.SGD(module.parameters(), lr=model["lr"], momentum=model["momentum"],
                          weight_decay=model["weight_decay"])
    module.train()
    losses = []
    while len(losses) < STEPS:
        for batch in dm.train_dataloader():
            x, y = module.on_after_batch_transfer(batch, 0)
            loss = F.cross_entropy(module(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == STEPS:
                break
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    assert all(map(torch.isfinite, torch.tensor(losses)))
    assert abs(first - torch.log(torch.tensor(10.0)).item()) < 0.05  # starts at chance, like the full-width net
    assert last < first - 0.15, f"loss did not fall: first 50 steps {first:.3f}, last 50 {last:.3f}"
