"""Appendix B on the digits: a net trained on digits 0-4 describes digits 5-9 it never saw; linear SVMs on those
descriptors vs on raw pixels (mean class recall over random splits), and mean AP on two-digit composite images."""

import json

import numpy as np
import pytest
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.digits import VAL_EVERY, load_digits


def run_svm(tmp_path, *args) -> list[dict]:
    out = tmp_path / "svm.json"
    assert deepconv(["linear-svm", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_unseen_digits_deep_features_vs_raw_pixels(ckpt_0_4, digits_0_4_and_5_9, tmp_path, capsys):
    unseen = digits_0_4_and_5_9[1]
    deep, raw = tmp_path / "deep.safetensors", tmp_path / "raw.safetensors"
    assert deepconv(["features", "--ckpt", str(ckpt_0_4), "--data", str(unseen), "--out", str(deep),
                     "--num-workers", "0"]) == 0
    assert deepconv(["features", "--raw-pixels", "8", "--data", str(unseen), "--out", str(raw)]) == 0
    rows = run_svm(tmp_path, "--features", str(deep), "--features", str(raw), "--splits", "5", "--per-class", "30",
                   "--test-per-class", "50", "--folds", "3")
    table = capsys.readouterr().out
    assert "mean class recall" in table and "raw pixels 8x8" in table and "VGG-A" in table
    by_kind = {("raw" if "raw" in r["descriptor"] else "deep"): r for r in rows}
    for r in rows:
        assert r["metric"] == "mean class recall" and len(r["per_split"]) == 5
        assert (r["train_images"], r["test_images"]) == (150, 250)  # Caltech-101's 30 + at most 50 of each class
        assert r["std"] > 0  # five different random splits
        assert r["mean"] == pytest.approx(np.mean(r["per_split"]), abs=1e-2)
    # chance is 20 %: the net never saw these classes, yet its descriptors separate them
    assert by_kind["deep"]["mean"] > 70, rows
    assert by_kind["raw"]["mean"] > 80, rows
    print({k: (r["mean"], r["std"]) for k, r in by_kind.items()})


def composites(folder, pairs, images) -> list[str]:
    """Two digits side by side (16 x 8 pixels), written as PNGs; CSV rows `name,label label`."""
    folder.mkdir(parents=True)
    rows = []
    for n, (i, j, a, b) in enumerate(pairs):
        name = f"{folder.name}_{n:04d}.png"
        Image.fromarray(np.concatenate([images[i], images[j]], axis=1), mode="L").save(folder / name)
        rows.append(f"{name},{a} {b}")
    return rows


@pytest.mark.slow
def test_multi_label_composites_mean_ap(ckpt_0_4, tmp_path):
    images, labels = load_digits()
    rng = np.random.default_rng(0)
    csv_rows = ["image,labels"]
    for split, count in (("train", 300), ("test", 200)):
        pool = [i for i in range(len(labels)) if (i % VAL_EVERY == VAL_EVERY - 1) == (split == "test")]
        pairs = []
        while len(pairs) < count:
            i, j = rng.choice(pool, 2, replace=False)
            if labels[i] != labels[j]:
                pairs.append((i, j, labels[i], labels[j]))
        csv_rows += composites(tmp_path / split, pairs, images)
    (tmp_path / "labels.csv").write_text("\n".join(csv_rows) + "\n")
    files = {}
    for split in ("train", "test"):
        files["deep", split] = tmp_path / f"deep_{split}.safetensors"
        files["raw", split] = tmp_path / f"raw_{split}.safetensors"
        assert deepconv(["features", "--ckpt", str(ckpt_0_4), "--data", str(tmp_path / split),
                         "--out", str(files["deep", split]), "--num-workers", "0"]) == 0
        assert deepconv(["features", "--raw-pixels", "16", "--data", str(tmp_path / split),
                         "--out", str(files["raw", split])]) == 0
    rows = run_svm(tmp_path, "--train", str(files["deep", "train"]), "--test", str(files["deep", "test"]),
                   "--train", str(files["raw", "train"]), "--test", str(files["raw", "test"]),
                   "--labels", str(tmp_path / "labels.csv"), "--folds", "3")
    assert [r["metric"] for r in rows] == ["mean AP", "mean AP"]
    assert [(r["train_images"], r["test_images"]) for r in rows] == [(300, 200), (300, 200)]
    # chance (a random ranking) gives an AP near the positive rate, 2 labels of 10: about 20 %
    assert all(r["mean"] > 50 for r in rows), rows
    print({r["descriptor"]: r["mean"] for r in rows})
