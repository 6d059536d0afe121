"""Every table deepconv prints stays readable in an 80-column terminal: no cell cut to "…", the key values whole
(wrapped cells, or one record per line when the columns cannot fit), at 80 and at 120 columns."""

import pytest

from deepconv_cli.__main__ import main
from deepconv_cli.benchmarks.report import Comparison, print_table

WIDTHS = [80, 120]


def printed(argv, capsys) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def readable(text: str, width: int, *values: str) -> None:
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= width
    for value in values:
        assert value in text, value


@pytest.mark.parametrize("width", WIDTHS)
def test_models_list_and_one_network(width, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    readable(printed(["models"], capsys), width, "132,863,336", "alexnet-1tower", "inception-v1", "googlenet")
    readable(printed(["models", "D"], capsys), width, "138,357,544", "features.0", "64x224x224")


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_and_evaluate_tables(width, trained_ckpt, digits_dir, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    readable(printed(["compare", str(trained_ckpt.parent)], capsys), width, "445,626", trained_ckpt.parent.name)
    out = printed(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(digits_dir / "val"), "--method",
                   "dense+multi-crop", "--limit", "6", "--num_workers", "0"], capsys)
    readable(out, width, "dense+multi-crop", "best")


@pytest.mark.parametrize("width", WIDTHS)
def test_benchmark_and_recipe_tables(width, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    comparison = Comparison("training loader, one worker, 500x375 JPEGs", "img/s", 747.25, 265.5,
                            "deepconv (crop box resize)", "Resize(S)+RandomCrop", True, 3, "≥ 500 img/s per core")
    print_table("benchmark loader: images per second", [comparison])
    readable(capsys.readouterr().out, width, "747.2", "265.5", "2.81x", "Resize(S)+RandomCrop")
    recipe = tmp_path / "chain.yaml"
    recipe.write_text("stages:\n  - {name: digits_for_the_localisation_chain, command: data, "
                      "args: [digits, data/digits]}\n")
    monkeypatch.chdir(tmp_path)
    out = printed(["recipe", "run", str(recipe), "--dry_run"], capsys)
    readable(out.split("deepconv data")[0], width, "digits_for_the_localisation_chain", "pending")
