"""`deepconv data voc` / `data caltech`: the devkit's layout and the Caltech folders as descriptor inputs."""

import csv

from deepconv_cli.__main__ import main
from deepconv_cli.data.voc import VOC_CLASSES


def test_voc_split_links_images_and_writes_labels_with_difficult(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    ids = ["000001", "000002"]
    for i in ids:
        (root / "JPEGImages" / f"{i}.jpg").write_bytes(b"jpeg")
    marks = {"cat": ["1", "0"], "dog": ["-1", "1"]}
    for cls in VOC_CLASSES:
        lines = [f"{i} {marks.get(cls, ['-1', '-1'])[k]}" for k, i in enumerate(ids)]
        (root / "ImageSets" / "Main" / f"{cls}_test.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "voc"
    assert main(["data", "voc", str(tmp_path), str(out), "--split", "test"]) == 0
    assert sorted(p.name for p in (out / "test").iterdir()) == ["000001.jpg", "000002.jpg"]
    assert (out / "test" / "000001.jpg").read_bytes() == b"jpeg"
    rows = list(csv.reader((out / "labels.csv").open()))
    assert rows == [["image", "labels"], ["test/000001.jpg", "cat"], ["test/000002.jpg", "cat:difficult dog"]]
    assert main(["data", "voc", str(tmp_path), str(out), "--split", "val"]) == 2  # no such split: one line


def test_caltech_splits_are_seeded_and_disjoint(tmp_path):
    for cls, n in (("ant", 8), ("bee", 6)):
        (tmp_path / "cal" / cls).mkdir(parents=True)
        for k in range(n):
            (tmp_path / "cal" / cls / f"{k}.jpg").write_bytes(b"x")
    for out in ("a", "b"):
        assert main(["data", "caltech", str(tmp_path / "cal"), str(tmp_path / out), "--splits", "2",
                     "--train_per_class", "3", "--test_per_class", "2"]) == 0

    def names(out, split, part, cls):
        return sorted(p.name for p in (tmp_path / out / f"split{split}" / part / cls).iterdir())

    assert names("a", 0, "train", "ant") == names("b", 0, "train", "ant")  # the same seed draws the same split
    assert names("a", 0, "train", "ant") != names("a", 1, "train", "ant")
    for split in (0, 1):
        train, test = names("a", split, "train", "bee"), names("a", split, "val", "bee")
        assert len(train) == 3 and len(test) == 2 and not set(train) & set(test)
