"""Exports: ONNX, torch.export (.pt2), TorchScript and safetensors give PyTorch's dense scores, carry the metadata,
and verify themselves."""

import copy
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import deepconv_cli.cli.export as export_cli
from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.export.torchscript_io import write_torchscript
from deepconv_cli.models.checkpoint import ModelMeta, load_model, save_model_checkpoint
from deepconv_cli.models.init import init_weights

SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt", "safetensors": ".safetensors"}
TOL = 1e-4  # max |exported - PyTorch| <= TOL * max(1, max |score|), as export's own check


def narrow_checkpoint(path, crop=224):
    """A narrow VGG-A (width 1/8) with Glorot weights and a mean-RGB input normalisation, saved as a .ckpt."""
    meta = ModelMeta(
        arch="A", num_classes=10, classes=[f"class{i}" for i in range(10)], width=0.125, crop_size=crop,
        mean=[123.7, 116.3, 103.5], s_min=crop + 32, s_max=crop + 32,
    )
    torch.manual_seed(0)
    model = meta.build()
    init_weights(model, "glorot", 0.01)
    save_model_checkpoint(path, model, meta)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return narrow_checkpoint(tmp_path_factory.mktemp("export") / "narrow.ckpt")


@pytest.fixture(scope="module")
def exported(ckpt):
    """The checkpoint exported once to each format (the export command checks itself before writing)."""
    paths = {}
    for fmt, suffix in SUFFIXES.items():
        paths[fmt] = ckpt.with_suffix(suffix)
        assert deepconv(["export", "--ckpt", str(ckpt), "--format", fmt, "--out", str(paths[fmt])]) == 0
    return paths


def close(got, ref):
    return (got - ref).abs().max().item() <= TOL * max(1.0, ref.abs().max().item())


def images(*shape):
    return torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 255


def test_onnx_equals_pytorch_dense_at_crop_and_non_square_size(ckpt, exported):
    out = exported["onnx"]
    model, meta = load_model(ckpt)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # dynamic N, H, W
    for x in (images(1, 3, 224, 224), images(3, 3, 256, 331)):
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            ref = model(x)  # VGG.forward: FC path on the crop, dense (conv) path on the larger image
        assert got.shape == ref.shape and close(got, ref)
        assert ref.std() > 0.1  # the scores are not all alike, so equality means something
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["deepconv"]) == meta.to_dict()
    assert props["input"].startswith("RGB 0..255 float, NCHW, any H, W >= 224")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_fresh_load_equals_pytorch_and_carries_metadata(ckpt, exported):
    out = exported["torchscript"]
    model, meta = load_model(ckpt)
    extra = {"deepconv": "", "input": "", "fixed_size": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["deepconv"]) == meta.to_dict() and extra["fixed_size"] in ("false", b"false")
    with torch.no_grad():
        for x in (images(1, 3, 224, 224), images(2, 3, 300, 250)):
            assert close(loaded(x), model(x))


def test_pt2_is_an_exported_program_with_dynamic_size_equal_to_pytorch(ckpt, exported, tmp_path, capsys):
    """torch.export.load alone runs the .pt2: at the crop (a 1 x 1 score map, which torch.export treats apart) and
    at larger non-square sizes and batches; it carries the metadata, and predict reads it like a checkpoint."""
    model, meta = load_model(ckpt)
    extra = {"deepconv": "", "fixed_size": ""}
    program = torch.export.load(str(exported["pt2"]), extra_files=extra)
    assert isinstance(program, torch.export.ExportedProgram)
    assert json.loads(extra["deepconv"]) == meta.to_dict() and extra["fixed_size"] == "false"
    with torch.no_grad():
        for x in (images(1, 3, 224, 224), images(3, 3, 256, 331), images(1, 3, 225, 224)):
            ref = model(x)
            assert close(program.module()(x), ref) and ref.std() > 0.1
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 260, 3), np.uint8)).save(image)
    for path in (ckpt, exported["pt2"]):
        out = tmp_path / f"{path.suffix}.json"
        assert deepconv(["predict", "--ckpt", str(path), str(image), "--json", str(out)]) == 0
    assert json.loads((tmp_path / ".pt2.json").read_text()) == json.loads((tmp_path / ".ckpt.json").read_text())


def test_fixed_size_onnx_takes_only_crops_and_matches(ckpt, tmp_path):
    out = tmp_path / "fixed.onnx"
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "onnx", "--fixed-size", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 224, 224]
    model, _ = load_model(ckpt)
    x = images(2, 3, 224, 224)
    got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    with torch.no_grad():
        assert close(got, model(x))


def test_safetensors_holds_exact_weights_and_metadata(ckpt, exported):
    out = exported["safetensors"]
    model, meta = load_model(ckpt)
    with safe_open(str(out), framework="pt") as f:
        assert json.loads(f.metadata()["deepconv"]) == meta.to_dict()
        stored = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    assert stored.keys() == model.state_dict().keys()
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_failed_verification_exits_1_and_leaves_old_file_untouched(ckpt, tmp_path, capsys, monkeypatch):
    def wrong_writer(model, meta, path, fixed_size):
        broken = copy.deepcopy(model)
        broken.classifier.fc3.bias.data += 1.0  # an export bug: every score off by 1
        write_torchscript(broken, meta, path, fixed_size)

    monkeypatch.setitem(export_cli.WRITERS, "torchscript", wrong_writer)
    out = tmp_path / "vgg.pt"
    out.write_bytes(b"an older export")
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "torchscript", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs from PyTorch" in err and "Traceback" not in err
    assert out.read_bytes() == b"an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg.pt"]  # no temporary file left behind


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript", "safetensors", "ckpt"])
def test_truncated_or_garbage_artefact_is_one_line_error_exit_1(ckpt, exported, tmp_path, capsys, fmt):
    good = ckpt if fmt == "ckpt" else exported[fmt]
    suffix = good.suffix
    image = tmp_path / "img.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(image)
    data = good.read_bytes()
    for name, content in (("truncated", data[: len(data) // 2]), ("garbage", b"not a model at all" * 100)):
        bad = tmp_path / f"{name}{suffix}"
        bad.write_bytes(content)
        capsys.readouterr()
        assert deepconv(["predict", "--ckpt", str(bad), str(image)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith("deepconv predict: error: ") and str(bad) in err


def test_export_usage_errors_exit_2(ckpt, tmp_path, capsys):
    assert deepconv(["export", "--ckpt", str(tmp_path / "missing.ckpt"), "--format", "onnx"]) == 2
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "safetensors", "--fixed-size"]) == 2
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "pdf"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("deepconv export: error: ") for e in errors)
