"""`deepconv report`: the papers' published numbers (package data) against the results under a run root."""

import json

from deepconv_cli.__main__ import main
from deepconv_cli.evaluation.paper_report import VALUES
from deepconv_cli.evaluation.published import load_all


def test_published_rows_name_their_table_and_carry_its_numbers():
    papers = {p.name: p for p in load_all()}
    assert {"vgg", "alexnet", "torchvision"} <= set(papers)
    assert set(papers["vgg"].tables) == {"3", "4", "5", "6", "8", "9", "11"}
    for paper in papers.values():
        for row in paper.rows:
            kind = paper.tables[row["table"]]["kind"]
            assert all(isinstance(row[key], float) for key, _ in VALUES[kind]), row
    best = [r for r in papers["vgg"].rows if r["table"] == "4" and r["config"] == "D" and r["train_s"] == "256-512"]
    assert [(r["top1_error"], r["top5_error"]) for r in best] == [(24.8, 7.5)]  # the paper's bold single-net row


def test_report_matches_measured_rows_in_paper_units_and_marks_the_rest_not_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal
    # a digits-scale D (crop 32, S in [36; 73], Q = 36,54,73 = 256,384,512 scaled by 32/224) and a D+E fusion
    run = tmp_path / "runs" / "eval_d"
    run.mkdir(parents=True)
    member = {"arch": "D", "train_s": "36-73", "test_q": "36,54,73"}
    rows = [{"model": "d", "arch": "D", "train_s": "36-73", "test_q": "36,54,73", "method": "multi-crop",
             "top1_error": 30.0, "top5_error": 9.0, "crop": 32, "members": [member]},
            {"model": "ensemble", "arch": "D+E", "train_s": "36-73/36-73", "test_q": "36,54,73", "method": "dense",
             "top1_error": 20.0, "top5_error": 5.0, "crop": 32,
             "members": [member, {**member, "arch": "E"}]}]
    (run / "results.json").write_text(json.dumps(rows))
    (run / "unrelated.json").write_text('{"something": "else"}')
    assert main(["report", str(tmp_path / "runs"), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    measured = {(e["table"], e["row"].get("config"), e["row"]["method"]): e["measured"] for e in entries
                if e["measured"]}
    assert measured == {("5", "D", "multi-crop"): {"top1_error": 30.0, "top5_error": 9.0},
                        ("6", "D+E", "dense"): {"top1_error": 20.0, "top5_error": 5.0}}
    assert main(["report", str(tmp_path / "runs")]) == 0
    text = capsys.readouterr().out
    assert "30.0 (+5.4)" in text and "not run" in text and "check the machinery, not the paper's claims" in text
    assert max(len(line) for line in text.splitlines()[:-2]) <= 80  # the tables; the summary names the root
    assert main(["report", str(tmp_path / "runs"), "--markdown", "--measured_only"]) == 0
    md = capsys.readouterr().out
    assert "### VGG Table 5" in md and "### VGG Table 3" not in md


def test_report_of_a_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run root not found" in capsys.readouterr().err
