"""The other networks of the source papers, as their papers and the handbook's tables give them: parameter counts
to the parameter, each layer's output size, AlexNet's towers, LeNet-5's sparse C3, GoogLeNet's auxiliary heads."""

import torch
import torch.nn.functional as F

from deepconv_cli.models.googlenet import INCEPTION
from deepconv_cli.models.registry import build
from deepconv_cli.models.summary import arch_info, layer_rows


def test_parameter_counts_are_the_papers():
    assert arch_info("alexnet").parameters == 60_965_224  # two towers, 1000 classes
    assert arch_info("alexnet-2gpu").parameters == 60_965_224
    assert arch_info("alexnet-1tower").parameters == 62_378_344
    assert arch_info("zfnet").parameters == 62_357_608
    assert arch_info("lenet5", num_classes=10).parameters == 60_850
    assert arch_info("nin-cifar", num_classes=100).parameters == 81_960


def test_googlenet_count_is_the_sum_of_table_1():
    """Every convolution of Table 1 (weights + biases) plus the linear layer, summed independently of the code."""
    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    cin = 192
    for n1, r3, n3, r5, n5, proj in INCEPTION.values():
        total += conv(1, cin, n1) + conv(1, cin, r3) + conv(3, r3, n3) + conv(1, cin, r5) + conv(5, r5, n5)
        total += conv(1, cin, proj)
        cin = n1 + n3 + n5 + proj
    total += 1024 * 1000 + 1000
    info = arch_info("googlenet")
    assert info.parameters == total == 6_998_552
    # the auxiliary classifiers exist for training only and are counted apart
    # on 4a (512 maps) and 4d (528): 1x1 conv 128, FC 4x4x128 -> 1024, linear 1024 -> 1000
    aux = conv(1, 512, 128) + conv(1, 528, 128) + 2 * (2048 * 1024 + 1024 + 1024 * 1000 + 1000)
    assert info.parameters_training - info.parameters == aux


def _outputs(arch: str, **kw) -> list[str]:
    return [r["output"] for r in layer_rows(arch, **kw)]


def test_layer_output_sizes_match_the_tables():
    assert _outputs("alexnet") == ["96x55x55", "96x55x55", "96x27x27", "256x27x27", "256x27x27", "256x13x13",
                                   "384x13x13", "384x13x13", "256x13x13", "256x6x6", "4096x1x1", "4096x1x1",
                                   "1000x1x1"]
    zf = _outputs("zfnet")
    assert zf[:5] == ["96x110x110", "96x55x55", "96x55x55", "256x26x26", "256x13x13"] and zf[9] == "256x6x6"
    assert _outputs("lenet5", num_classes=10) == ["6x28x28", "6x14x14", "16x10x10", "16x5x5", "120x1x1", "84x1x1",
                                                  "10x1x1"]
    assert _outputs("nin-cifar", num_classes=100) == ["16x30x30", "16x30x30", "64x28x28", "64x28x28", "100x26x26",
                                                      "100x26x26"]
    g = {r["layer"].split(".")[1]: r["output"] for r in layer_rows("googlenet")}
    assert g["conv1"] == "64x112x112" and g["pool1"] == "64x56x56" and g["pool2"] == "192x28x28"
    assert g["inception3b"] == "480x28x28" and g["inception4e"] == "832x14x14" and g["inception5b"] == "1024x7x7"


def test_alexnet_towers_do_not_see_each_other():
    """With groups=2, conv2's tower-1 maps ignore tower 2's input maps, LRN included (it normalises per tower)."""
    torch.manual_seed(0)
    net = build("alexnet", num_classes=10, width=0.25).eval()
    after_conv1 = torch.rand(1, net.features[0].out_channels, 55, 55)
    upto_conv2 = net.features[1:6]  # ReLU, tower LRN, pool, conv2, ReLU
    half = after_conv1.shape[1] // 2
    changed = after_conv1.clone()
    changed[:, half:] = torch.rand_like(changed[:, half:]) * 5
    with torch.no_grad():
        a, b = upto_conv2(after_conv1), upto_conv2(changed)
    out_half = a.shape[1] // 2
    assert torch.equal(a[:, :out_half], b[:, :out_half])
    assert not torch.equal(a[:, out_half:], b[:, out_half:])
    one = build("alexnet-1tower", num_classes=10, width=0.25).eval()
    with torch.no_grad():
        x = one.features[1:6](after_conv1[:, : one.features[0].out_channels])
        y = one.features[1:6](changed[:, : one.features[0].out_channels])
    assert not torch.equal(x[:, :out_half], y[:, :out_half])  # one tower: everything sees everything


def test_alexnet_init_is_section_5():
    net = build("alexnet", num_classes=10, width=0.25, init="paper")
    convs = [m for _, m in net.trunk_layers()]
    ones = [convs[1], convs[3], convs[4]] + [m for _, m in net.head_layers()[:-1]]
    zeros = [convs[0], convs[2], net.last_layer()[1]]
    assert all(torch.all(m.bias == 1) for m in ones) and all(torch.all(m.bias == 0) for m in zeros)
    assert abs(convs[2].weight.std().item() - 0.01) < 0.001


def test_lenet_c3_missing_connections_stay_zero_through_training():
    torch.manual_seed(0)
    net = build("lenet5", num_classes=10, init="paper")
    c3 = next(m for m in net.features if hasattr(m, "full_weight"))
    missing = ~c3.mask[:, :, None, None].expand(c3.shape)
    assert int((~missing).sum()) == 1500 and c3.weight.numel() + c3.bias.numel() == 1516
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    before = c3.full_weight().detach().clone()
    for _ in range(5):
        x, y = torch.rand(16, 3, 32, 32) * 255, torch.randint(0, 10, (16,))
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    after = c3.full_weight().detach()
    assert torch.all(after[missing] == 0) and not torch.equal(after[~missing], before[~missing])
    # map 15 reads all six S2 maps, maps 0-5 three adjacent ones
    assert c3.mask[15].all() and c3.mask[0].tolist() == [True, True, True, False, False, False]


def test_googlenet_auxiliary_heads_only_in_training():
    torch.manual_seed(0)
    net = build("googlenet", num_classes=5, width=0.125, crop_size=96, init="glorot")
    x = torch.rand(2, 3, 96, 96) * 255
    scores, aux = net.forward_train(x)
    assert scores.shape == (2, 5) and [a.shape for a in aux] == [(2, 5), (2, 5)]
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.forward_train(x)[0])
    exported = net.export_module(fixed_size=False)
    assert not any(n.startswith("aux") for n, _ in exported.named_parameters())
