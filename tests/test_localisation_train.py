"""End to end on the digit-boxes set: a PCR localiser fine-tuned from the quickstart classifier localises far
better than the whole-image box, both protocols run from the command line, and each image counts once."""

import json
from pathlib import Path

import pytest

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


def test_a_finished_localiser_run_is_left_as_it_is(localiser, boxes_dir, trained_ckpt, capsys):
    """`localise fit` has train's lifecycle: the same command again finds the run finished and touches nothing."""
    run = localiser.parent
    before = {p.name: p.stat().st_mtime_ns for p in run.glob("*.ckpt")}
    capsys.readouterr()
    assert deepconv(fit_args(boxes_dir, trained_ckpt, run)) == 0
    assert f"{run} already finished" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.ckpt")} == before and not (run / ".lock").exists()


def test_pcr_beats_whole_image_baseline(localiser, boxes_dir, tmp_path):
    out = tmp_path / "centre.json"
    assert deepconv(["localise", "evaluate", "--ckpt", str(localiser), "--data", str(boxes_dir), "--protocol",
                     "centre-gt", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["images"] == 100 and row["regression"] == "pcr"
    assert row["baseline_error"] >= 90  # a digit covers at most 44 % of its canvas: the whole image never fits
    assert row["loc_error"] <= row["baseline_error"] - 30, row


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
    from deepconv_cli.localisation.annotations import Annotated

    items = [Annotated(p, 0, None, (1, 1)) for p in ("a", "b")]
    assert counted_once(["a", "b"], items) == 2
    for seen in (["a", "a", "b"], ["a"]):
        with pytest.raises(DeepconvError, match="counted twice or not at all"):
            counted_once(seen, items)


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
