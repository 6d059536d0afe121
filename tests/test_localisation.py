"""Localisation building blocks against hand-worked cases: IoU, box encoding, greedy merging, VOC/CSV reading,
box targets that follow crops, scale and flips, SCR/PCR output sizes."""

import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.annotations import attach_boxes, read_voc
from deepconv_cli.errors import DeepconvError
from deepconv_cli.localisation.boxes import decode, encode, flip_encoded, greedy_merge, iou
from deepconv_cli.localisation.data import BoxCrops
from deepconv_cli.localisation.network import regression_outputs, replace_last_layer, select_boxes
from deepconv_cli.models.vgg import VGG


def test_iou_hand_worked():
    a = torch.tensor([[0.0, 0, 2, 2]])
    assert iou(a, torch.tensor([[1.0, 1, 3, 3]])).item() == pytest.approx(1 / 7)  # 1 / (4 + 4 - 1)
    assert iou(a, a).item() == 1.0
    assert iou(a, torch.tensor([[2.0, 0, 4, 2]])).item() == 0.0  # touching edges
    assert iou(a, torch.tensor([[0.0, 0, 4, 2]])).item() == pytest.approx(0.5)


def test_encode_decode_round_trip_and_flip():
    box = torch.tensor([10.0, 20, 30, 60])
    rel = encode(box, left=10, top=20, side=40)  # centre (20, 40) -> (0.25, 0.5); size 20x40 -> 0.5 x 1
    assert rel.tolist() == [0.25, 0.5, 0.5, 1.0]
    assert decode(rel, 10, 20, 40).tolist() == box.tolist()
    mirrored = decode(flip_encoded(rel), 0, 0, 40)  # in the 40-wide crop the box x 0..20 becomes 20..40
    assert mirrored.tolist() == [20.0, 0.0, 40.0, 40.0]


def test_greedy_merge_hand_worked():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    groups = greedy_merge(boxes, min_iou=0.5)  # IoU of the first two = 81/119 = 0.68 -> merged by averaging
    assert [g.count for g in groups] == [2, 1]
    assert groups[0].box.tolist() == [0.5, 0.5, 10.5, 10.5]
    assert groups[1].box.tolist() == [50, 50, 60, 60]
    # weights decide which group wins: one heavy box beats two light ones
    weighted = greedy_merge(boxes, torch.tensor([0.1, 0.1, 0.9]))
    assert weighted[0].box.tolist() == [50, 50, 60, 60] and weighted[0].weight == pytest.approx(0.9)
    # a chain merges step by step: (a, b) first (IoU 0.9), then their average with c
    chain = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 7]])
    assert greedy_merge(chain, min_iou=0.6)[0].count == 3
    assert greedy_merge(chain, min_iou=0.75)[0].count == 2


def write_voc(path, objects, size=(40, 30)):
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objs}</annotation>")


@pytest.fixture
def tree(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / "val" / "cat").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30)).save(tmp_path / "val" / "cat" / f"{name}.png")
    samples = [(str(tmp_path / "val" / "cat" / f"{n}.png"), 0) for n in ("a", "b", "c")]
    return tmp_path, samples


def test_voc_several_objects_and_missing_boxes(tree):
    root, samples = tree
    write_voc(root / "boxes" / "cat" / "a.xml",
              [("cat", (1, 2, 10, 12)), ("dog", (0, 0, 5, 5)), ("cat", (20, 5, 40, 30))])
    write_voc(root / "boxes" / "cat" / "b.xml", [("n0123", (3, 3, 9, 9))])  # no object names the class: all used
    assert [n for n, _ in read_voc(root / "boxes" / "cat" / "a.xml")] == ["cat", "dog", "cat"]
    items, report = attach_boxes(samples, ["cat"], root / "boxes")
    assert [i.boxes.tolist() for i in items] == [[[1, 2, 10, 12], [20, 5, 40, 30]], [[3, 3, 9, 9]]]
    assert report.no_boxes == 1 and items[0].size == (40, 30)


@pytest.mark.parametrize("content, words", [
    ("<annotation><object>", "not a readable VOC XML"),
    ("<annotation><object><name>cat</name><bndbox><xmin>1</xmin></bndbox></object></annotation>", "object 1"),
    (None, "outside the 40x30 image"),
])
def test_broken_annotation_is_one_line_naming_the_file(tree, content, words):
    root, samples = tree
    xml = root / "boxes" / "cat" / "a.xml"
    write_voc(xml, [("cat", (1, 2, 41, 12))])
    if content is not None:
        xml.write_text(content)
    with pytest.raises(DeepconvError) as e:
        attach_boxes(samples, ["cat"], root / "boxes")
    assert str(xml) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
    items, report = attach_boxes(samples, ["cat"], root / "boxes", skip_bad=True)
    assert items == [] and len(report.bad) == 1 and report.no_boxes == 2


