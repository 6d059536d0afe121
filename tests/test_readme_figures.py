"""The README-figures check (`python tools/check_readme_figures.py`, slow, not run here) knows every figure the docs
quote: each marked block in README.md and docs/*.md holds exactly the percentages of the check's list."""

import importlib.util
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("check_readme_figures", ROOT / "tools" / "check_readme_figures.py")
check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(check)


def test_every_marked_block_quotes_exactly_the_checked_figures():
    listed = defaultdict(list)
    for figure in check.FIGURES:
        listed[(figure.doc, figure.block)].append(figure.quoted)
    quoted = check.quoted_blocks()
    assert set(quoted) == set(listed), "a marked block without figures in the check, or the reverse"
    for block, figures in quoted.items():
        assert sorted(figures) == sorted(listed[block]), block


def test_each_chain_is_a_recipe_and_each_figure_names_its_output(tmp_path):
    for chain, recipe in check.CHAINS.items():
        text = (ROOT / "recipes" / recipe).read_text()
        assert f"run_root: {check.RUN_ROOTS[chain]}" in text
        stages = {line.split("name:")[1].split(",")[0].strip() for line in text.splitlines() if "name:" in line}
        for figure in (f for f in check.FIGURES if f.chain == chain):
            source = figure.source
            stage = source.split(":", 1)[1] if source.startswith("metrics:") else source.split("/")[0]
            assert stage in stages, (chain, figure)


def test_a_changed_figure_in_a_block_is_noticed(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x\n<!-- figures:quickstart -->\n| a | 3.07 % | 0.00 % |\n<!-- /figures -->\n")
    assert check.quoted_blocks(tmp_path) == {("README.md", "quickstart"): ["3.07 %", "0.00 %"]}


def test_readme_is_a_front_door_that_starts_with_the_two_commands_ci_runs():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    ci = (ROOT / ".ci" / "run").read_text()
    assert lines[2] == "```bash" and lines[3].startswith('pip install -e ".[dev]" && deepconv recipe run recipes/')
    assert lines[4].startswith("pytest ") and 'pip install -e ".[dev]"' in ci and "\npytest\n" in ci
    for link in {part.split(")")[0] for part in "\n".join(lines).split("](docs/")[1:]}:
        assert (ROOT / "docs" / link.split("#")[0]).is_file(), link
