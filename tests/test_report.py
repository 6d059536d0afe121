"""`deepconv report`: the papers' published numbers (package data) against the results under a run root, like with
like only (dataset, network, S, Q, method, members, protocol), laptop-scale runs apart, bad files one line each."""

import json

from deepconv_cli.__main__ import main
from deepconv_cli.evaluation.paper_report import VALUES
from deepconv_cli.evaluation.published import load_all


def evaluated(arch, s, q, method, top1=20.0, crop=224, classes=1000, images=50000, flip=True, limit=0, members=None):
    """One row as `deepconv evaluate --json` writes it."""
    return {"model": arch.lower(), "arch": arch, "train_s": s, "test_q": q, "method": method, "flip": flip,
            "top1_error": top1, "top5_error": top1 / 4, "images": images, "seconds": 1.0, "ckpt": "x.ckpt",
            "crop": crop, "members": members or [{"arch": arch, "train_s": s, "test_q": q}],
            "preprocessing": "mean_rgb", "classes": classes, "limit": limit}


def svm(dataset, nets, q, aggregate, metric, mean, crop=224, **protocol):
    """One row as `deepconv linear-svm --json` writes it (nets: [(arch, train S)])."""
    return {"features": "f.safetensors", "metric": metric, "mean": mean, "std": 0.5, "dataset": dataset,
            "aggregate": aggregate, "networks": [{"arch": a, "crop": crop, "test_q": q, "train_s": s} for a, s in nets],
            "task": "classification", "setting": "image", **protocol}


def run_report(tmp_path, capsys, files: dict, *args) -> tuple[int, dict, str]:
    root = tmp_path / "runs"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(data if isinstance(data, str) else json.dumps(data))
    code = main(["report", str(root), "--json", *args])
    out, err = capsys.readouterr()

    def no_nan(token):
        raise AssertionError(f"{token} in --json output")

    return code, json.loads(out, parse_constant=no_nan), err


def matched(report: dict, part: str = "rows") -> dict:
    """(table, config, S, Q, method) -> measured values, of the rows that a result filled."""
    return {(e["table"], e["row"]["config"], e["row"].get("train_s", ""), e["row"].get("test_q", ""),
             e["row"].get("method") or e["row"].get("pooling") or e["row"].get("setting")): e["measured"]
            for e in report[part] if e["measured"]}


