"""The architecture seam: every registered network answers the same small interface, and a new architecture is one
file plus one registry line (here: the DEEPCONV_MODELS plug-in variable) — train, fine-tune, evaluate, export
and predict then work for it through the CLI without any other change."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.errors import DeepconvError
from deepconv_cli.models.checkpoint import ModelMeta, load_model, read_checkpoint
from deepconv_cli.models.registry import build, get_spec, registry, resolve_arch

TOY = textwrap.dedent('''
    """A toy family for the seam test: one conv block and a two-layer conv-shaped head; stride 4; and the weight
    names of a made-up library "toylib" (stem.conv, stem.bn, head.hidden and head.out as Linear layers)."""
    import torch
    from torch import nn

    from deepconv_cli.errors import failure
    from deepconv_cli.models.heads import ConvHead
    from deepconv_cli.models.interface import Classifier
    from deepconv_cli.models.spec import ArchSpec, ForeignWeights, WeightMap

    STRIDE = 4


    class Toy(Classifier):
        def __init__(self, num_classes, width, crop_size, dropout, init, init_std):
            super().__init__("toy", crop_size)
            c = max(1, round(64 * width))
            self.features = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                          nn.MaxPool2d(STRIDE))
            self.classifier = ConvHead(c, crop_size // STRIDE, [32], num_classes, dropout or 0.0)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.xavier_uniform_(m.weight)


    NAMES = {"stem.conv": "features.0", "stem.bn": "features.1", "head.hidden": "classifier.fc1",
             "head.out": "classifier.fc2"}


    def from_toylib(state: dict[str, torch.Tensor], source: str, arch: str) -> ForeignWeights:
        if "head.hidden.weight" not in state:
            raise failure("not a toylib state dict: no head.hidden.weight")
        channels = state["stem.conv.weight"].shape[0]
        kernel = round((state["head.hidden.weight"].shape[1] / channels) ** 0.5)
        out = {}
        for key, value in state.items():
            prefix, _, leaf = key.rpartition(".")
            name = f"{NAMES[prefix]}.{leaf}"
            out[name] = value.reshape(value.shape[0], -1, kernel if prefix == "head.hidden" else 1,
                                      kernel if prefix == "head.hidden" else 1) if prefix.startswith("head.") and \
                leaf == "weight" else value
        return ForeignWeights("toy", out, state["head.out.weight"].shape[0], kernel * STRIDE)


    SPECS = [ArchSpec("toy", "Toy", Toy, aliases=("toynet",), note="seam test network", default_crop=32,
                      weight_map=WeightMap(("toylib",), from_toylib), stride=STRIDE, title="ToyNet")]
''')

RESNET = textwrap.dedent('''
    \"\"\"A toy ResNet-style family for the seam test: a 3x3 stem and two residual stages (3x3 convolutions without
    bias, each followed by batch norm; the first of a stage strided, with a strided 1x1 shortcut), global average
    pooling to a 1x1 class layer; stride 4; and the weight names of a made-up library "reslib" (trunk.*, fc).\"\"\"
    import torch
    from torch import nn

    from deepconv_cli.errors import failure
    from deepconv_cli.models.heads import PoolHead
    from deepconv_cli.models.init import init_weights
    from deepconv_cli.models.interface import Classifier
    from deepconv_cli.models.spec import ArchSpec, ForeignWeights, WeightMap

    STRIDE = 4


    def conv_bn(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]


    class Residual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride), nn.ReLU(), *conv_bn(cout, cout, 3, 1))
            self.shortcut = nn.Sequential(*conv_bn(cin, cout, 1, stride))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.shortcut(x))


    class ToyResNet(Classifier):
        def __init__(self, num_classes: int, width: float, crop_size: int, init: str) -> None:
            super().__init__("toyres", crop_size)
            c = max(2, round(32 * width))
            self.features = nn.Sequential(*conv_bn(3, c, 3, 1), nn.ReLU(), Residual(c, c, 2), Residual(c, 2 * c, 2))
            self.classifier = PoolHead(2 * c, num_classes)
            init_weights(self, "kaiming" if init == "paper" else init)

        def blocks(self) -> list[list[nn.Module]]:
            stages = [[m for m in stage.modules() if isinstance(m, nn.Conv2d)] for stage in self.features[3:]]
            return [[self.features[0]], *stages]


    def from_reslib(state: dict[str, torch.Tensor], source: str, arch: str) -> ForeignWeights:
        if "fc.weight" not in state:
            raise failure("not a reslib state dict: no fc.weight")
        out = {k.replace("trunk.", "features.", 1): v for k, v in state.items() if k.startswith("trunk.")}
        out["classifier.fc.weight"] = state["fc.weight"].reshape(*state["fc.weight"].shape, 1, 1)
        out["classifier.fc.bias"] = state["fc.bias"]
        return ForeignWeights("toyres", out, state["fc.weight"].shape[0], 32)


    SPECS = [ArchSpec("toyres", "ToyResNet", ToyResNet, ("toy-resnet",), "seam test: residual, BN", 32,
                      weight_map=WeightMap(("reslib",), from_reslib), stride=STRIDE, title="ToyResNet")]
''')


def small(name: str) -> dict:
    """Cheap settings for any registered network: narrow, and its own crop."""
    return {"num_classes": 7, "width": 1.0 if name == "lenet5" else 0.125}  # LeNet-5's C3 table fixes its width


@pytest.mark.parametrize("arch", list(registry()))
def test_every_network_answers_the_interface(arch):
    torch.manual_seed(0)
    model = build(arch, **small(arch)).eval()
    crop = model.crop_size
    x = torch.rand(2, 3, crop, crop) * 255
    with torch.no_grad():
        scores = model(x)
        assert scores.shape == (2, 7) and model.num_classes == 7
        # the two export forms compute what the network computes, on a crop
        torch.testing.assert_close(model.export_module(fixed_size=True)(x), scores, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.export_module(fixed_size=False)(x), scores, rtol=1e-4, atol=1e-4)
        # dense: a larger, non-square image gives a score map and its mean
        big = torch.rand(1, 3, crop + 32, crop + 64) * 255
        assert model.score_map(big).shape[:2] == (1, 7)
        torch.testing.assert_close(model.export_module(False)(big), model(big), rtol=1e-4, atol=1e-4)
        assert model.descriptor_map(x).shape[0] == 2
    _, layer = model.last_layer()
    assert layer is model.weight_layers()[-1][1]
    model.replace_last_layer(4)
    assert model(x).shape == (2, 4) and model.num_classes == 4


def test_aliases_are_accepted_by_the_typed_option(tmp_path, digits_dir, capsys):
    """`--model.arch vgg16` is D; a typo is one line, exit 2, with a suggestion from the registry."""
    with pytest.raises(SystemExit) as done:
        deepconv(["train", "--data.data_dir", str(digits_dir), "--model.arch", "vgg16", "--print_config"])
    assert done.value.code == 0
    assert "arch: vgg16" in capsys.readouterr().out
    assert resolve_arch("VGG16") == "D" and get_spec("vgg19").name == "E"
    with pytest.raises(ValueError, match="did you mean"):
        resolve_arch("alexnt")


def test_checkpoints_of_0_1_0_still_load(trained_ckpt, tmp_path):
    """A 0.1.0 checkpoint (no `options` in the metadata, VGG by table name) loads to the same numbers."""
    ckpt = read_checkpoint(trained_ckpt)
    old = dict(ckpt["deepconv"])
    old.pop("options", None)
    old["version"] = "0.1.0"
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": ckpt["state_dict"], "deepconv": old}, path)
    new_model, _ = load_model(trained_ckpt)
    old_model, meta = load_model(path)
    assert isinstance(meta, ModelMeta) and meta.arch == "A"
    x = torch.rand(2, 3, 36, 36) * 255
    with torch.no_grad():
        assert torch.equal(new_model(x), old_model(x))


def _cli(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "deepconv_cli", *args], capture_output=True, text=True, env=env,
                         cwd=cwd, check=False)
    assert out.returncode == 0, f"{args[0]}: {out.stderr[-2000:]}"
    return out


def _plug_in(tmp_path, monkeypatch, module: str, source: str) -> dict:
    """`source` written as plugins/`module`.py and registered by the one line DEEPCONV_MODELS=`module`, here and in
    the subprocesses (the environment they run with)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(plugins))  # this process reads the checkpoints back, so it registers the toy too
    monkeypatch.setenv("DEEPCONV_MODELS", module)
    path = os.pathsep.join(p for p in (str(plugins), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"DEEPCONV_MODELS": module, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _whole_life(tmp_path, digits_dir, env: dict, arch: str, alias: str, library: str, title: str, foreign,
                below: float = 50) -> None:
    """`models` lists it; train (by alias), fine-tune, evaluate dense and multi-crop (top-1 error `below`, chance is
    90%), export to ONNX (verified at the family's stride), predict from the export, and import the trained weights
    written under `library`'s names (`foreign` renames deepconv's state dict) back bit-identical."""
    common = [f"--data.data_dir={digits_dir}", "--data.crop_size=32", "--data.s_min=36", "--data.s_max=36",
              "--data.batch_size=32", "--data.num_workers=0", "--trainer.max_epochs=2",
              "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu", "--model.lr=0.01"]
    models = json.loads(_cli(["models", "--json"], env, tmp_path).stdout)
    assert any(r["name"] == arch for r in models)
    _cli(["train", f"--model.arch={alias}", f"--trainer.default_root_dir={tmp_path / 'a'}", *common], env, tmp_path)
    first = tmp_path / "a" / "best.ckpt"
    _cli(["fine-tune", f"--model.arch={arch}", f"--init-from={first}", f"--trainer.default_root_dir={tmp_path / 'b'}",
          *common], env, tmp_path)
    tuned = tmp_path / "b" / "best.ckpt"
    for method in ("dense", "multi-crop"):
        out = _cli(["evaluate", "--ckpt", str(tuned), "--data", str(digits_dir / "val"), "--method", method,
                    "--limit", "40", "--json", str(tmp_path / f"{method}.json")], env, tmp_path)
        rows = json.loads((tmp_path / f"{method}.json").read_text())
        row = rows[0] if isinstance(rows, list) else rows["rows"][0]
        assert row["top1_error"] < below, out.stdout  # far below chance (90%) after 2 + 2 epochs
    export = _cli(["export", "--ckpt", str(tuned), "--format", "onnx", "--out", str(tmp_path / "toy.onnx")], env,
                  tmp_path)
    assert "2x3x39x45" in export.stdout  # verified on sizes straddling the toy's own stride (4), not VGG's 32
    pred = _cli(["predict", "--ckpt", str(tmp_path / "toy.onnx"), str(digits_dir / "val" / "3"), "--json",
                 str(tmp_path / "pred.json")], env, tmp_path)
    predictions = json.loads((tmp_path / "pred.json").read_text())
    assert len(predictions) == len(list((digits_dir / "val" / "3").iterdir())), pred.stdout

    # import: the trained weights under the library's names come back bit-identical, by the map the toy's model
    # file declares; the arch is inferred ("auto") from the one family that reads that library
    model, _ = load_model(tuned)
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("normalize.")}
    torch.save(foreign(ours), tmp_path / "foreign.pth")
    imported = _cli(["import", "--from", library, str(tmp_path / "foreign.pth"), "--out", str(tmp_path / "in.ckpt")],
                    env, tmp_path)
    assert f"{title} from {library} weights" in imported.stdout
    back, meta = load_model(tmp_path / "in.ckpt")
    assert meta.arch == arch and meta.crop_size == 32
    assert all(torch.equal(back.state_dict()[k], v) for k, v in ours.items())


@pytest.mark.slow
def test_a_new_architecture_is_one_file_and_one_registry_line(tmp_path, digits_dir, monkeypatch):
    names = {"features.0": "stem.conv", "features.1": "stem.bn", "classifier.fc1": "head.hidden",
             "classifier.fc2": "head.out"}

    def toylib(ours: dict) -> dict:  # FC layers as Linear
        foreign = {}
        for key, value in ours.items():
            prefix, _, leaf = key.rpartition(".")
            linear = prefix.startswith("classifier.") and leaf == "weight"
            foreign[f"{names[prefix]}.{leaf}"] = value.flatten(1) if linear else value
        return foreign

    env = _plug_in(tmp_path, monkeypatch, "toy_net", TOY)
    _whole_life(tmp_path, digits_dir, env, "toy", "toynet", "toylib", "ToyNet", toylib)


@pytest.mark.slow
def test_a_resnet_style_family_is_one_file_and_one_registry_line(tmp_path, digits_dir, monkeypatch):
    """A family unlike VGG: strided 3x3 convolutions without bias, batch norm, residual adds, global pooling, its
    blocks declared (no max-pooling to find), a builder taking only the options it uses, deepconv's own init."""

    def reslib(ours: dict) -> dict:  # `trunk.` for `features.`, the class layer `fc` as a Linear
        return {("fc." + k.split(".")[-1] if k.startswith("classifier.") else k.replace("features.", "trunk.", 1)):
                (v.flatten(1) if k == "classifier.fc.weight" else v) for k, v in ours.items()}

    env = _plug_in(tmp_path, monkeypatch, "toy_resnet", RESNET)
    model = build("toyres", num_classes=7, width=0.125)
    assert [len(b) for b in model.blocks()] == [1, 3, 3] and len(model.layer_norms()) == 7
    assert all(m.bias is None for _, m in model.trunk_layers())
    assert all(torch.equal(n.weight, torch.ones_like(n.weight)) for n in model.layer_norms().values())
    # global pooling keeps no position: on the digits it learns slower than an FC head (45% after 2 + 2 epochs)
    _whole_life(tmp_path, digits_dir, env, "toyres", "toy-resnet", "reslib", "ToyResNet", reslib, below=70)


def test_a_mistyped_architecture_is_one_line_with_a_suggestion(tmp_path, capsys):
    ckpt = tmp_path / "a.ckpt"
    ckpt.write_bytes(b"")  # never read: the name is checked first
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  arch: vgg166\n")
    for args in (["models", "vgg166"], ["train", "--model.arch", "vgg166"], ["train", "-c", str(config)],
                 ["fine-tune", f"--init_from={ckpt}", "--model.arch=vgg166"]):
        capsys.readouterr()
        assert deepconv(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "unknown architecture 'vgg166'; did you mean vgg16?" in err, err


def test_a_registered_name_cannot_be_registered_again(tmp_path, monkeypatch, capsys):
    """A plug-in reusing a name or alias (case-insensitively) is refused in one line, never silently replaces."""
    (tmp_path / "dup_net.py").write_text(TOY.replace('aliases=("toynet",)', 'aliases=("VGG16",)'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEEPCONV_MODELS", "dup_net")
    with pytest.raises(DeepconvError, match="'VGG16' of dup_net is already registered by deepconv_cli.models.vgg"):
        registry()
    assert deepconv(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already registered" in err, err
