"""`deepconv import`: torchvision / timm VGG weights become deepconv checkpoints that compute the same logits."""

import pytest
import torch
import torchvision

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.export.import_weights import imagenet_meta, map_state_dict, read_classes
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.models.vgg import VGG

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
TORCHVISION = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


def timm_layout(state):
    """timm's vgg names for a torchvision state dict: FC1/FC2 as convolutions, FC3 as head.fc (timm's own filter)."""
    out = {}
    for key, value in state.items():
        if key.startswith("classifier.0."):
            key, value = (
                "pre_logits.fc1." + key.split(".")[-1], value.reshape(-1, 512, 7, 7) if value.dim() > 1 else value
            )
        elif key.startswith("classifier.3."):
            key, value = (
                "pre_logits.fc2." + key.split(".")[-1], value.reshape(-1, 4096, 1, 1) if value.dim() > 1 else value
            )
        elif key.startswith("classifier.6."):
            key = "head.fc." + key.split(".")[-1]
        out[key] = value
    return out


@pytest.fixture(scope="module")
def vgg11(tmp_path_factory):
    """A randomly initialised torchvision vgg11 (full size) and its state dict saved as a .pth."""
    torch.manual_seed(0)
    model = torchvision.models.vgg11(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "vgg11-random.pth"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.mark.slow
def test_imported_torchvision_vgg11_gives_torchvision_logits(vgg11, tmp_path, capsys):
    tv, weights = vgg11
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"synset {i}" for i in range(1000)) + "\n")
    out = tmp_path / "vgg_a_tv.ckpt"
    args = ["import", "--from", "torchvision", str(weights), "--out", str(out), "--classes", str(names)]
    assert deepconv(args) == 0
    assert "VGG-A" in capsys.readouterr().out
    model, meta = load_model(out)
    assert (meta.arch, meta.num_classes, meta.crop_size, meta.preprocessing) == ("A", 1000, 224, "imagenet_mean_std")
    assert meta.classes[:2] == ["synset 0", "synset 1"] and len(meta.classes) == 1000
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        expected = tv((x / 255 - IMAGENET_MEAN) / IMAGENET_STD)  # torchvision's own preprocessing, outside the net
        got = model(x)  # raw 0..255: deepconv's InputNorm does the same inside
    assert expected.std() > 0.01
    assert (got - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    assert torch.equal(model.classifier.fc1.weight.flatten(1), tv.classifier[0].weight)  # (4096, 25088) reshaped


def test_timm_layout_maps_to_exactly_the_same_weights(vgg11):
    state = vgg11[0].state_dict()
    from_tv = map_state_dict(state, "torchvision")
    from_timm = map_state_dict(timm_layout(state), "timm")
    assert from_timm.arch == from_tv.arch == "A"
    assert from_timm.state.keys() == from_tv.state.keys()
    assert all(torch.equal(from_timm.state[k], v) for k, v in from_tv.state.items())


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_arch_is_inferred_and_every_weight_lands_in_place(name):
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        state = getattr(torchvision.models, name)(weights=None).state_dict()
        ours = VGG(TORCHVISION[name]).state_dict()
    mapped = map_state_dict(state, "torchvision")
    assert mapped.arch == TORCHVISION[name]
    expected = {k: v.shape for k, v in ours.items() if not k.startswith("normalize.")}
    assert {k: v.shape for k, v in mapped.state.items()} == expected
    meta = imagenet_meta(mapped, read_classes(None, mapped.num_classes))
    assert meta.classes[0] == "0" and meta.classes[-1] == "999" and len(meta.classes) == 1000  # default names


def test_import_mistakes_are_one_line_errors(vgg11, tmp_path, capsys):
    weights = str(vgg11[1])
    short = tmp_path / "short.txt"
    short.write_text("cat\ndog\n")
    bn = tmp_path / "vgg11_bn.pth"
    with torch.device("meta"):
        bn_state = torchvision.models.vgg11_bn(weights=None).state_dict()
    torch.save({k: torch.zeros(1) for k in bn_state}, bn)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(vgg11[1].read_bytes()[:5000])
    out = str(tmp_path / "x.ckpt")
    cases = [
        (["--arch", "D", weights], 1),  # the weights are vgg11 (A)
        (["--from", "timm", weights], 1),  # torchvision names, not timm's
        ([str(bn)], 1),  # vgg11_bn names holding 1-element tensors: no convolution to map
        ([str(truncated)], 1),
        ([str(tmp_path / "missing.pth")], 2),
        (["--classes", str(short), weights], 2),  # 2 names for 1000 classes
        (["--arch", "vgg166", weights], 2),  # a typo: a suggestion from the registry
        (["--arch", "alexnet", weights], 2),  # a family without a map for torchvision weights
        (["--from", "keras", weights], 2),  # no registered family reads it
    ]
    for args, code in cases:
        capsys.readouterr()
        assert deepconv(["import", *args, "--out", out]) == code, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("deepconv import: error: "), err
        if "vgg166" in args:
            assert "unknown architecture 'vgg166'; did you mean vgg16?" in err
    assert not (tmp_path / "x.ckpt").exists()
