"""recipes/paper/: every table's chain plans without ImageNet present and names what it needs."""

from pathlib import Path

import pytest

from deepconv_cli.__main__ import main as deepconv

PAPER = Path(__file__).resolve().parents[1] / "recipes" / "paper"
TABLES = sorted(p.name for p in PAPER.glob("*.yaml") if p.name != "digits.yaml")


def test_every_table_has_a_recipe():
    assert {"table3.yaml", "table4.yaml", "table5.yaml", "table6.yaml", "table8.yaml", "table9.yaml", "table11.yaml",
            "table12.yaml", "alexnet.yaml", "torchvision_vgg16.yaml"} <= set(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_dry_run_prints_the_plan_and_names_the_missing_data(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here
    code = deepconv(["recipe", "run", str(PAPER / name), "--dry_run", "--run_root", str(tmp_path / "runs"),
                     "--data", str(tmp_path / "elsewhere")])
    out, err = capsys.readouterr()
    assert code == 2 and "nothing was started" in err
    assert "(dry run)" in out and "deepconv " in out  # the plan table and the commands it would run
    assert f"{tmp_path / 'elsewhere'}" in err and "not found" in err  # --data points the stages elsewhere
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


@pytest.mark.parametrize("name, needs", [
    ("table11.yaml", ["VOCdevkit/VOC2007 not found", "VOCdevkit/VOC2012 not found", "101_ObjectCategories not found",
                      "256_ObjectCategories not found"]),
    ("torchvision_vgg16.yaml", ["weights file", "vgg16-397923af.pth not found", "class-name file"]),
    ("table12.yaml", ["source folder", "VOCdevkit/VOC2012 not found"]),
])
def test_dry_run_names_the_inputs_of_data_import_and_features_stages(name, needs, tmp_path, capsys):
    assert deepconv(["recipe", "run", str(PAPER / name), "--dry_run", "--run_root", str(tmp_path / "runs"),
                     "--data", str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err
    assert all(need in err for need in needs), err


def test_a_url_data_folder_is_not_reported_missing(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  - {name: a, command: train, config: %s, args: [--data.data_dir=s3://bucket/pack]}\n"
                      % (PAPER.parent / "quickstart" / "vgg_a.yaml"))
    assert deepconv(["recipe", "run", str(recipe), "--dry_run", "--run_root", str(tmp_path / "runs")]) == 0
    assert "not found" not in capsys.readouterr().err


@pytest.mark.slow
def test_digits_chain_reduced_fills_the_report(tmp_path, capsys):
    """digits.yaml cut to A -> D and E, Table 3's evaluation of D, Table 11's Caltech protocol and Table 12's two
    settings (1 epoch each, S = 36 only): the stages chain, their JSONs match published rows, and the report stage
    prints them."""
    import json

    import yaml

    recipe = yaml.safe_load((PAPER / "digits.yaml").read_text())
    keep = {"digits", "digit_boxes", "vgg_a_s36", "vgg_d_s36", "vgg_e_s36", "table3_vgg_d_s36", "table11_d_features",
            "table11_d_svm", "report"} | {s["name"] for s in recipe["stages"] if s["name"].startswith("table12_")}
    stages = []
    for stage in recipe["stages"]:
        if stage["name"] not in keep:
            continue
        if stage.get("config"):
            stage["config"] = str((PAPER / stage["config"]).resolve())
        stage["args"] = [str(a).replace("{vgg_d_s36_73}", "{vgg_d_s36}").replace("{vgg_e_s36_73}", "{vgg_e_s36}")
                         .replace("max_epochs=15", "max_epochs=1").replace("max_epochs=4", "max_epochs=1")
                         for a in stage.get("args", [])]
        if stage["command"] in ("train", "fine-tune"):
            stage["args"] += ["--trainer.limit_train_batches=10", "--trainer.limit_val_batches=2"]
        stages.append(stage)
    assert [s["name"] for s in stages] == [s for s in (st["name"] for st in recipe["stages"]) if s in keep]
    small = tmp_path / "digits_small.yaml"
    small.write_text(yaml.safe_dump({"run_root": str(tmp_path / "runs"), "data": str(tmp_path / "data"),
                                     "stages": stages}))
    assert deepconv(["recipe", "run", str(small)]) == 0
    assert "CHECKS THE MACHINERY" in (PAPER / "digits.yaml").read_text()
    capsys.readouterr()
    assert deepconv(["report", str(tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert not any(e["measured"] for e in report["rows"])  # digits are in no ILSVRC or Caltech row
    measured = {(e["table"], e["row"]["dataset"], e["row"]["config"], e["row"].get("train_s", "")): e["measured"]
                for e in report["laptop"]}
    assert ("3", "ILSVRC-2012", "D", "256") in measured, measured
    assert 0 <= measured["3", "ILSVRC-2012", "D", "256"]["top1_error"] <= 100
    # the cut chain's descriptor net is D at S = 36, not [36;73]: beside Table 11's Caltech rows it is not comparable
    why = {n["table"]: n["reasons"] for n in report["not_comparable"]}
    # Table 12's two settings (image; image + box) ran on digit-boxes; D and E trained at S = 36 only: not comparable
    table12 = [n for n in report["not_comparable"] if n["table"] == "12"]
    assert len(table12) == 2 and all("trained at S 36" in n["reasons"][0] for n in table12), table12
    assert why["11"][0].startswith("D trained at S 36 (252 in the paper's pixels), the paper's 256-512"), why


def _localisers(recipe_file: Path, evaluate_stage: str) -> list[tuple[str, str]]:
    """(regression, fine-tuned layers) of the localisers a recipe's Table 8 stage evaluates, in order."""
    import yaml

    recipe = yaml.safe_load(recipe_file.read_text())
    stages = {s["name"]: s for s in recipe["stages"]}
    args = [str(a) for a in stages[evaluate_stage]["args"]]
    out = []
    for i, arg in enumerate(args):
        if arg == "--ckpt":
            stage = stages[args[i + 1].strip("{}")]
            config = yaml.safe_load((recipe_file.parent / stage["config"]).read_text())["model"]
            given = dict(str(a).lstrip("-").split("=", 1) for a in stage.get("args", []) if "=" in str(a))
            out.append((given.get("model.regression", config["regression"]),
                        given.get("model.train_layers", config["train_layers"])))
    return out


@pytest.mark.parametrize("recipe_file, stage", [(PAPER / "table8.yaml", "table8"), (PAPER / "digits.yaml", "table8"),
                                                (PAPER.parent / "quickstart_localise.yaml", "centre_gt")])
def test_table8_recipes_train_and_evaluate_the_papers_three_rows(recipe_file, stage):
    # the original paper's Table 8: FC1-FC2 only + SCR, FC1-FC2 only + PCR, all layers + PCR
    assert _localisers(recipe_file, stage) == [("scr", "fc"), ("pcr", "fc"), ("pcr", "all")]
