"""`deepconv features` and `deepconv similar`: descriptor properties (unit norm, flip invariance, average vs stack,
dense = crop path at Q = crop), resuming an interrupted run without recomputing chunks, retrieval, bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.features import store as store_module
from deepconv_cli.features.descriptors import model_descriptors, pooled_descriptors
from deepconv_cli.features.extract import extract_features
from deepconv_cli.features.retrieval import query_descriptor
from deepconv_cli.features.store import read_features
from deepconv_cli.models.checkpoint import ModelMeta, load_model, save_model_checkpoint
from deepconv_cli.models.registry import build, registry

CLASSES = [str(i) for i in range(10)]


def noise(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_descriptor_norm_flip_invariance_and_aggregate_dims(net_ckpt):
    model, _ = load_model(net_ckpt)
    img = noise(40, 52)
    mirrored = torch.flip(img, dims=[2])
    scales = [32, 40, 48]

    def views(x):
        resized = {q: F.interpolate(x[None].float(), scale_factor=q / 40, mode="bilinear")[0].round().byte()
                   for q in scales}
        return [resized]

    avg = model_descriptors(model, views(img), scales, "average")
    stack = model_descriptors(model, views(img), scales, "stack")
    d = model.classifier.fc2.out_channels  # 512 at width 1/8 (4096 at full width)
    assert avg.shape == (1, d) and stack.shape == (1, d * len(scales))
    assert torch.linalg.norm(avg, dim=1).item() == pytest.approx(1.0, abs=1e-5)
    assert torch.linalg.norm(stack, dim=1).item() == pytest.approx(1.0, abs=1e-5)
    # flip-averaged: the mirrored image has the same descriptor; without the flip average it does not
    x, xm = img[None], mirrored[None]

    def unit(x, flip):
        return F.normalize(pooled_descriptors(model, x, flip=flip))

    assert torch.allclose(unit(x, True), unit(xm, True), atol=1e-5)
    assert (unit(x, False) - unit(xm, False)).abs().max() > 1e-2


def test_bf16_descriptors_run_under_autocast_and_stay_close_to_fp32(net_ckpt):
    """`features --precision bf16`: the forward passes run in bfloat16 (the descriptor differs from fp32's) and the
    descriptor stays within 1% of fp32's direction; returned in float32 either way."""
    model, _ = load_model(net_ckpt)
    x = torch.stack([noise(40, 52, seed) for seed in range(4)])
    fp32, bf16 = pooled_descriptors(model, x), pooled_descriptors(model, x, bf16=True)
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)
    assert F.cosine_similarity(fp32, bf16).min() > 0.99


def test_dense_descriptor_at_crop_size_equals_crop_path_fc2(net_ckpt):
    model, _ = load_model(net_ckpt)
    x = noise(32, 32, seed=1)[None].float()
    head = model.classifier
    flat = model.features(model.normalize(x)).flatten(1)  # the crop path: FC layers as matrix products
    fc2 = F.relu(F.linear(F.relu(F.linear(flat, head.fc1.weight.flatten(1), head.fc1.bias)),
                          head.fc2.weight.flatten(1), head.fc2.bias))
    dense = pooled_descriptors(model, x, flip=False)
    assert fc2.abs().sum() > 0
    assert torch.allclose(dense, fc2, atol=1e-4, rtol=1e-4)


def test_interrupted_run_resumes_without_recomputing(net_ckpt, digits_dir, tmp_path, monkeypatch):
    data, out = digits_dir / "val", tmp_path / "f.safetensors"

    class Stop(Exception):
        pass

    def stop_after_two(k, path):
        if k == 1:
            raise Stop

    with pytest.raises(Stop):
        extract_features(data, out, [str(net_ckpt)], chunk_size=64, progress=False, on_chunk=stop_after_two)
    parts = out.with_name(out.name + ".parts")
    done = sorted(parts.glob("chunk-*.safetensors"))
    assert [p.name for p in done] == ["chunk-00000.safetensors", "chunk-00001.safetensors"] and not out.exists()
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done}
    written = []

    def check(k, path):
        written.append(k)
        assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == stamps  # finished chunks untouched

    feats, computed = extract_features(data, out, [str(net_ckpt)], chunk_size=64, progress=False, on_chunk=check)
    assert written == [2, 3, 4, 5] and computed == 4  # 359 images: 6 chunks of 64, two already done
    assert not parts.exists() and len(feats.paths) == 359
    fresh, _ = extract_features(data, tmp_path / "fresh.safetensors", [str(net_ckpt)], chunk_size=500, progress=False)
    assert torch.allclose(read_features(out).descriptors, fresh.descriptors, atol=1e-6)
    assert read_features(out).paths == fresh.paths


