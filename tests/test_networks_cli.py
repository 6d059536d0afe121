"""The classic networks from the command line: train -> fine-tune (new classes) -> evaluate (every method) -> ONNX
-> predict for AlexNet (both variants), ZFNet, LeNet-5, NiN and GoogLeNet, on a tiny digits tree; kill -9 resume,
a corrupt checkpoint, and AlexNet's centre-square 10-crop."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers import write_tree
from lightning.pytorch.callbacks import Callback
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.images import open_rgb
from deepconv_cli.evaluation import runner
from deepconv_cli.evaluation.crops import crop_views
from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.models.checkpoint import load_model

# name -> (width, crop, S): the smallest crop each network accepts (or close to it), S a few pixels above it
NETS = {
    "alexnet": (0.125, 67, 76),
    "alexnet-1tower": (0.125, 67, 76),
    "zfnet": (0.125, 64, 72),
    "lenet5": (1.0, 32, 36),
    "nin-cifar": (0.25, 12, 14),
    "googlenet": (0.125, 32, 36),
}
STEPS = 3  # training batches per epoch (--trainer.limit_train_batches)
METHODS = ("center", "10-crop", "dense+multi-crop")  # the last gives the dense, multi-crop and fused rows
ONNX_TOL = 1e-4  # max |ONNX - PyTorch| <= ONNX_TOL * max(1, max |score|), as export's own check


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """Two tiny trees: 3 classes (to train on) and 4 other classes (to fine-tune onto)."""
    base = tmp_path_factory.mktemp("tiny_digits")
    return {"three": write_tree(base / "three", [0, 1, 2]), "four": write_tree(base / "four", [3, 4, 5, 6])}


def train_args(net: str, data: Path, run_dir: Path, epochs: int = 1) -> list[str]:
    width, crop, s = NETS[net]
    return [f"--model.arch={net}", f"--model.width={width}", "--model.init=glorot", f"--data.data_dir={data}",
            f"--data.crop_size={crop}", f"--data.s_min={s}", f"--data.s_max={s}", "--data.batch_size=8",
            "--data.num_workers=0", f"--trainer.default_root_dir={run_dir}", f"--trainer.max_epochs={epochs}",
            f"--trainer.limit_train_batches={STEPS}", "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu"]


@pytest.fixture(scope="module")
def trained(trees, tmp_path_factory):
    """best.ckpt of each network trained STEPS steps on the 3-class tree, trained once per module (AlexNet on
    the central square of each image, as its paper)."""
    done: dict[str, Path] = {}

    def get(net: str) -> Path:
        if net not in done:
            run_dir = tmp_path_factory.mktemp(f"train_{net}")
            extra = ["--data.center_square=true"] if net == "alexnet" else []
            assert deepconv(["train", *train_args(net, trees["three"], run_dir), *extra]) == 0
            done[net] = run_dir / "best.ckpt"
        return done[net]

    return get


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def check_onnx_equals_pytorch(onnx_path: Path, ckpt: Path) -> None:
    model, meta = load_model(ckpt)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    g = torch.Generator().manual_seed(0)
    for shape in ((2, 3, meta.crop_size, meta.crop_size), (1, 3, meta.crop_size + 9, meta.crop_size + 23)):
        x = torch.rand(shape, generator=g) * 255
        got = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        with torch.no_grad():
            ref = model(x)
        assert got.shape == ref.shape == (shape[0], meta.num_classes)
        assert (got - ref).abs().max().item() <= ONNX_TOL * max(1.0, ref.abs().max().item()), shape


@pytest.mark.slow
@pytest.mark.parametrize("net", [n for n in NETS if n != "alexnet-1tower"])
def test_train_fine_tune_evaluate_export_predict(net, trees, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the copy table's rows on one line each, whatever the terminal
    _, crop, s = NETS[net]
    ckpt = trained(net)
    model, meta = load_model(ckpt)
    assert (meta.arch, meta.classes, meta.crop_size, model.num_classes) == (net, ["0", "1", "2"], crop, 3)
    capsys.readouterr()

    # fine-tune onto 4 other classes: every layer copied but the class-score layer, which starts fresh
    ft_dir = tmp_path / "ft"
    assert deepconv(["fine-tune", "--init-from", str(ckpt), *train_args(net, trees["four"], ft_dir)]) == 0
    table = capsys.readouterr().out
    last_name = model.last_layer()[0]
    rows = [line for line in table.splitlines() if line.startswith("│")]
    last_rows = [line for line in rows if line.split("│")[1].strip() == last_name]
    assert len(last_rows) == 1 and "random" in last_rows[0] and "copied" not in last_rows[0], table
    copied = [line for line in rows if "copied" in line]
    assert len(copied) == len(model.weight_layers()) - 1, table
    ft_ckpt = ft_dir / "best.ckpt"
    ft_model, ft_meta = load_model(ft_ckpt)
    assert ft_meta.classes == ["3", "4", "5", "6"] and ft_model.num_classes == 4 and ft_meta.arch == net

    # evaluate with every method: each of the 32 val images counted once, a JSON row per method
    found = {}
    for method in METHODS:
        out = tmp_path / f"{method}.json"
        assert deepconv(["evaluate", "--ckpt", str(ft_ckpt), "--data", str(trees["four"]), "--method", method,
                         "--scales", str(s), "--batch-size", "64", "--num-workers", "0", "--json", str(out)]) == 0
        assert "32 images, each counted exactly once" in capsys.readouterr().out
        found |= {r["method"]: r for r in json.loads(out.read_text())}
    assert sorted(found) == sorted(["center", "10-crop", "dense", "multi-crop", "dense+multi-crop"])
    for r in found.values():
        assert r["images"] == 32 and r["arch"] == net and r["test_q"] == str(s)
        assert 0.0 <= r["top5_error"] <= r["top1_error"] <= 100.0

    # ONNX: export verifies itself; the file's scores equal PyTorch's; predict through it agrees with the .ckpt
    onnx_path = tmp_path / f"{net}.onnx"
    assert deepconv(["export", "--ckpt", str(ft_ckpt), "--format", "onnx", "--out", str(onnx_path)]) == 0
    assert "verified against PyTorch" in capsys.readouterr().out
    check_onnx_equals_pytorch(onnx_path, ft_ckpt)
    val = trees["four"] / "val"
    answers = {}
    for model_file in (ft_ckpt, onnx_path):
        out = tmp_path / f"predict_{model_file.suffix[1:]}.json"
        assert deepconv(["predict", "--ckpt", str(model_file), str(val), "--topk", "4", "--scales", str(s),
                         "--json", str(out)]) == 0
        answers[model_file.suffix] = json.loads(out.read_text())
    by_ckpt, by_onnx = answers[".ckpt"], answers[".onnx"]
    assert len(by_ckpt) == 32 and by_ckpt.keys() == by_onnx.keys()
    for image, top in by_ckpt.items():
        assert top[0]["class"] == by_onnx[image][0]["class"], image
        ckpt_p = {e["class"]: e["probability"] for e in top}
        onnx_p = {e["class"]: e["probability"] for e in by_onnx[image]}
        assert ckpt_p.keys() == onnx_p.keys() == {"3", "4", "5", "6"}
        assert all(abs(ckpt_p[c] - onnx_p[c]) < 1e-4 for c in ckpt_p), image


def test_alexnet_one_tower_trains_and_exports_to_onnx(trained, tmp_path, capsys):
    ckpt = trained("alexnet-1tower")
    model, meta = load_model(ckpt)
    assert meta.arch == "alexnet-1tower" and all(m.groups == 1 for m in model.modules() if hasattr(m, "groups"))
    onnx_path = tmp_path / "one_tower.onnx"
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(onnx_path)]) == 0
    assert "verified against PyTorch" in capsys.readouterr().out
    check_onnx_equals_pytorch(onnx_path, ckpt)


class FirstStep(Callback):
    """Records the epoch and global step at which a run's training starts (in this process)."""

    seen: ClassVar[list[tuple[int, int]]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if not FirstStep.seen:
            FirstStep.seen.append((trainer.current_epoch, trainer.global_step))


@pytest.mark.slow
def test_lenet5_killed_with_sigkill_resumes_at_the_next_epoch(trees, tmp_path, capsys):
    epochs, run_dir = 5, tmp_path / "run"
    args = ["train", *train_args("lenet5", trees["three"], run_dir, epochs), "--trainer.limit_val_batches=1"]
    proc = subprocess.Popen([sys.executable, "-m", "deepconv_cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 240
    while not (run_dir / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from deepconv_cli.training.faults import resume_checkpoint

    killed = torch.load(resume_checkpoint(run_dir), map_location="cpu", weights_only=False)
    assert killed["global_step"] < epochs * STEPS

    FirstStep.seen.clear()
    callback = '--trainer.callbacks+={"class_path": "test_networks_cli.FirstStep"}'
    assert deepconv([*args, callback]) == 0  # the same command again
    assert "resuming from" in capsys.readouterr().out
    assert FirstStep.seen == [(killed["epoch"] + 1, killed["global_step"])]  # the next epoch, no step repeated
    done = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert (done["epoch"], done["global_step"]) == (epochs - 1, epochs * STEPS)


def test_a_corrupt_alexnet_checkpoint_is_one_line_exit_1_everywhere(trained, trees, tmp_path, capsys):
    data = trained("alexnet").read_bytes()
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    commands = [
        ["evaluate", "--ckpt", str(broken), "--data", str(trees["three"]), "--num-workers", "0"],
        ["export", "--ckpt", str(broken), "--format", "onnx", "--out", str(tmp_path / "x.onnx")],
        ["predict", "--ckpt", str(broken), str(trees["three"] / "val" / "0")],
        ["fine-tune", "--init-from", str(broken), *train_args("alexnet", trees["four"], tmp_path / "ft")],
    ]
    for argv in commands:
        assert deepconv(argv) == 1, argv[0]
        assert str(broken) in one_line_error(capsys), argv[0]
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "ft" / "last.ckpt").exists()


def test_alexnet_centre_square_is_recorded_and_10_crop_takes_the_central_square(trained, tmp_path, monkeypatch):
    ckpt = trained("alexnet")
    _, meta = load_model(ckpt)
    assert meta.center_square is True
    assert load_model(trained("alexnet-1tower"))[1].center_square is False
    _, crop, s = NETS["alexnet"]

    # one hand-made non-square noise image per class: two wide, one tall
    rng = np.random.default_rng(0)
    files = []
    for c, (w, h) in zip(meta.classes, [(150, 90), (80, 130), (121, 77)]):
        (tmp_path / "val" / c).mkdir(parents=True)
        files.append(tmp_path / "val" / c / "noise.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(files[-1])

    seen: list[torch.Tensor] = []

    def spying_load_model(path):
        model, m = load_model(path)
        model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        return model, m

    monkeypatch.setattr(runner, "load_model", spying_load_model)
    scales = [s, s + 20]
    assert deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(tmp_path / "val"), "--method", "10-crop",
                     "--scales", ",".join(map(str, scales)), "--batch-size", "64", "--num-workers", "0"]) == 0

    def views(square: bool) -> torch.Tensor:
        return torch.cat([crop_views(to_uint8_tensor(rescale_shorter(open_rgb(f), q)), "10-crop", crop, True, square)
                          for q in scales for f in files]).float()

    shown = torch.cat(seen)
    assert shown.shape == (2 * 3 * 10, 3, crop, crop)
    assert torch.equal(shown, views(square=True))
    assert not torch.equal(shown, views(square=False))  # the whole-image corners are other pixels
