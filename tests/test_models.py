"""The architecture table: Table 2 parameter counts, torchvision equivalence, dense-ready head, LRN, init."""

import pytest
import torch
import torchvision

from deepconv_cli.models.layers import alexnet_lrn
from deepconv_cli.models.registry import resolve_arch
from deepconv_cli.models.summary import arch_info
from deepconv_cli.models.vgg import ARCHS, VGG, count_parameters, parameter_count

# Table 2 of the VGG paper (exact counts; identical to torchvision's vgg11/13/16/19)
TABLE2 = {"A": 132_863_336, "B": 133_047_848, "D": 138_357_544, "E": 143_667_240}
TORCHVISION = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}


@pytest.mark.parametrize("arch", list(TABLE2))
def test_full_size_parameter_counts_equal_table2_and_torchvision(arch):
    model = VGG(arch)
    tv = getattr(torchvision.models, TORCHVISION[arch])(weights=None)
    assert count_parameters(model) == TABLE2[arch] == count_parameters(tv)
    # same weight shapes layer by layer once FC weights are viewed as matrices
    ours = [p.shape.numel() for p in model.parameters()]
    theirs = [p.shape.numel() for p in tv.parameters()]
    assert ours == theirs


def test_c_and_a_lrn_counts_follow_from_the_table():
    # C = D with the third conv of blocks 3, 4, 5 as 1x1: 256*256*8 + 2 * 512*512*8 fewer weights
    assert parameter_count("C") == TABLE2["D"] - 8 * 256 * 256 - 2 * 8 * 512 * 512 == 133_638_952
    assert parameter_count("A-LRN") == TABLE2["A"]  # LRN has no parameters
    assert count_parameters(VGG("C")) == parameter_count("C")


@pytest.mark.parametrize("arch", ARCHS)
def test_analytic_count_matches_built_narrow_network(arch):
    assert parameter_count(arch, 10, 0.25, 64) == count_parameters(VGG(arch, 10, 0.25, 64))


def test_weight_layer_counts_are_the_papers():
    expected = {"A": 11, "A-LRN": 11, "B": 13, "B-shallow": 8, "C": 16, "D": 16, "E": 19}
    assert {a: arch_info(a).weight_layers for a in ARCHS} == expected
    assert {a: len(VGG(a, 10, 0.125, 32).weight_layers()) for a in ARCHS} == expected


def test_b_shallow_replaces_each_pair_of_3x3_by_one_5x5():
    convs = [m for m in VGG("B-shallow", 10, 0.125, 32).features if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5)] * 5
    assert [c.padding for c in convs] == [(2, 2)] * 5


def test_aliases_resolve():
    assert resolve_arch("vgg16") == "D" and resolve_arch("a-lrn") == "A-LRN"
    with pytest.raises(ValueError, match="unknown architecture"):
        resolve_arch("vgg17")


def test_conv_head_on_crop_equals_the_convolutional_form():
    """One weight layout: the FC (matrix) path on a crop equals the 7x7/1x1 convolution path."""
    torch.manual_seed(0)
    model = VGG("A", 10, 0.25, 64, init="glorot").eval()
    x = torch.rand(3, 3, 64, 64) * 255
    features = model.features(model.normalize(x))
    head = model.classifier
    via_fc = head(features).flatten(1)
    via_conv = head.fc3(torch.relu(head.fc2(torch.relu(head.fc1(features))))).flatten(1)
    torch.testing.assert_close(via_fc, via_conv, rtol=1e-5, atol=1e-5)
    # and a torchvision-style Linear built from the same numbers gives the same logits
    linear = torch.nn.Linear(head.fc1.weight[0].numel(), head.fc1.out_channels)
    linear.weight.data = head.fc1.weight.flatten(1)
    linear.bias.data = head.fc1.bias
    torch.testing.assert_close(linear(features.flatten(1)), head.fc1(features).flatten(1), rtol=1e-5, atol=1e-5)


def test_dense_forward_gives_a_score_map_on_larger_images():
    model = VGG("A", 10, 0.125, 32).eval()
    assert model.score_map(torch.rand(1, 3, 96, 64) * 255).shape == (1, 10, 3, 2)
    with pytest.raises(ValueError, match="smaller than the training crop"):
        model(torch.rand(1, 3, 31, 64))


def test_lrn_follows_alexnet_formula():
    """b = a / (k + alpha * sum over n=5 neighbouring channels of a^2)^beta with k=2, alpha=1e-4, beta=0.75."""
    a = torch.rand(1, 8, 2, 2) * 50
    padded = torch.nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
    window = torch.stack([padded[:, c : c + 5].sum(1) for c in range(8)], 1)
    expected = a / (2 + 1e-4 * window).pow(0.75)
    torch.testing.assert_close(alexnet_lrn()(a), expected)


def test_a_lrn_has_lrn_after_first_conv_relu():
    layers = list(VGG("A-LRN", 10, 0.125, 32).features)
    assert isinstance(layers[0], torch.nn.Conv2d) and isinstance(layers[1], torch.nn.ReLU)
    assert isinstance(layers[2], torch.nn.LocalResponseNorm) and isinstance(layers[3], torch.nn.MaxPool2d)


@pytest.mark.parametrize("std", [0.01, 0.1])
def test_normal_init_has_requested_std_and_zero_bias(std):
    torch.manual_seed(0)
    model = VGG("A", 10, 0.5, 32, init="normal", init_std=std)
    weights = torch.cat([m.weight.flatten() for _, m in model.weight_layers()])
    assert abs(weights.std().item() - std) < 0.02 * std
    assert all(m.bias.abs().max() == 0 for _, m in model.weight_layers())


def test_dropout_after_fc1_and_fc2_only_in_training():
    model = VGG("A", 10, 0.125, 32, dropout=0.5)
    x = torch.rand(4, 3, 32, 32) * 255
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
    # the randomness is in the head only: the conv trunk is deterministic in training mode, the one dropout
    # module belongs to the classifier, and without it the head is deterministic too
    torch.testing.assert_close(model.features(x), model.features(x), rtol=0, atol=0)
    assert [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)] == ["classifier.dropout"]
    model.classifier.dropout.p = 0.0
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