@pytest.mark.slow
def test_kill_9_then_rerun_skips_finished_chunks(net_ckpt, digits_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "f.safetensors"
    parts = out.with_name(out.name + ".parts")
    args = ["features", "--ckpt", str(net_ckpt), "--data", str(digits_dir / "train"), "--out", str(out),
            "--scales", "64,96", "--chunk-size", "16", "--num-workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "deepconv_cli", *args], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("chunk-*.safetensors"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in parts.glob("chunk-*.safetensors")}
    assert 3 <= len(finished) < 90 and not out.exists()  # 1,438 images: 90 chunks of 16
    rewritten = []
    original_write = store_module.ChunkStore.write

    def spy(self, k, indices, descriptors):
        rewritten.append(self.path(k).name)
        return original_write(self, k, indices, descriptors)

    monkeypatch.setattr(store_module.ChunkStore, "write", spy)
    assert deepconv(args) == 0
    assert not finished & set(rewritten) and len(finished) + len(rewritten) == 90
    assert f"resumed: {len(finished)} of 90 chunks were already written" in capsys.readouterr().out
    assert read_features(out).descriptors.shape[0] == 1438


def test_similar_ranks_by_descriptor_and_writes_a_contact_sheet(net_ckpt, digits_dir, tmp_path, capsys):
    feats_file, sheet = tmp_path / "f.safetensors", tmp_path / "sheet.png"
    assert deepconv(["features", "--ckpt", str(net_ckpt), "--data", str(digits_dir / "val"), "--out",
                     str(feats_file), "--num-workers", "0"]) == 0
    feats = read_features(feats_file)
    # the query's descriptor is made exactly as the file's: an image of the file finds its own descriptor
    query = digits_dir / "val" / feats.paths[7]
    own = query_descriptor(feats, Image.open(query).convert("RGB"))
    assert torch.allclose(own, feats.descriptors[7], atol=1e-5)
    assert deepconv(["similar", "--features", str(feats_file), "--query", str(query), "-k", "4", "--sheet",
                     str(sheet)]) == 0
    listed = [line.split("│")[2].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert feats.paths[7] not in listed  # the query itself is left out
    nearest = torch.cdist(own[None], feats.descriptors)[0].argsort()[1:5].tolist()
    assert listed == [feats.paths[i] for i in nearest]
    with Image.open(sheet) as img:
        assert img.size == (5 * (128 + 4), 128 + 16)


@pytest.mark.parametrize("arch", list(registry()))
def test_every_registered_architecture_gives_descriptors(arch, tmp_path):
    """The layer before the classifier of any network (FC2, or the pooled map of nets without FC layers)."""
    torch.manual_seed(0)
    width = 1.0 if arch == "lenet5" else 0.125  # LeNet-5's connection table fixes its width
    model = build(arch, num_classes=2, width=width, init="glorot").eval()
    crop = model.crop_size
    meta = ModelMeta(arch=arch, num_classes=2, classes=["a", "b"], width=width, crop_size=crop, dropout=None,
                     s_min=crop, s_max=crop)
    save_model_checkpoint(tmp_path / "m.ckpt", model, meta)
    for c in "ab":
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(noise(crop // 2, crop // 2 + 3, seed=i + ord(c)).permute(1, 2, 0).numpy()).save(
                tmp_path / "data" / c / f"{i}.png")
    with torch.no_grad():
        d = model.descriptor_map(torch.zeros(1, 3, crop, crop)).shape[1]
    feats, _ = extract_features(tmp_path / "data", tmp_path / "f.safetensors", [str(tmp_path / "m.ckpt")],
                                [crop, crop + 16], "stack", progress=False)
    assert feats.descriptors.shape == (4, 2 * d) and feats.labels.tolist() == [0, 0, 1, 1]
    assert torch.allclose(feats.descriptors.norm(dim=1), torch.ones(4), atol=1e-5)


def bad(capsys, *argv) -> tuple[int, str]:
    code = deepconv(list(argv))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return code, err


def test_bad_input_is_one_line(net_ckpt, digits_dir, tmp_path, capsys):
    out = str(tmp_path / "f.safetensors")
    assert bad(capsys, "features", "--ckpt", str(net_ckpt), "--data", str(tmp_path / "nope"), "--out", out)[0] == 2
    assert bad(capsys, "features", "--ckpt", str(net_ckpt), "--raw-pixels", "8", "--data", str(digits_dir / "val"),
               "--out", out)[0] == 2
    assert bad(capsys, "features", "--raw-pixels", "8", "--data", str(digits_dir), "--out", out,
               "--aggregate", "median")[0] == 2
    broken = tmp_path / "broken" / "x"
    broken.mkdir(parents=True)
    (broken / "a.png").write_bytes(b"not a png")
    code, err = bad(capsys, "features", "--raw-pixels", "8", "--data", str(broken.parent), "--out", out)
    assert code == 1 and "a.png" in err and not os.path.exists(out)
    not_features = tmp_path / "x.safetensors"
    not_features.write_bytes(b"\x00" * 20)
    assert bad(capsys, "linear-svm", "--features", str(not_features), "--splits", "2")[0] == 1
    assert bad(capsys, "linear-svm", "--train", str(not_features))[0] == 2
    assert bad(capsys, "similar", "--features", str(not_features), "--query", str(tmp_path / "q.png"))[0] == 1
    assert deepconv(["features", "--raw-pixels", "8", "--data", str(digits_dir / "val"), "--out", out]) == 0
    capsys.readouterr()
    assert bad(capsys, "similar", "--features", out, "--query", str(tmp_path / "missing.png"))[0] == 2
    assert bad(capsys, "linear-svm", "--features", out, "--splits", "2", "--per-class", "100")[0] == 2
    labels = tmp_path / "labels.csv"
    labels.write_text("image,labels\nsomething.png,1 2\n")
    assert bad(capsys, "linear-svm", "--train", out, "--test", out, "--labels", str(labels))[0] == 2
    # a chunk folder left by a run with other settings is refused, not mixed in
    parts = tmp_path / "g.safetensors.parts"
    parts.mkdir()
    (parts / "settings.json").write_text("{}")
    (parts / "chunk-00000.safetensors").write_bytes(b"")
    assert bad(capsys, "features", "--raw-pixels", "8", "--data", str(digits_dir / "val"), "--out",
               str(tmp_path / "g.safetensors"))[0] == 2
    assert np.isfinite(read_features(out).descriptors.numpy()).all()