def test_csv_boxes(tree):
    root, samples = tree
    (root / "boxes.csv").write_text("path,class,x0,y0,x1,y1\nval/cat/a.png,cat,1,2,10,12\nval/cat/a.png,cat,2,2,4,4\n"
                                    "val/cat/c.png,cat,0,0,40,30\n")
    items, report = attach_boxes(samples, ["cat"], root / "boxes.csv")
    assert [len(i.boxes) for i in items] == [2, 1] and report.no_boxes == 1
    (root / "bad.csv").write_text("val/cat/a.png,cat,1,2,x,12\n")
    with pytest.raises(DeepconvError, match="bad.csv: line 1"):
        attach_boxes(samples, ["cat"], root / "bad.csv")


def test_targets_follow_crop_scale_and_flip(tmp_path):
    """A white square on black: the box decoded from the target must sit exactly on the square in the crop."""
    img = Image.new("RGB", (120, 80))
    img.paste((255, 255, 255), (50, 20, 90, 60))  # the object: x 50..90, y 20..60
    img.save(tmp_path / "x.png")
    from deepconv_cli.data.annotations import Annotated

    item = Annotated(str(tmp_path / "x.png"), 0, torch.tensor([[50.0, 20, 90, 60]]), (120, 80))
    data = BoxCrops([item], crop=64, s_min=64, s_max=128, flip=True, min_cover=0.0)
    random.seed(0)
    flipped_seen = set()
    for _ in range(12):
        x, target, label = data[0]
        box = decode(target, 0, 0, 64).round().int().tolist()
        x0, y0, x1, y1 = [min(max(v, 0), 64) for v in box]
        assert label == 0 and x.shape == (3, 64, 64)
        inside = x[0].float() > 127
        if x1 - x0 >= 4 and y1 - y0 >= 4:  # the visible part of the object is bright, a band around it dark
            assert inside[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].float().mean() > 0.95
            assert inside.float().sum() <= (x1 - x0 + 2) * (y1 - y0 + 2)
        flipped_seen.add(float(target[0]) > 0.5)
    centre = BoxCrops([item], crop=64, s_min=80, s_max=80, test_scale=80)[0][1]
    # Q=80: the image becomes 120x80, the centre crop is x 28..92, y 8..72; the box 50..90 x 20..60 is
    # (70-28)/64, (40-8)/64, 40/64, 40/64 of it
    assert centre.tolist() == pytest.approx([42 / 64, 32 / 64, 40 / 64, 40 / 64])


@pytest.mark.parametrize("regression, outputs", [("scr", 4), ("pcr", 40)])
def test_scr_pcr_output_sizes(regression, outputs):
    model = VGG("A", num_classes=10, width=0.125, crop_size=32)
    replace_last_layer(model, regression_outputs(regression, 10))
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, outputs)
    assert model.score_map(torch.zeros(1, 3, 96, 64)).shape == (1, outputs, 3, 2)
    assert select_boxes(out, regression, torch.tensor([3, 7])).shape == (2, 4)
    if regression == "pcr":
        assert torch.equal(select_boxes(out, "pcr", torch.tensor([3, 7]))[1], out[1, 28:32])


def test_digit_boxes_deterministic(tmp_path, capsys):
    assert deepconv(["data", "digit-boxes", str(tmp_path / "a"), "--limit", "10"]) == 0
    assert deepconv(["data", "digit-boxes", str(tmp_path / "b"), "--limit", "10"]) == 0
    a, b = sorted((tmp_path / "a").rglob("*.*")), sorted((tmp_path / "b").rglob("*.*"))
    assert len(a) == 20 and [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    objects = read_voc(tmp_path / "a" / "boxes" / "4" / "0004.xml")
    assert len(objects) == 1 and objects[0][0] == "4"
    assert deepconv(["data", "digit-boxes", str(tmp_path / "a")]) == 2
    assert "not an empty folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["imagenet/localise_pcr_s256", "imagenet/localise_pcr_s384", "quickstart_localise/pcr",
                                  "quickstart_localise/scr", "quickstart_localise/pcr_fc",
                                  "quickstart_localise/scr_fc"])
def test_localise_recipes_are_valid_configs(name, capsys):
    path = Path(__file__).resolve().parents[1] / "recipes" / f"{name}.yaml"
    with pytest.raises(SystemExit) as done:
        deepconv(["localise", "fit", "-c", str(path), "--print_config"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    words = name.rpartition("/")[2].split("_")  # pcr, scr_fc, localise_pcr_s256: regression, then fc when FC-only
    regression = "scr" if "scr" in words else "pcr"
    assert f"regression: {regression}" in out and f"train_layers: {'fc' if 'fc' in words else 'all'}" in out


def test_quickstart_localise_chain_stages():
    from deepconv_cli.recipes.runner import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "quickstart_localise.yaml")
    stages = {s.name: s for s in recipe.stages}
    assert recipe.argv(stages["pcr"])[:4] == ["localise", "fit", "-c", str(stages["pcr"].config)]
    assert "--init_from" in recipe.argv(stages["pcr"]) and stages["pcr"].init_from == "classifier"
    assert recipe.status(stages["pcr"]) in ("pending", "resume", "done", "changed")
    dense = recipe.argv(stages["dense_top5"])
    assert dense[:2] == ["localise", "evaluate"] and dense[dense.index("--classifier") + 1].endswith("best.ckpt")
