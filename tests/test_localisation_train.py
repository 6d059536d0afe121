"""End to end on the digit-boxes set: a PCR localiser fine-tuned from the quickstart classifier localises far
better than the whole-image box, both protocols run from the command line, and each image counts once."""

import json
from pathlib import Path

import pytest
from filelock import FileLock

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.errors import DeepconvError
from deepconv_cli.localisation.digit_boxes import write_digit_boxes
from deepconv_cli.localisation.protocols import counted_once

REPO = Path(__file__).resolve().parents[1]
PCR = REPO / "recipes" / "quickstart_localise" / "pcr.yaml"


@pytest.fixture(scope="module")
def boxes_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digit_boxes") / "data"
    write_digit_boxes(root, limit=500)  # 400 train, 100 val canvases of 48 x 48
    return root


def fit_args(boxes_dir: Path, trained_ckpt: Path, run: Path) -> list[str]:
    return ["localise", "fit", "-c", str(PCR), "--init-from", str(trained_ckpt), f"--data.data_dir={boxes_dir}",
            f"--trainer.default_root_dir={run}", "--trainer.max_epochs=8", "--data.s_min=48", "--data.s_max=48",
            "--data.num_workers=0", "--trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def localiser(boxes_dir, trained_ckpt, tmp_path_factory) -> Path:
    """A PCR localiser (all layers) from the quickstart VGG-A, 8 epochs at S = 48 (about 30 s of CPU)."""
    run = tmp_path_factory.mktemp("pcr")
    assert deepconv(fit_args(boxes_dir, trained_ckpt, run)) == 0
    return run / "best.ckpt"


@pytest.mark.slow
def test_a_finished_localiser_run_is_left_as_it_is(localiser, boxes_dir, trained_ckpt, capsys):
    """`localise fit` has train's lifecycle: the same command again finds the run finished and touches nothing."""
    run = localiser.parent
    before = {p.name: p.stat().st_mtime_ns for p in run.glob("*.ckpt")}
    capsys.readouterr()
    assert deepconv(fit_args(boxes_dir, trained_ckpt, run)) == 0
    assert f"{run} already finished" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.ckpt")} == before
    with FileLock(run / ".lock", timeout=0):  # released: a next run may take it
        pass


@pytest.mark.slow
def test_pcr_beats_whole_image_baseline(localiser, boxes_dir, tmp_path):
    out = tmp_path / "centre.json"
    assert deepconv(["localise", "evaluate", "--ckpt", str(localiser), "--data", str(boxes_dir), "--protocol",
                     "centre-gt", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["images"] == 100 and row["regression"] == "pcr"
    assert row["baseline_error"] >= 90  # a digit covers at most 44 % of its canvas: the whole image never fits
    assert row["loc_error"] <= row["baseline_error"] - 30, row


@pytest.mark.slow
def test_dense_top5_counts_each_image_once(localiser, boxes_dir, trained_ckpt, tmp_path, capsys):
    out = tmp_path / "dense.json"
    code = deepconv(["localise", "evaluate", "--ckpt", str(localiser), "--ckpt", str(localiser), "--classifier",
                     str(trained_ckpt), "--data", str(boxes_dir / "val"), "--protocol", "dense-top5",
                     "--scales", "48,64", "--limit", "40", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["localiser"] for r in rows][-1] == "fusion" and all(r["images"] == 40 for r in rows)
    assert rows[0]["loc_error"] == rows[-1]["loc_error"]  # the same net twice: the union merges to the same boxes
    assert "40 images, each counted exactly once" in capsys.readouterr().out


@pytest.mark.slow
def test_dense_top5_ranks_by_a_fused_classification_system(localiser, boxes_dir, trained_ckpt, tmp_path):
    def run(name, *extra):
        out = tmp_path / f"{name}.json"
        assert deepconv(["localise", "evaluate", "--ckpt", str(localiser), "--data", str(boxes_dir / "val"),
                         "--protocol", "dense-top5", "--limit", "20", "--json", str(out), *extra]) == 0
        return json.loads(out.read_text())["results"][0]

    single = run("single", "--classifier", str(trained_ckpt))
    twice = run("twice", "--classifier", str(trained_ckpt), "--classifier", str(trained_ckpt))
    # the same net twice through the fused path ranks exactly as the one net does
    assert (twice["loc_error"], twice["classification_error"]) == (single["loc_error"], single["classification_error"])
    assert twice["classifiers"] == ["A", "A"] and twice["arch"] == "A"
    both = run("both", "--classifier", str(trained_ckpt), "--classifier_method", "dense+multi-crop")
    assert both["classifier_method"] == "dense+multi-crop" and both["images"] == 20


def test_counted_once_refuses_repeats():
    from deepconv_cli.data.annotations import Annotated

    items = [Annotated(p, 0, None, (1, 1)) for p in ("a", "b")]
    assert counted_once(["a", "b"], items) == 2
    for seen in (["a", "a", "b"], ["a"]):
        with pytest.raises(DeepconvError, match="counted twice or not at all"):
            counted_once(seen, items)


@pytest.mark.slow
def test_predict_draws_boxes(localiser, boxes_dir, trained_ckpt, tmp_path, capsys):
    image = next((boxes_dir / "val" / "4").glob("*.png"))
    assert deepconv(["localise", "predict", str(image), "--ckpt", str(localiser), "--classifier", str(trained_ckpt),
                     "--topk", "2", "--out", str(tmp_path / "drawn"), "--json", str(tmp_path / "p.json")]) == 0
    preds = json.loads((tmp_path / "p.json").read_text())[str(image)]
    assert len(preds) == 2 and all(0 <= v <= 48 for p in preds for v in p["box"])
    assert (tmp_path / "drawn" / f"{image.stem}.boxes.png").is_file()


def test_fit_and_evaluate_refuse_bad_input(boxes_dir, trained_ckpt, tmp_path, capsys):
    assert deepconv(["localise", "fit", "-c", str(PCR)]) == 2
    assert "--init_from" in capsys.readouterr().err
    assert deepconv(["localise", "evaluate", "--ckpt", str(trained_ckpt), "--data", str(boxes_dir)]) == 1
    assert "classifier checkpoint, not a localiser" in capsys.readouterr().err


@pytest.fixture(scope="module")
def boxes_pack(boxes_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("boxes_pack") / "packed"
    assert deepconv(["data", "pack", str(boxes_dir), str(out), "--workers", "1"]) == 0  # boxes/ found by itself
    return out


@pytest.mark.slow
def test_a_pack_with_boxes_gives_the_folders_crops_targets_and_scores(localiser, boxes_dir, boxes_pack, tmp_path):
    """`data pack` of a tree with boxes/: localise fit reads the same items, crops and box targets from the pack
    (same seed, same draw) and the same statistics; localise evaluate prints the folder's numbers."""
    import random

    import torch

    from deepconv_cli.localisation.data import LocaliseData

    folder, pack = (LocaliseData(str(d), s_min=48, s_max=64, crop_size=32, num_workers=0)
                    for d in (boxes_dir, boxes_pack))
    folder.setup("fit"), pack.setup("fit")
    assert pack.classes == folder.classes and pack.stats["mean"] == pytest.approx(folder.stats["mean"], rel=1e-9)
    for split in ("train_set", "val_set"):
        named = enumerate(getattr(folder, split).items)
        by_name = {str(Path(item.path).relative_to(boxes_dir)): i for i, item in named}
        items = getattr(pack, split).items
        assert sorted(item.path for item in items) == sorted(by_name)
        for j in (0, 7, len(items) - 1):
            got = []
            for data, i in ((getattr(pack, split), j), (getattr(folder, split), by_name[items[j].path])):
                random.seed(j), torch.manual_seed(j)
                got.append(data[i])
            assert torch.equal(got[0][0], got[1][0]) and torch.equal(got[0][1], got[1][1]) and got[0][2] == got[1][2]
    rows = []
    for data in (boxes_dir, boxes_pack):
        out = tmp_path / f"{Path(data).name}.json"
        assert deepconv(["localise", "evaluate", "--ckpt", str(localiser), "--data", str(data), "--protocol",
                         "centre-gt", "--json", str(out)]) == 0
        rows.append(json.loads(out.read_text())["results"][0])
    assert rows[0]["images"] == 100 and rows[0]["loc_error"] == rows[1]["loc_error"]
    assert rows[0]["baseline_error"] == rows[1]["baseline_error"]


@pytest.mark.slow
def test_packed_boxes_follow_a_max_side_reencode_and_bad_input_is_one_line(boxes_dir, boxes_pack, trained_ckpt,
                                                                           tmp_path, capsys):
    from deepconv_cli.data.packed import PackedSplit, read_meta

    small = tmp_path / "small"
    assert deepconv(["data", "pack", str(boxes_dir), str(small), "--workers", "1", "--max_side", "32"]) == 0
    full, capped = read_meta(boxes_pack), read_meta(small)
    assert full["splits"]["val"]["names"] == capped["splits"]["val"]["names"]
    split = PackedSplit(small, "val", capped)
    for key in ("0", "5"):
        before, after = full["splits"]["val"]["boxes"][key], capped["splits"]["val"]["boxes"][key]
        assert before["size"] == [48, 48] and after["size"] == [32, 32]
        assert sum(after["boxes"], []) == pytest.approx([v * 32 / 48 for box in before["boxes"] for v in box])
        with split.open_lazily(int(key)) as img:
            assert list(img.size) == after["size"]
    capsys.readouterr()
    assert deepconv(["data", "pack", str(boxes_dir), str(tmp_path / "x"), "--boxes", str(tmp_path / "none")]) == 2
    assert "box annotations not found" in capsys.readouterr().err and not (tmp_path / "x").exists()
    (tmp_path / "no_boxes").mkdir()
    plain = tmp_path / "plain"
    assert deepconv(["data", "pack", str(boxes_dir), str(plain), "--boxes", str(tmp_path / "no_boxes")]) == 0
    from deepconv_cli.localisation.data import LocaliseData

    with pytest.raises(DeepconvError, match="holds no train boxes"):
        LocaliseData(str(plain), s_min=48, s_max=48, crop_size=32).setup("fit")
    capsys.readouterr()
    assert deepconv(["localise", "fit", "-c", str(PCR), "--init-from", str(trained_ckpt),
                     f"--data.data_dir={boxes_pack}", f"--data.boxes={boxes_dir / 'boxes'}",
                     f"--trainer.default_root_dir={tmp_path / 'r'}"]) == 2
    assert "its boxes were packed with it" in capsys.readouterr().err
