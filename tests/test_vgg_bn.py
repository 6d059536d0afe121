"""VGG with batch normalisation (torchvision's and timm's vgg11_bn ... vgg19_bn): their parameter counts and names,
their weights imported to the same logits, batch norms deepened with their convolutions, evaluated in eval mode,
and exported with each batch norm folded into its convolution."""

import json
import warnings
from pathlib import Path

import onnx
import pytest
import torch
import torchvision
from torch import nn

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.export.artefact import load_artefact
from deepconv_cli.export.fold_bn import fold_batch_norms
from deepconv_cli.export.import_weights import map_state_dict
from deepconv_cli.models.checkpoint import ModelMeta, load_model, save_model_checkpoint
from deepconv_cli.models.deepen import initialise_from
from deepconv_cli.models.init import INITS, init_weights
from deepconv_cli.models.registry import build, get_spec
from deepconv_cli.models.spec import ArchSpec

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
TV_BN = {"vgg11_bn": "A-BN", "vgg13_bn": "B-BN", "vgg16_bn": "D-BN", "vgg19_bn": "E-BN"}
TIMM_HEAD = {"classifier.0": "pre_logits.fc1", "classifier.3": "pre_logits.fc2", "classifier.6": "head.fc"}


@torch.no_grad()
def trained_looking(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms away from the identity (as after training): random affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
    return model


def narrow(arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return trained_looking(build(arch, num_classes=10, width=0.125, crop_size=32), seed)


def test_models_lists_the_bn_variants_with_torchvisions_parameter_counts(capsys):
    assert deepconv(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, arch in TV_BN.items():
        with torch.device("meta"):  # shapes only: no memory, no initialisation time
            tv = getattr(torchvision.models, name)(weights=None)
        assert rows[arch]["parameters"] == sum(p.numel() for p in tv.parameters()), name
        assert rows[arch]["alias"] == name and get_spec(name.upper()).name == arch  # torchvision's name works
    assert {"C-BN", "B-shallow-BN"} <= rows.keys() and "A-LRN-BN" not in rows


@pytest.fixture(scope="module")
def vgg16_bn(tmp_path_factory):
    """torchvision's vgg16_bn (full size) with random weights and batch-norm statistics, its state dict on disk."""
    torch.manual_seed(0)
    model = trained_looking(torchvision.models.vgg16_bn(weights=None)).eval()
    path = tmp_path_factory.mktemp("tv") / "vgg16_bn-random.pth"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.mark.slow
def test_imported_torchvision_vgg16_bn_gives_torchvision_logits(vgg16_bn, tmp_path, capsys):
    tv, weights = vgg16_bn
    out = tmp_path / "vgg16_bn.ckpt"
    assert deepconv(["import", "--from", "torchvision", str(weights), "--out", str(out)]) == 0
    assert "VGG-D-BN" in capsys.readouterr().out
    model, meta = load_model(out)
    assert (meta.arch, meta.num_classes, meta.crop_size) == ("D-BN", 1000, 224)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        expected = tv((x / 255 - IMAGENET_MEAN) / IMAGENET_STD)
        got = model(x)
    assert expected.std() > 0.01
    assert (got - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    bn = model.layer_norms()["conv13"]  # the last batch norm, running statistics included
    assert torch.equal(bn.running_var, tv.features[41].running_var)
    assert bn.num_batches_tracked == tv.features[41].num_batches_tracked


def test_timm_bn_names_map_to_exactly_the_same_weights(vgg16_bn):
    """timm's vgg16_bn: torchvision's `features` (batch norm at N+1), the FC layers renamed and conv-shaped (timm's
    own _filter_fn); and a state dict from before torch 0.4.1 (no num_batches_tracked) still imports."""
    state = vgg16_bn[0].state_dict()
    timm = {}
    for key, value in state.items():
        layer, _, leaf = key.rpartition(".")
        if layer in TIMM_HEAD:
            key = f"{TIMM_HEAD[layer]}.{leaf}"
            value = value.reshape(value.shape[0], -1, 7, 7) if layer == "classifier.0" and leaf == "weight" else value
            value = value.reshape(*value.shape, 1, 1) if layer == "classifier.3" and leaf == "weight" else value
        timm[key] = value
    from_tv, from_timm = map_state_dict(state, "torchvision"), map_state_dict(timm, "timm")
    assert from_timm.arch == from_tv.arch == "D-BN"
    assert from_timm.state.keys() == from_tv.state.keys()
    assert all(torch.equal(from_timm.state[k], v) for k, v in from_tv.state.items())
    old = map_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, "torchvision")
    assert old.state.keys() == from_tv.state.keys() and old.state["features.1.num_batches_tracked"] == 0


@pytest.mark.parametrize("name", list(TV_BN))
def test_bn_arch_is_inferred_and_every_entry_lands_in_place(name):
    with torch.device("meta"):
        state = getattr(torchvision.models, name)(weights=None).state_dict()
        ours = build(TV_BN[name]).state_dict()
    mapped = map_state_dict(state, "torchvision")
    assert mapped.arch == TV_BN[name]
    assert {k: v.shape for k, v in mapped.state.items()} == {k: v.shape for k, v in ours.items()
                                                             if not k.startswith("normalize.")}
    with pytest.raises(Exception, match="they hold config " + TV_BN[name]):
        map_state_dict(state, "torchvision", TV_BN[name].removesuffix("-BN"))  # plain weights asked for BN ones


def test_deepening_copies_batch_norms_with_their_convolutions():
    source, target = narrow("A-BN", 0), narrow("D-BN", 1)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    rows = {r.target: r for r in initialise_from(target, source)}
    s_norms, t_norms = source.layer_norms(), target.layer_norms()
    # A's first four convolutions sit at block 1 layer 1, block 2 layer 1, block 3 layers 1-2 of D
    for s_name, t_name in [("conv1", "conv1"), ("conv2", "conv3"), ("conv3", "conv5"), ("conv4", "conv6")]:
        assert rows[t_name].copied and rows[t_name].source == s_name
        for key, value in s_norms[s_name].state_dict().items():
            assert torch.equal(t_norms[t_name].state_dict()[key], value), (t_name, key)
    assert torch.equal(t_norms["conv2"].running_mean, fresh["features.4.running_mean"])  # not mapped: untouched
    same = narrow("D-BN", 2)
    initialise_from(same, target, "all")  # every layer: all norm layers, running statistics included
    assert all(torch.equal(same.state_dict()[k], v) for k, v in target.state_dict().items()
               if not k.startswith("normalize."))


def test_deepening_a_plain_net_into_bn_says_so_and_the_reverse_is_refused():
    rows = {r.target: r for r in initialise_from(narrow("D-BN"), narrow("A"))}
    assert rows["conv1"].copied and "norm layer starts afresh" in rows["conv1"].note
    with pytest.raises(ValueError, match="batch norm"):
        initialise_from(narrow("D"), narrow("A-BN"))


def test_dense_evaluation_runs_batch_norm_in_eval_mode(tmp_path):
    """A checkpoint loads in eval mode: an image's dense scores do not depend on the other images of its batch."""
    model = narrow("D-BN")
    path = tmp_path / "d_bn.ckpt"
    save_model_checkpoint(path, model, ModelMeta("D-BN", 10, [str(i) for i in range(10)], 0.125, 32))
    loaded, _ = load_model(path)
    x = torch.rand(4, 3, 70, 75, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        alone, together = loaded.score_map(x[:1]), loaded.score_map(x)[:1]
    assert alone.shape[-2:] == (2, 2)  # a real dense map, not one crop
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("fixed_size", [False, True])
def test_folded_export_module_equals_the_network(fixed_size):
    model = narrow("D-BN").eval()
    module = model.export_module(fixed_size)
    folded, count = fold_batch_norms(module)
    assert count == 13 and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the network itself is untouched
    x = torch.rand(2, 3, 32, 32) * 255 if fixed_size else torch.rand(2, 3, 71, 45) * 255
    with torch.no_grad():
        torch.testing.assert_close(folded(x), module(x), rtol=1e-4, atol=1e-4)
    plain = narrow("D").export_module()
    assert fold_batch_norms(plain) == (plain, 0)


@pytest.mark.slow
def test_onnx_and_torchscript_exports_hold_no_batch_norm_and_equal_pytorch(tmp_path, capsys):
    path = tmp_path / "d_bn.ckpt"
    model = narrow("D-BN")
    save_model_checkpoint(path, model, ModelMeta("D-BN", 10, [str(i) for i in range(10)], 0.125, 32))
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt"), ("safetensors", ".safetensors")):
        out = tmp_path / f"d_bn{suffix}"
        assert deepconv(["export", "--ckpt", str(path), "--format", fmt, "--out", str(out)]) == 0
        assert "verified against PyTorch" in capsys.readouterr().out  # the export's own check on two input sizes
        artefact = load_artefact(out)
        x = torch.rand(2, 3, 40, 52) * 255
        with torch.no_grad():
            torch.testing.assert_close(artefact(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "d_bn.onnx")).graph.node}
    assert "Conv" in ops and "BatchNormalization" not in ops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream; the export still writes it
        scripted = torch.jit.load(str(tmp_path / "d_bn.pt"))
    assert "batch_norm" not in str(scripted.inlined_graph) and "conv" in str(scripted.inlined_graph)


@pytest.mark.parametrize("scheme", INITS)
def test_every_init_handles_bias_free_convolutions_and_norm_layers(scheme):
    net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.GroupNorm(2, 8),
                        nn.Conv2d(8, 4, 1), nn.Linear(4, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(2.0, 3.0)  # anything but the identity
    init_weights(net, scheme)
    for norm in (net[1], net[2]):
        assert torch.equal(norm.weight, torch.ones(8)) and torch.equal(norm.bias, torch.zeros(8))
    assert net[0].bias is None and net[0].weight.abs().max() < 2.0
    assert torch.equal(net[3].bias, torch.zeros(4)) and torch.equal(net[4].bias, torch.zeros(2))


def test_a_builder_takes_only_the_options_it_names():
    seen = {}

    def builder(num_classes: int, crop_size: int):
        seen.update(num_classes=num_classes, crop_size=crop_size)
        return build("lenet5", num_classes=num_classes)

    spec = ArchSpec("tiny", "Tiny", builder, default_crop=32)
    spec.build(num_classes=3)  # the callers' defaults (width 1, dropout None, init normal, std 0.01) pass by
    assert seen == {"num_classes": 3, "crop_size": 32}
    with pytest.raises(ValueError, match="takes no dropout option"):
        spec.build(num_classes=3, dropout=0.3)  # set by the user, but the family has nothing to apply it to


def test_report_sets_an_imported_vgg16_bn_against_torchvisions_published_row(tmp_path, capsys):
    """What recipes/paper/torchvision_vgg16_bn.yaml's evaluate stage writes fills the D-BN row, and no other."""
    result = {"model": "vgg16_bn", "arch": "D-BN", "train_s": "256", "test_q": "256", "method": "center",
              "flip": False, "top1_error": 26.7, "top5_error": 8.5, "images": 50000, "seconds": 1.0,
              "ckpt": "best.ckpt", "crop": 224, "members": [{"arch": "D-BN", "train_s": "256", "test_q": "256"}],
              "preprocessing": "imagenet_mean_std", "classes": 1000, "limit": 0}
    root = tmp_path / "runs" / "torchvision_vgg16_bn" / "torchvision_center"
    root.mkdir(parents=True)
    (root / "results.json").write_text(json.dumps([result]))
    assert deepconv(["report", str(tmp_path / "runs"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    filled = {(e["table"], e["row"]["config"]): e["measured"] for e in report["rows"] if e["measured"]}
    assert filled == {("tv_bn", "D-BN"): {"top1_error": 26.7, "top5_error": 8.5}}
    published = {e["row"]["config"]: e["row"]["top1_error"] for e in report["rows"] if e["table"] == "tv_bn"}
    assert published == {"A-BN": 29.63, "B-BN": 28.414, "D-BN": 26.64, "E-BN": 25.782}


@pytest.mark.parametrize("extra, expected", [([], "false"), (["--trainer.sync_batchnorm=true"], "true")])
def test_synchronised_batch_norm_only_when_asked(extra, expected, digits_dir, capsys):
    """Under DDP each device normalises by its own images (Lightning's and torchvision's default) unless the user
    asks; the VGG-16-BN recipe with torchvision's settings is a valid training config and keeps the default."""
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "imagenet" / "vgg16_bn.yaml"
    for args in (["--model.arch=vgg16_bn", f"--data.data_dir={digits_dir}"], ["-c", str(recipe)]):
        try:
            code = deepconv(["train", *args, *extra, "--print_config"])
        except SystemExit as done:  # jsonargparse's print_config exits after printing
            code = done.code
        assert code == 0
        printed = capsys.readouterr().out
        assert f"sync_batchnorm: {expected}" in printed and "arch: " in printed, args
