"""The VOC devkit's average precision (VOCevalcls.m), checked against a case worked by hand."""

import numpy as np
import pytest

from deepconv_cli.features.voc_ap import voc_average_precision, voc_mean_ap

# six images by falling score: positive, negative, positive, difficult, negative, positive.
# Leaving the difficult one out: recall 1/3, 1/3, 2/3, 2/3, 1; precision 1, 1/2, 2/3, 1/2, 3/5.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
GT = np.array([1, -1, 1, 0, -1, 1])


def test_voc2007_is_the_11_point_interpolated_ap():
    # t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t = .7, .8, .9, 1 -> 3/5
    assert voc_average_precision(SCORES, GT, "voc2007") == pytest.approx((4 + 3 * 2 / 3 + 4 * 3 / 5) / 11)


def test_voc2010_is_the_area_under_the_monotone_precision_envelope():
    # recall steps of 1/3 at envelope precisions 1, 2/3, 3/5
    assert voc_average_precision(SCORES, GT, "voc2010") == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_difficult_images_are_left_out_not_counted_as_negatives():
    as_negative = voc_average_precision(SCORES, np.where(GT == 0, -1, GT), "voc2010")
    assert as_negative == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)  # the 4th image would cost precision
    assert voc_mean_ap(np.stack([SCORES, -SCORES], 1), np.stack([GT, -np.ones(6, int)], 1), "voc2007") == (
        pytest.approx(voc_average_precision(SCORES, GT, "voc2007")))  # a class with no positive image is left out


def test_labels_csv_marks_difficult_images(tmp_path):
    from deepconv_cli.features.labels import label_matrix, label_names, read_label_csv

    (tmp_path / "labels.csv").write_text("image,labels\na.jpg,cat dog:difficult\nb.jpg,dog\nc.jpg,cat:difficult\n")
    table = read_label_csv(tmp_path / "labels.csv")
    assert label_names(table) == ["cat", "dog"]
    assert label_matrix(["a.jpg", "b.jpg", "c.jpg"], table, ["cat", "dog"], "test").tolist() == [[1, -1], [0, 1],
                                                                                                   [-1, 0]]
