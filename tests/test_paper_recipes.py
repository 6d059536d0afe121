"""recipes/paper/: every table's chain plans without ImageNet present and names what it needs."""

from pathlib import Path

import pytest

from deepconv_cli.__main__ import main as deepconv

PAPER = Path(__file__).resolve().parents[1] / "recipes" / "paper"
TABLES = sorted(p.name for p in PAPER.glob("*.yaml") if p.name != "digits.yaml")


def test_every_table_has_a_recipe():
    assert {"table3.yaml", "table4.yaml", "table5.yaml", "table6.yaml", "table8.yaml", "table9.yaml", "table11.yaml",
            "alexnet.yaml", "torchvision_vgg16.yaml"} <= set(TABLES)


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
