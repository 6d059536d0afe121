"""Table 12 of the VGG paper (VOC-2012 actions): the action layout read from a VOC-style tree, descriptors of the
whole image and of each person's box (the box's descriptor is the cropped image's), stacked for setting (ii), and
on digit-boxes the image+box setting beating image-only; bad annotations are one line."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.features.descriptors import l2_normalise
from deepconv_cli.features.store import read_features
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint
from deepconv_cli.models.vgg import VGG

PERSON = """<object><name>person</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>
<actions>{}</actions></object>"""
DOG = "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
ACTIONS = ("jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running",
           "takingphoto", "usingcomputer", "walking", "other")


@pytest.fixture(scope="module")
def net_d(tmp_path_factory):
    """A narrow VGG-D with fixed random weights: a crop's descriptor equals the box's for any weights."""
    torch.manual_seed(1)
    meta = ModelMeta(arch="D", num_classes=10, classes=[str(i) for i in range(10)], width=0.125, crop_size=32,
                     s_min=36, s_max=36)
    path = tmp_path_factory.mktemp("net") / "d.ckpt"
    save_model_checkpoint(path, VGG("D", 10, 0.125, 32, init="glorot").eval(), meta)
    return path


def flags(*on: str) -> str:
    return "".join(f"<{a}>{int(a in on)}</{a}>" for a in ACTIONS)


def voc_tree(root):
    """VOCdevkit/VOC2012 with three 64x48 JPEGs: 2011_000001 (a dog, then two people), 2011_000002 (one person,
    `other`) in train; 2011_000003 (one person) in val. Boxes in the devkit's 1-based inclusive pixels."""
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Action"):
        (base / sub).mkdir(parents=True)
    objects = {"2011_000001": DOG + PERSON.format(3, 5, 30, 40, flags("jumping"))
               + PERSON.format(31, 2, 64, 48, flags("phoning", "running")),
               "2011_000002": PERSON.format(10, 10, 50, 45, flags("other")),
               "2011_000003": PERSON.format(5, 6, 40, 44, flags("walking"))}
    for k, (image_id, body) in enumerate(objects.items()):
        pixels = np.random.default_rng(k).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{image_id}.jpg", quality=90)
        (base / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{body}</annotation>")
    (base / "ImageSets" / "Action" / "train.txt").write_text("2011_000001\n2011_000002\n")
    (base / "ImageSets" / "Action" / "val.txt").write_text("2011_000003\n")
    return base


def test_voc_action_layout_one_row_per_person_with_box_and_actions(tmp_path, capsys):
    voc_tree(tmp_path)
    out = tmp_path / "actions"
    for split in ("train", "val"):
        assert deepconv(["data", "voc", str(tmp_path), str(out), "--split", split, "--task", "action"]) == 0
    assert "linked 2 images of train" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "train").iterdir()) == ["2011_000001.jpg", "2011_000002.jpg"]
    boxes = list(csv.reader((out / "boxes.csv").open()))
    assert boxes == [["person", "x0", "y0", "x1", "y1"],
                     ["train/2011_000001.jpg#2", "2", "4", "30", "40"],  # object 2: the dog is object 1
                     ["train/2011_000001.jpg#3", "30", "1", "64", "48"],
                     ["train/2011_000002.jpg#1", "9", "9", "50", "45"],
                     ["val/2011_000003.jpg#1", "4", "5", "40", "44"]]
    labels = list(csv.reader((out / "labels.csv").open()))
    assert labels == [["image", "labels"], ["train/2011_000001.jpg#2", "jumping"],
                      ["train/2011_000001.jpg#3", "phoning running"], ["train/2011_000002.jpg#1", "other"],
                      ["val/2011_000003.jpg#1", "walking"]]


