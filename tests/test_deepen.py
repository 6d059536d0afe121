"""Deepening (§3.1): A's first four convs and three FCs land bit-identical in B..E, the rest stays random."""

import pytest
import torch

from deepconv_cli.models.deepen import conv_positions, initialise_from
from deepconv_cli.models.vgg import VGG


def narrow(arch: str, seed: int) -> VGG:
    torch.manual_seed(seed)
    return VGG(arch, 10, 0.125, 32, init="normal", init_std=0.1)


@pytest.mark.parametrize("arch", ["B", "C", "D", "E"])
def test_paper_scheme_copies_exactly_a_first_four_convs_and_the_fcs(arch):
    source, target = narrow("A", 0), narrow(arch, 1)
    before = {name: m.weight.clone() for name, m in target.weight_layers()}
    rows = initialise_from(target, source)
    copied = {r.target: r.source for r in rows if r.copied}
    # A's convs are block 1 #1, block 2 #1, block 3 #1 and #2; in B..E those are conv1, conv3, conv5, conv6
    assert copied == {"conv1": "conv1", "conv3": "conv2", "conv5": "conv3", "conv6": "conv4",
                      "fc1": "fc1", "fc2": "fc2", "fc3": "fc3"}
    src = dict(source.weight_layers())
    for name, m in target.weight_layers():
        if name in copied:
            assert torch.equal(m.weight, src[copied[name]].weight) and torch.equal(m.bias, src[copied[name]].bias)
        else:
            assert torch.equal(m.weight, before[name])  # untouched random init
            assert not any(m.weight.shape == s.weight.shape and torch.equal(m.weight, s.weight) for s in src.values())


def test_positions_are_block_and_index():
    assert [pos for _, pos, _ in conv_positions(narrow("A", 0))] == [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 2),
                                                                     (5, 1), (5, 2)]


def test_same_architecture_copies_every_layer_bit_identically():
    source, target = narrow("D", 0), narrow("D", 1)
    rows = initialise_from(target, source, "all")
    assert all(r.copied for r in rows) and len(rows) == 16
    for (_, t), (_, s) in zip(target.weight_layers(), source.weight_layers()):
        assert torch.equal(t.weight, s.weight) and torch.equal(t.bias, s.bias)


def test_mismatched_shapes_are_an_error_not_a_silent_skip():
    with pytest.raises(ValueError, match="shapes differ"):
        initialise_from(VGG("D", 10, 0.25, 32), narrow("A", 0))  # other width
    with pytest.raises(ValueError, match="same architecture"):
        initialise_from(narrow("D", 1), narrow("A", 0), "all")
    with pytest.raises(ValueError, match="no convolution at block"):
        initialise_from(narrow("B-shallow", 1), narrow("A", 0))


def test_another_class_count_leaves_fc3_random_and_says_so():
    source, target = narrow("D", 0), VGG("D", 7, 0.125, 32, init="normal", init_std=0.1)
    before = target.classifier.fc3.weight.clone()
    rows = {r.target: r for r in initialise_from(target, source, "all")}
    assert not rows["fc3"].copied and rows["fc3"].note == "10 -> 7 classes"
    assert torch.equal(target.classifier.fc3.weight, before)
    assert rows["fc2"].copied and torch.equal(target.classifier.fc2.weight, source.classifier.fc2.weight)


def test_fine_tuning_imported_weights_keeps_their_normalisation():
    from deepconv_cli.models.checkpoint import ModelMeta
    from deepconv_cli.training.module import ClassifierModule

    module = ClassifierModule("A", 10, width=0.125, crop_size=32)
    imported = ModelMeta("A", 1000, [], preprocessing="imagenet_mean_std", mean=[123.7, 116.3, 103.5],
                         scale=[0.0171, 0.0175, 0.0174])
    module.keep_preprocessing(imported)
    stats = {"mean": [70.0, 70.0, 70.0], "pca_eigval": [0.1, 0.01, 0.001], "pca_eigvec": torch.eye(3).tolist()}
    module.adopt_data_stats(stats, 36, 36, 0.1)
    assert module.meta.preprocessing == "imagenet_mean_std" and module.meta.mean == imported.mean
    torch.testing.assert_close(module.model.normalize.scale.flatten(), torch.tensor(imported.scale))
    plain = ClassifierModule("A", 10, width=0.125, crop_size=32)
    plain.adopt_data_stats(stats, 36, 36, 0.1)
    assert plain.meta.mean == [70.0, 70.0, 70.0] and plain.model.normalize.scale.flatten().tolist() == [1.0, 1.0, 1.0]
