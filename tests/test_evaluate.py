"""Dense, multi-crop and fused evaluation compute exactly what sections 3.2 and 4.2-4.4 of the VGG paper say."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepconv_cli.evaluation.crops import crop_boxes, crop_views, grid_offsets, multiscale_crop_posteriors
from deepconv_cli.evaluation.dense import multiscale_dense_posteriors, rescale_shorter, to_uint8_tensor
from deepconv_cli.evaluation.runner import Member, chunk_posteriors
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.vgg import VGG

CROP = 32
TOL = {"rtol": 1e-5, "atol": 1e-6}


def narrow_net(seed: int) -> VGG:
    """A width-1/8 VGG-A whose posteriors are far from uniform, so averaging mistakes show."""
    torch.manual_seed(seed)
    model = VGG("A", 10, 0.125, CROP, init="kaiming")
    model.normalize.set([120.0, 115.0, 100.0], [1 / 60] * 3)
    return model.eval()


def random_image(w: int, h: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def net() -> VGG:
    model = narrow_net(0)
    probs = F.softmax(model(torch.rand(4, 3, CROP, CROP) * 255), dim=1)
    assert probs.max() > 0.2 and probs.min() < 0.05  # informative posteriors, not a uniform 0.1 everywhere
    return model


def test_dense_at_crop_scale_equals_the_plain_crop_forward(net):
    img = random_image(CROP, CROP, 1)
    x = to_uint8_tensor(img)
    assert torch.equal(to_uint8_tensor(rescale_shorter(img, CROP)), x)  # Q = crop: the image is the crop
    with torch.inference_mode():
        crop_logits = net(x[None].float())
        head = net.classifier  # the fully convolutional path: FC1 as a k x k conv, FC2/FC3 as 1 x 1 convs
        features = net.features(net.normalize(x[None].float()))
        conv_logits = head.fc3(F.relu(head.fc2(F.relu(head.fc1(features))))).mean(dim=(2, 3))
    torch.testing.assert_close(conv_logits, crop_logits, **TOL)
    dense = multiscale_dense_posteriors(net, [{CROP: x}], [CROP], flip=False)
    torch.testing.assert_close(dense, F.softmax(crop_logits, dim=1), **TOL)
    flipped = F.softmax(net(torch.flip(x, dims=[2])[None].float()), dim=1)
    both = multiscale_dense_posteriors(net, [{CROP: x}], [CROP], flip=True)
    torch.testing.assert_close(both, (F.softmax(crop_logits, dim=1) + flipped) / 2, **TOL)


def test_dense_keeps_the_aspect_ratio_and_averages_the_score_map(net):
    img = rescale_shorter(random_image(60, 30, 2), CROP)
    assert img.size == (64, CROP)  # shorter side to Q, aspect kept: never squared
    x = to_uint8_tensor(img)[None].float()
    with torch.inference_mode():
        score_map = net.score_map(x)
    assert score_map.shape == (1, 10, 1, 2)  # the net ran fully convolutionally over the whole image
    dense = multiscale_dense_posteriors(net, [{CROP: x[0].byte()}], [CROP], flip=False)
    torch.testing.assert_close(dense, F.softmax(score_map.mean(dim=(2, 3)), dim=1), **TOL)


def test_bucketing_by_shape_gives_the_same_posteriors_as_one_by_one(net):
    sizes = [(40, 40), (48, 36), (40, 40), (36, 48), (48, 36), (40, 40)]
    images = [{q: to_uint8_tensor(rescale_shorter(random_image(w, h, i), q)) for q in (32, 44)}
              for i, (w, h) in enumerate(sizes)]
    together = multiscale_dense_posteriors(net, images, [32, 44], batch_size=2)
    alone = torch.cat([multiscale_dense_posteriors(net, [img], [32, 44]) for img in images])
    torch.testing.assert_close(together, alone, **TOL)


def test_the_5x5_grid_covers_the_corners_exactly_and_gives_50_crops_per_scale():
    assert grid_offsets(50, CROP) == [0, 4, 9, 14, 18]
    boxes = crop_boxes("multi-crop", 50, 40, CROP)
    assert len(set(boxes)) == 25
    assert {(0, 0), (18, 0), (0, 8), (18, 8)} <= set(boxes)  # the four corners: right/bottom edges reached
    assert all(0 <= left <= 18 and 0 <= top <= 8 for left, top in boxes)
    image = torch.arange(3 * 40 * 50, dtype=torch.int32).view(3, 40, 50)
    views = crop_views(image, "multi-crop", CROP)
    assert views.shape == (50, 3, CROP, CROP)
    assert torch.equal(views[24], image[:, 8:40, 18:50])  # bottom-right corner crop
    assert torch.equal(views[25], torch.flip(views[0], dims=[2]))  # the flips follow the crops
    assert crop_views(image, "multi-crop", CROP, flip=False).shape[0] == 25


def test_10_crop_is_four_corners_and_the_centre_with_flips():
    image = torch.arange(3 * 40 * 50, dtype=torch.int32).view(3, 40, 50)
    assert crop_boxes("10-crop", 50, 40, CROP) == [(0, 0), (18, 0), (0, 8), (18, 8), (9, 4)]
    views = crop_views(image, "10-crop", CROP)
    assert views.shape[0] == 10
    assert torch.equal(views[4], image[:, 4:36, 9:41])
    assert crop_views(image, "center", CROP).shape[0] == 1


def test_multi_crop_averages_the_softmax_over_crops_flips_and_scales(net):
    img = random_image(45, 38, 3)
    scaled = {q: to_uint8_tensor(rescale_shorter(img, q)) for q in (32, 40)}
    by_hand = []
    with torch.inference_mode():
        for q in (32, 40):
            _, h, w = scaled[q].shape
            crops = []
            for left, top in crop_boxes("multi-crop", w, h, CROP):
                window = scaled[q][:, top : top + CROP, left : left + CROP][None].float()
                crops += [F.softmax(net(window), dim=1), F.softmax(net(torch.flip(window, dims=[3])), dim=1)]
            by_hand.append(torch.cat(crops).mean(dim=0))
    result = multiscale_crop_posteriors(net, [scaled], [32, 40], "multi-crop", batch_size=7)
    torch.testing.assert_close(result[0], (by_hand[0] + by_hand[1]) / 2, **TOL)


def test_fusion_and_ensembles_average_the_posteriors():
    meta = ModelMeta("A", 10, [str(i) for i in range(10)], 0.125, CROP)
    members = [Member(Path(f"m{i}.ckpt"), narrow_net(i), meta, [32, 40]) for i in (1, 2)]
    images = [{q: to_uint8_tensor(rescale_shorter(random_image(w, h, i), q)) for q in (32, 40)}
              for i, (w, h) in enumerate([(40, 32), (33, 50), (40, 32)])]
    out = chunk_posteriors(members, images, "dense+multi-crop", batch_size=300)
    dense = [multiscale_dense_posteriors(m.model, images, [32, 40]) for m in members]
    crops = [multiscale_crop_posteriors(m.model, images, [32, 40], batch_size=300) for m in members]
    for i in range(2):
        torch.testing.assert_close(out[str(i), "dense+multi-crop"], (dense[i] + crops[i]) / 2, **TOL)
    torch.testing.assert_close(out["ensemble", "dense"], (dense[0] + dense[1]) / 2, **TOL)
    torch.testing.assert_close(out["ensemble", "dense+multi-crop"],
                               (dense[0] + crops[0] + dense[1] + crops[1]) / 4, **TOL)
    assert not torch.allclose(dense[0], crops[0], atol=1e-3)  # the methods differ, so the averages are informative
    torch.testing.assert_close(out["ensemble", "dense"].sum(dim=1), torch.ones(3), **TOL)


def test_default_test_scales_follow_the_paper():
    fixed = ModelMeta("D", 1000, [], crop_size=224, s_min=256, s_max=256)
    jittered = ModelMeta("D", 1000, [], crop_size=224, s_min=256, s_max=512)
    assert fixed.default_test_scales() == [224, 256, 288]
    assert jittered.default_test_scales() == [256, 384, 512]
    assert ModelMeta("A", 10, [], crop_size=32, s_min=36, s_max=36).default_test_scales() == [32, 36, 41]