@pytest.mark.parametrize(("xml", "expected"), [
    ("<annotation><object><name>person", "not a readable VOC XML file"),
    (f"<annotation><object><name>person</name><actions>{flags('jumping')}</actions></object></annotation>",
     "person 1 has <actions> but no numeric <bndbox>"),
])
def test_bad_action_annotation_is_one_line_exit_1(tmp_path, capsys, xml, expected):
    base = voc_tree(tmp_path)
    (base / "Annotations" / "2011_000002.xml").write_text(xml)
    out = tmp_path / "actions"
    assert deepconv(["data", "voc", str(tmp_path), str(out), "--split", "train", "--task", "action"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2011_000002.xml" in err[0] and expected in err[0], err
    assert not out.exists()  # nothing half-written


def test_image_without_its_box_file_is_one_line_exit_2(tmp_path, capsys):
    assert deepconv(["data", "digit-boxes", str(tmp_path / "db"), "--limit", "10"]) == 0
    (tmp_path / "db" / "boxes" / "3" / "0003.xml").unlink()
    assert deepconv(["data", "box-actions", str(tmp_path / "db"), str(tmp_path / "act"), "--split", "train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0003.png has no box" in err[0], err


def test_box_outside_its_image_or_malformed_row_is_one_line_exit_1(tmp_path, capsys):
    voc_tree(tmp_path)
    out = tmp_path / "actions"
    assert deepconv(["data", "voc", str(tmp_path), str(out), "--split", "train", "--task", "action"]) == 0
    text = (out / "boxes.csv").read_text()
    capsys.readouterr()
    for bad, expected in ((text.replace("30,1,64,48", "30,1,65,48"), "is empty or outside the 64x48 image"),
                          (text.replace("30,1,64,48", "30,1,64"), "boxes.csv:3: expected `image#object,x0,y0,x1,y1`")):
        (out / "boxes.csv").write_text(bad)
        assert deepconv(["features", "--raw-pixels", "4", "--data", str(out / "train"), "--boxes",
                         str(out / "boxes.csv"), "--region", "box", "--out", str(tmp_path / "f.safetensors")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert not (tmp_path / "f.safetensors").exists()


def test_box_descriptor_is_the_cropped_image_descriptor_and_image_box_stacks_both(net_d, tmp_path):
    voc_tree(tmp_path)
    out = tmp_path / "actions"
    assert deepconv(["data", "voc", str(tmp_path), str(out), "--split", "train", "--task", "action"]) == 0
    files = {}
    for region in ("image", "box", "image+box"):
        files[region] = tmp_path / f"{region}.safetensors"
        assert deepconv(["features", "--ckpt", str(net_d), "--data", str(out / "train"), "--boxes",
                         str(out / "boxes.csv"), "--region", region, "--scales", "32,40", "--num-workers", "0",
                         "--out", str(files[region])]) == 0
    crops, wholes = tmp_path / "crops", tmp_path / "wholes"
    crops.mkdir()
    wholes.mkdir()
    for person, x0, y0, x1, y1 in list(csv.reader((out / "boxes.csv").open()))[1:]:
        image = Image.open(out / person.split("#")[0]).convert("RGB")  # the decoded JPEG's pixels, saved lossless
        image.crop((int(x0), int(y0), int(x1), int(y1))).save(crops / f"{person.replace('/', '_')}.png")
        image.save(wholes / f"{person.replace('/', '_')}.png")
    direct = {}
    for name, folder in (("crops", crops), ("wholes", wholes)):
        assert deepconv(["features", "--ckpt", str(net_d), "--data", str(folder), "--scales", "32,40",
                         "--num-workers", "0", "--out", str(tmp_path / f"{name}.safetensors")]) == 0
        feats = read_features(tmp_path / f"{name}.safetensors")
        direct[name] = dict(zip(feats.paths, feats.descriptors))
    got = {region: read_features(path) for region, path in files.items()}
    people = got["box"].paths
    assert people == ["2011_000001.jpg#2", "2011_000001.jpg#3", "2011_000002.jpg#1"]
    for region, name in (("box", "crops"), ("image", "wholes")):
        expected = torch.stack([direct[name][f"train_{p}.png"] for p in people])
        torch.testing.assert_close(got[region].descriptors, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got["box"].descriptors, got["image"].descriptors, atol=1e-3)
    d = got["image"].dim
    assert got["image+box"].descriptors.shape == (3, 2 * d)
    both = l2_normalise(torch.cat([got["image"].descriptors, got["box"].descriptors], dim=1))
    torch.testing.assert_close(got["image+box"].descriptors, both, atol=1e-5, rtol=1e-4)
    assert got["image+box"].settings["region"] == "image+box"


@pytest.mark.slow
def test_digit_boxes_image_and_box_beats_image_only(trained_ckpt, tmp_path):
    """Table 12's laptop form: the digit's box as the person, its class as the action; mean AP (devkit,
    VOC-2010+) of one linear SVM per digit on the whole canvas vs on canvas and box stacked."""
    assert deepconv(["data", "digit-boxes", str(tmp_path / "db"), "--limit", "500"]) == 0
    act = tmp_path / "act"
    for split in ("train", "val"):
        assert deepconv(["data", "box-actions", str(tmp_path / "db"), str(act), "--split", split]) == 0
    args = []
    for region in ("image", "image+box"):
        for split in ("train", "val"):
            assert deepconv(["features", "--ckpt", str(trained_ckpt), "--data", str(act / split), "--boxes",
                             str(act / "boxes.csv"), "--region", region, "--scales", "32,40", "--num-workers", "0",
                             "--out", str(tmp_path / f"{region}_{split}.safetensors")]) == 0
        args += ["--train", str(tmp_path / f"{region}_train.safetensors"),
                 "--test", str(tmp_path / f"{region}_val.safetensors")]
    result = tmp_path / "svm.json"
    assert deepconv(["linear-svm", *args, "--labels", str(act / "labels.csv"), "--ap", "voc2010", "--dataset",
                     "digit-boxes", "--folds", "3", "--json", str(result)]) == 0
    image, both = json.loads(result.read_text())
    for row, setting in ((image, "image"), (both, "image+box")):
        assert (row["dataset"], row["task"], row["setting"], row["ap"]) == ("digit-boxes", "action", setting, "voc2010")
        assert (row["train_images"], row["test_images"]) == (400, 100)
    print({"image": image["mean"], "image+box": both["mean"]})
    assert both["mean"] > image["mean"] + 10, (image["mean"], both["mean"])


def test_dry_run_names_a_missing_boxes_file(net_d, tmp_path, capsys):
    (tmp_path / "images").mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"stages:\n  - {{name: f, command: features, args: [--ckpt, {net_d}, --data, {tmp_path}/images, "
                      f"--boxes, {tmp_path}/nowhere.csv, --region, image+box, --out, '{{run_dir}}/f.safetensors']}}\n")
    assert deepconv(["recipe", "run", str(recipe), "--dry_run", "--run_root", str(tmp_path / "runs")]) == 2
    assert f"boxes file {tmp_path}/nowhere.csv not found" in capsys.readouterr().err
