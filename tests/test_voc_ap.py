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


def test_voc2007_thresholds_are_matlabs_colon_so_recall_on_0_6_and_0_7_keeps_its_point():
    """The issue's case: 10 positives ranked + + + - + + + - + - - + - + + - - - - -, recall lands exactly on
    0.3 (rank 3), 0.6 (rank 7) and 0.7 (rank 9). The devkit's `0:0.1:1` has 0.3 = 0.30000000000000004 (so 3/10
    misses it) but 0.6 and 0.7 exact: 0.83694; np.linspace's 0.6000000000000001 and 0.7000000000000001 give 0.81962."""
    from deepconv_cli.features.voc_ap import THRESHOLDS

    ranks = "+ + + - + + + - + - - + - + + - - - - -".split()
    gt = np.array([1 if r == "+" else -1 for r in ranks])
    scores = np.linspace(1, 0, len(ranks))
    assert THRESHOLDS[3] == 0.30000000000000004 and THRESHOLDS[6] == 0.6 and THRESHOLDS[7] == 0.7
    assert round(voc_average_precision(scores, gt, "voc2007"), 5) == 0.83694
    # interpolated precision per threshold: recall 3/10 (rank 3, precision 1) is below 0.30000000000000004, so that
    # threshold takes 6/7 (rank 7); recall 0.6 (rank 7) and 0.7 (rank 9) reach their thresholds: 6/7 and 7/9
    # (exact decimals would give 1 at 0.3; linspace 7/9 at 0.6 and 2/3 at 0.7)
    assert voc_average_precision(scores, gt, "voc2007") == pytest.approx((3 + 4 * 6 / 7 + 7 / 9 + 3 * 2 / 3) / 11)


def test_tied_scores_keep_the_input_order_as_the_devkits_stable_sort():
    # a negative listed before a tied positive ranks first, costing precision (MATLAB's sort is stable)
    assert voc_average_precision(np.array([0.5, 0.5]), np.array([-1, 1]), "voc2010") == pytest.approx(0.5)
    assert voc_average_precision(np.array([0.5, 0.5]), np.array([1, -1]), "voc2010") == pytest.approx(1.0)
