"""Descriptors across scales (Appendix B): stacking, averaging and max-pooling agree on the per-scale parts."""

import torch
import torch.nn.functional as F

from deepconv_cli.features.descriptors import model_descriptors
from deepconv_cli.models.registry import build


def test_average_and_max_pool_the_per_scale_descriptors_that_stack_concatenates():
    torch.manual_seed(0)
    model = build("A", num_classes=10, width=0.125, crop_size=32).eval()
    images = [{q: torch.randint(0, 255, (3, q, q + 4 * i), dtype=torch.uint8) for q in (32, 40)} for i in range(3)]
    out = {a: model_descriptors(model, images, [32, 40], a, True, 8) for a in ("stack", "average", "max")}
    d = out["average"].shape[1]
    parts = torch.stack([out["stack"][:, :d], out["stack"][:, d:]])  # each scale's descriptor, times one constant
    assert out["stack"].shape[1] == 2 * d and out["max"].shape[1] == d
    torch.testing.assert_close(out["max"], F.normalize(parts.amax(dim=0), dim=1))
    torch.testing.assert_close(out["average"], F.normalize(parts.mean(dim=0), dim=1))
    assert not torch.allclose(out["max"], out["average"])
