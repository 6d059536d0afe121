"""`deepconv predict`: any photo gets an answer, every artefact kind predicts alike, bad input is one line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.cli.predict import predict
from deepconv_cli.data.folder import to_rgb
from deepconv_cli.evaluation.dense import dense_posteriors, rescale_shorter, to_uint8_tensor
from deepconv_cli.evaluation.prediction import resolve_scales
from deepconv_cli.models.checkpoint import ModelMeta, load_model, save_model_checkpoint
from deepconv_cli.models.init import init_weights

CROP = 32


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A narrow VGG-A (width 1/8, crop 32, S = 64) with Glorot weights, as a .ckpt."""
    meta = ModelMeta(
        arch="A", num_classes=10, classes=[f"class{i}" for i in range(10)], width=0.125, crop_size=CROP,
        mean=[123.7, 116.3, 103.5], s_min=64, s_max=64,
    )
    torch.manual_seed(0)
    model = meta.build()
    init_weights(model, "glorot", 0.01)
    path = tmp_path_factory.mktemp("predict") / "narrow.ckpt"
    save_model_checkpoint(path, model, meta)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of awkward image files: every mode and size a user's photo library holds."""
    root = tmp_path_factory.mktemp("photos")
    rgb = np.random.default_rng(0).integers(0, 256, (48, 70, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    img.convert("L").save(root / "grey.jpg")
    img.convert("CMYK").save(root / "cmyk.jpg")
    img.convert("P").save(root / "palette.png")
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 70, dtype=np.uint8), (48, 1))))
    rgba.save(root / "rgba.png")
    Image.fromarray(rgb[:3, :5]).save(root / "tiny.png")  # far smaller than the crop
    Image.fromarray(rgb[:3, :60]).save(root / "strip.png")  # extreme aspect ratio
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(root / "sixteen_bit.png")
    img.save(root / "photo.jpg", exif=_orientation(6))
    (root / ".hidden").mkdir()
    img.save(root / ".hidden" / "ignored.png")
    return root


def _orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def test_every_odd_image_gets_topk_answers(ckpt, photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # a terminal wide enough that the table shows whole paths
    out = tmp_path / "preds.json"
    assert deepconv(["predict", "--ckpt", str(ckpt), str(photos), "--topk", "3", "--json", str(out)]) == 0
    preds = json.loads(out.read_text())
    names = sorted(p.name for p in photos.iterdir() if p.is_file())
    assert sorted(k.split("/")[-1] for k in preds) == names and len(names) == 8
    for top in preds.values():
        probs = [e["probability"] for e in top]
        assert len(top) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(e["class"] == f"class{e['index']}" for e in top)
    shown = capsys.readouterr().out
    assert all(name in shown for name in names)


def test_conversions_keep_what_the_photo_shows():
    grey = np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)
    sixteen = to_rgb(Image.fromarray(grey.astype(np.uint16) * 257))
    assert np.array_equal(np.asarray(sixteen)[..., 1], grey)  # 16-bit scaled, not clipped to white
    clear = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert np.asarray(to_rgb(clear)).min() == 255  # transparent areas composite onto white
    portrait = Image.new("RGB", (60, 40))
    portrait.info["exif"] = _orientation(6).tobytes()
    assert to_rgb(portrait).size == (40, 60)  # EXIF orientation applied


@pytest.fixture(scope="module")
def exports(ckpt):
    paths = {}
    for fmt, suffix in (("safetensors", ".safetensors"), ("onnx", ".onnx"), ("torchscript", ".pt")):
        paths[fmt] = ckpt.with_suffix(suffix)
        assert deepconv(["export", "--ckpt", str(ckpt), "--format", fmt, "--out", str(paths[fmt])]) == 0
    return paths


@pytest.fixture(scope="module")
def reference(ckpt, photos):
    return predict([str(photos)], str(ckpt), scales="32,48")


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("fmt", ["safetensors", "onnx", "torchscript"])
def test_round_trip_through_an_export_gives_the_same_top5(reference, photos, exports, fmt):
    again = predict([str(photos)], str(exports[fmt]), scales="32,48")
    tolerance = 1e-6 if fmt == "safetensors" else 1e-4  # same PyTorch weights vs another runtime's kernels
    assert again.keys() == reference.keys()
    for name, top in reference.items():
        assert [e["class"] for e in again[name]] == [e["class"] for e in top]
        assert np.allclose([e["probability"] for e in again[name]], [e["probability"] for e in top], atol=tolerance)


@pytest.mark.parametrize("flip", [True, False])
def test_prediction_is_dense_evaluation_averaged_over_scales(ckpt, photos, flip):
    model, _ = load_model(ckpt)
    img = Image.open(photos / "palette.png").convert("RGB")
    by_hand = sum(
        dense_posteriors(model, to_uint8_tensor(rescale_shorter(img, q)).unsqueeze(0), flip=flip)[0]
        for q in (32, 57, 96)
    ) / 3
    top = predict([str(photos / "palette.png")], str(ckpt), topk=10, scales="32,57,96", flip=flip)
    got = next(iter(top.values()))
    assert [e["index"] for e in got] == by_hand.argsort(descending=True).tolist()
    assert np.allclose([e["probability"] for e in got], by_hand.sort(descending=True).values.numpy(), atol=1e-6)


def test_default_scales_never_go_below_the_crop():
    meta = ModelMeta(arch="A", num_classes=2, classes=["a", "b"], crop_size=32, s_min=36, s_max=36)
    # the paper's {S-32, S, S+32} at 224 crops; the offset scales with the crop (5 at 32) and stops at the crop
    assert resolve_scales(meta, None) == [32, 36, 41]
    jittered = ModelMeta(arch="A", num_classes=2, classes=["a", "b"], s_min=256, s_max=512)
    assert resolve_scales(jittered, None) == [256, 384, 512]


def test_unreadable_image_is_named_exit_1_and_the_others_still_answered(ckpt, photos, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes((photos / "grey.jpg").read_bytes()[:120])
    out = tmp_path / "preds.json"
    code = deepconv(["predict", "--ckpt", str(ckpt), str(photos / "tiny.png"), str(bad), "--json", str(out)])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "Traceback" not in err
    assert list(json.loads(out.read_text())) == [str(photos / "tiny.png")]


@pytest.mark.parametrize(
    "args",
    [["nowhere.jpg"], ["IMG", "--scales", "16,64"], ["IMG", "--scales", "big"], ["IMG", "--topk", "0"], ["EMPTY"]],
)
def test_usage_mistakes_exit_2_with_one_line(ckpt, photos, tmp_path, capsys, args):
    (tmp_path / "empty").mkdir()
    args = [{"IMG": str(photos / "tiny.png"), "EMPTY": str(tmp_path / "empty")}.get(a, a) for a in args]
    assert deepconv(["predict", "--ckpt", str(ckpt), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("deepconv predict: error: ")