def test_published_rows_name_their_table_and_carry_its_numbers():
    papers = {p.name: p for p in load_all()}
    assert {"vgg", "alexnet", "torchvision"} <= set(papers)
    assert set(papers["vgg"].tables) == {"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}
    assert set(papers["alexnet"].tables) == {"1", "2"}
    for paper in papers.values():
        for row in paper.rows:
            kind = paper.tables[row["table"]]["kind"]
            assert all(isinstance(row[key], float) for key, _ in VALUES[kind]), row
    best = [r for r in papers["vgg"].rows if r["table"] == "4" and r["config"] == "D" and r["train_s"] == "256-512"]
    assert [(r["top1_error"], r["top5_error"]) for r in best] == [(24.8, 7.5)]  # the paper's bold single-net row
    # Table 8 as published (the translation shifts the first column): FC-only SCR, FC-only PCR, all-layers PCR
    table8 = [(r["fine_tuned"], r["regression"], r["localisation_error"]) for r in papers["vgg"].rows
              if r["table"] == "8"]
    assert table8 == [("fc", "SCR", 36.4), ("fc", "PCR", 34.3), ("all", "PCR", 33.1)]
    table12 = [(r["setting"], r["config"], r["dataset"], r["score"]) for r in papers["vgg"].rows if r["table"] == "12"]
    assert table12 == [("image", "D+E", "VOC-2012", 79.2), ("image+box", "D+E", "VOC-2012", 84.0)]
    starred = [r["note"] for r in papers["alexnet"].rows if r.get("extra_data")]
    assert starred == ["1 CNN*", "7 CNNs*"]


def test_table8_labels_in_the_printed_table(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--markdown"]) == 0
    md = capsys.readouterr().out
    table8 = md[md.index("### VGG Table 8"):md.index("### VGG Table 9")]
    assert [line.split(" | ")[1] for line in table8.splitlines() if line.startswith("| D ")] == [
        "centre-gt SCR fc", "centre-gt PCR fc", "centre-gt PCR all"]


def test_each_result_fills_only_the_row_of_its_s_q_method_and_dataset(tmp_path, capsys):
    """Every result here would also fill another row if the matcher ignored S, Q, method or dataset."""
    rows = [evaluated("D", "384", "384", "dense", 26.0),  # S ignored: also D/[256;512]/384
            evaluated("D", "256", "224,256,288", "dense", 27.0),  # Q ignored: also Table 3's D/256/256
            evaluated("E", "256-512", "256,384,512", "multi-crop", 24.0),  # method ignored: Tables 4-5 dense too
            evaluated("C", "36", "36", "dense", 10.0, crop=32, classes=10, images=500)]  # dataset ignored: Table 3
    code, report, _ = run_report(tmp_path, capsys, {"eval/results.json": rows})
    assert code == 0
    assert set(matched(report)) == {("3", "D", "384", "384", "dense"), ("4", "D", "256", "224,256,288", "dense"),
                                    ("5", "E", "256-512", "256,384,512", "multi-crop")}
    assert matched(report, "laptop") == {("3", "C", "256", "256", "dense"): {"top1_error": 10.0, "top5_error": 2.5}}
    assert report["not_comparable"] == [] and report["unmatched"] == 0
    hit = next(e for e in report["rows"] if e["measured"] and e["table"] == "3")
    assert hit["result"]["flip"] is True and hit["result"]["images"] == 50000 and hit["file"] == "eval/results.json"


def test_alexnet_10_crop_at_crop_227_lands_in_its_row_never_in_the_pretrained_one(tmp_path, capsys):
    one = evaluated("alexnet", "256", "256", "10-crop", 41.0, crop=227)
    five = evaluated("alexnet+alexnet+alexnet+alexnet+alexnet", "256/256/256/256/256", "256", "10-crop", 38.5,
                     crop=227, members=[{"arch": "alexnet", "train_s": "256", "test_q": "256"}] * 5)
    _, report, _ = run_report(tmp_path, capsys, {"alexnet.json": [one, five]})
    hits = {(e["table"], e["row"]["note"]): e["measured"]["top1_error"] for e in report["rows"]
            if e["paper"] == "alexnet" and e["measured"]}
    assert hits == {("2", "1 CNN"): 41.0, ("2", "5 CNNs"): 38.5}


def test_partial_or_unflipped_runs_are_not_comparable_and_say_why(tmp_path, capsys):
    files = {"limit.json": [evaluated("D", "256", "256", "dense", 30.0, images=60, limit=60)],
             "noflip.json": [evaluated("D", "384", "384", "dense", 31.0, flip=False)],
             "fewer.json": [evaluated("E", "256", "256", "dense", 32.0, images=1000)],
             "loc.json": {"protocol": "centre-gt", "limit": 0, "offsets": 1, "flip": False, "results": [
                 {"localiser": "x", "regression": "pcr", "train_s": "384", "test_q": "384", "arch": "D",
                  "crop": 224, "classes": 1000, "images": 50000, "loc_error": 35.0,
                  "members": [{"arch": "D", "train_s": "384", "test_q": "384"}]}]},  # no fine_tuned recorded
             "voc.json": [svm("VOC-2012", [("D", "256-512")], "256,384,512,640,768", "average", "mean AP", 88.0,
                              ap="voc2010", split="val"),
                          svm("VOC-2007", [("E", "256-512")], "256,384,512,640,768", "average", "mean AP", 88.5,
                              ap="sklearn", split="test"),
                          svm("Caltech-101", [("D", "256")], "256,384,512", "stack", "mean class recall", 90.0,
                              splits=3, per_class=30, test_per_class=50),
                          svm("Caltech-256", [("E", "256-512")], "256,384,512", "stack", "mean class recall", 84.0,
                              splits=3, per_class=30, test_per_class=0)],
             "good.json": [svm("Caltech-101", [("D", "256-512"), ("E", "256-512")], "256,384,512", "stack",
                               "mean class recall", 92.0, splits=3, per_class=30, test_per_class=50)]}
    _, report, _ = run_report(tmp_path, capsys, files)
    assert matched(report) == {("11", "D+E", "256-512", "256,384,512", "stack"): {"score": 92.0}}
    why = {n["file"] + " " + n["result"].split()[1]: n["reasons"] for n in report["not_comparable"]}
    assert why["limit.json D"] == ["60 images (--limit 60)"] and why["noflip.json D"] == ["no flipped views"]
    assert why["fewer.json E"] == ["1000 images, the paper's 50,000"]
    assert why["loc.json D"] == ["fine tuned not recorded, the paper's fc"]
    reasons = [r for n in report["not_comparable"] if n["file"] == "voc.json" for r in n["reasons"]]
    assert reasons == ["VOC-2012 val, the paper's test", "AP sklearn, the paper's voc2007 (the VOC devkit's)",
                       "D trained at S 256, the paper's 256-512", "per class 30, the paper's 60"]
    assert all(n["measured"]["file"] == n["file"] for n in report["not_comparable"])  # the fields of the decision


def test_table9_checks_the_classifier_that_ranked_the_top_5(tmp_path, capsys):
    def loc(classifiers, s, q):
        return {"protocol": "dense-top5", "limit": 0, "offsets": 1, "flip": False, "results": [
            {"localiser": "pcr", "regression": "pcr", "train_s": "384", "test_q": "384", "arch": "D", "crop": 224,
             "classes": 1000, "fine_tuned": "all", "images": 50000, "loc_error": 28.0,
             "members": [{"arch": "D", "train_s": "384", "test_q": "384"}], "classifiers": classifiers,
             "classifier_method": "dense+multi-crop", "classifier_s": s, "classifier_q": q}]}

    files = {"best/r.json": loc(["D", "E"], ["256-512", "256-512"], ["256,384,512", "256,384,512"]),
             "one/r.json": loc(["D"], ["256"], ["224,256,288"])}
    _, report, _ = run_report(tmp_path, capsys, files)
    assert {k[:2] for k in matched(report)} == {("9", "D")}
    assert [n["file"] for n in report["not_comparable"]] == ["one/r.json"]
    assert report["not_comparable"][0]["reasons"][0].startswith("top-5 ranked by D/256/224,256,288")


def test_table12_action_results_fill_their_setting_and_digit_boxes_only_the_laptop_table(tmp_path, capsys):
    de = [("D", "256-512"), ("E", "256-512")]
    action = {"task": "action", "ap": "voc2010", "split": "test"}
    files = {"voc/r.json": [svm("VOC-2012", de, "256,384,512", "stack", "mean AP", 80.0, setting="image", **action),
                            svm("VOC-2012", de, "256,384,512", "stack", "mean AP", 85.0, setting="image+box",
                                **action)],
             "digits/r.json": [svm("digit-boxes", [("D", "36-73"), ("E", "36-73")], "36,54,73", "stack", "mean AP",
                                   60.0, crop=32, setting="image", **{**action, "split": "val"})]}
    _, report, _ = run_report(tmp_path, capsys, files)
    assert {(k[0], k[4]): v["score"] for k, v in matched(report).items()} == {("12", "image"): 80.0,
                                                                               ("12", "image+box"): 85.0}
    assert {(k[0], k[4]): v["score"] for k, v in matched(report, "laptop").items()} == {("12", "image"): 60.0}
    assert not any(e["row"]["table"] == "11" for e in report["rows"] if e["measured"])  # an action is not Table 11


def test_laptop_results_get_their_own_table_without_a_difference(tmp_path, capsys, monkeypatch):
    """The README quickstart's digits results (32-pixel crops, 10 classes) appear in no ILSVRC row."""
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal
    member = {"arch": "D", "train_s": "36-73", "test_q": "36,54,73"}
    rows = [evaluated("D", "36", "32,36,41", "dense", 7.8, crop=32, classes=10, images=359),  # Table 4's D/256
            evaluated("D", "36-73", "36,54,73", "multi-crop", 30.0, crop=32, classes=10, images=359),
            {**evaluated("D+E", "36-73/36-73", "36,54,73", "dense", 20.0, crop=32, members=[member, {**member,
                                                                                           "arch": "E"}])}]
    del rows[2]["classes"]  # a file written before `classes` was recorded: crop 32 tells it is not ILSVRC
    code, report, _ = run_report(tmp_path, capsys, {"runs/results.json": rows, "unrelated.json": {"a": 1}})
    assert code == 0 and matched(report) == {}
    assert {k[:2] + (k[4],) for k in matched(report, "laptop")} == {("4", "D", "dense"), ("5", "D", "multi-crop"),
                                                                     ("6", "D+E", "dense")}
    assert main(["report", str(tmp_path / "runs")]) == 0
    text = capsys.readouterr().out
    assert "not run" in text and "check the machinery, not the paper's claims" in text
    assert "26.6" in text and "7.8" in text and "(-18.8)" not in text  # beside Table 4's D, no difference
    assert max(len(line) for line in text.splitlines()[:-2]) <= 80  # the tables; the summary names the root
    assert main(["report", str(tmp_path / "runs"), "--markdown", "--measured_only"]) == 0
    md = capsys.readouterr().out
    assert "### VGG Table 5" in md and "### VGG Table 3" not in md and "| 30.0 |" in md


def test_a_bad_result_file_is_one_line_and_the_json_stays_valid(tmp_path, capsys):
    good = evaluated("D", "384", "384", "dense", 26.0)
    files = {"good.json": [good], "string.json": [{**good, "top1_error": "26.0"}],
             "nan.json": '[{"arch": "D", "train_s": "384", "test_q": "384", "method": "dense", "top1_error": NaN, '
                         '"top5_error": 1.0}]',
             "cut.json": json.dumps([good])[:40]}
    code, report, err = run_report(tmp_path, capsys, files)
    assert code == 0 and len(matched(report)) == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("deepconv report: skipped ") for line in lines), err
    assert "string.json: 'top1_error' is \"26.0\", not a number" in err and "nan.json: 'top1_error' is nan" in err
    assert "cut.json: not valid JSON" in err and "Traceback" not in err
    assert {s["file"] for s in report["skipped"]} == {"string.json", "nan.json", "cut.json"}
    assert main(["report", str(tmp_path / "runs"), "--strict"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("3 result file(s) skipped (--strict)")


def test_report_of_a_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run root not found" in capsys.readouterr().err
