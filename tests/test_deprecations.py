"""No deprecated call in deepconv's own code: representative commands run with every DeprecationWarning and
FutureWarning traced back to its caller, and one whose first caller outside the warning library is deepconv_cli
fails the test (a library's warning about its own use of another library is its business, not ours)."""

import io
import traceback
import warnings
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.device_decode import crops_from_jpegs

PACKAGE = Path(__file__).resolve().parents[1] / "deepconv_cli"
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def caller_outside(library_file: str) -> str:
    """The first frame of the current stack, from the warning outwards, outside the warning's top package."""
    site = Path(library_file).resolve()
    top = next((parent for parent in site.parents if not (parent / "__init__.py").is_file()), site.parent)
    package = site.relative_to(top).parts[0] if site.is_relative_to(top) else site.name
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(top / package) or "warnings" in path.name:
            continue
        return frame.filename
    return library_file


class DeprecationsFromDeepconv:
    """While active, every deprecation warning that reaches the display is checked: its first caller outside the
    warning's library must not be in deepconv_cli."""

    def __init__(self) -> None:
        self.ours: list[str] = []

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, DEPRECATIONS):
            caller = filename if Path(filename).resolve().is_relative_to(PACKAGE) else caller_outside(filename)
            if Path(caller).resolve().is_relative_to(PACKAGE):
                self.ours.append(f"{caller}: {category.__name__}: {str(message).splitlines()[0][:160]}")

    def __enter__(self):
        self.context = warnings.catch_warnings()
        self.context.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc) -> None:
        self.context.__exit__(*exc)


def jpeg_bytes(width: int, height: int) -> torch.Tensor:
    """A JPEG file's bytes as a 1-D uint8 tensor (what the device decode path reads)."""
    jpeg = io.BytesIO()
    Image.new("RGB", (width, height), (90, 30, 200)).save(jpeg, "JPEG")
    return torch.frombuffer(bytearray(jpeg.getvalue()), dtype=torch.uint8)


def test_the_check_sees_a_deprecated_call_made_by_deepconv(tmp_path):
    """The torchvision JPEG decoder (deprecated in 0.29) called from a deepconv module is reported; called from
    here it is not."""
    from torchvision.io import decode_jpeg

    data = jpeg_bytes(8, 8)
    with DeprecationsFromDeepconv() as check:
        decode_jpeg(data)
    assert check.ours == []
    module = PACKAGE / "data" / "_probe_for_test.py"
    source = "from torchvision.io import decode_jpeg\ndef probe(d):\n    return decode_jpeg(d)\n"
    code = compile(source, str(module), "exec")
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - a function whose frames say it lives in deepconv_cli
    with DeprecationsFromDeepconv() as check:
        namespace["probe"](data)
    assert len(check.ours) == 1 and "decod" in check.ours[0]


@pytest.mark.slow
def test_representative_commands_make_no_deprecated_call(digits_dir, tmp_path, capsys, monkeypatch):
    """train (LightningCLI), evaluate, every export format, predict, models and a device-decode batch."""
    monkeypatch.setenv("JSONARGPARSE_DEPRECATION_WARNINGS", "all")  # else jsonargparse shows one per kind, ever
    run = tmp_path / "run"
    with DeprecationsFromDeepconv() as check:
        assert deepconv(["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}",
                         f"--trainer.default_root_dir={run}", "--trainer.max_epochs=1", "--data.num_workers=0",
                         "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
                         "--trainer.enable_progress_bar=false"]) == 0
        ckpt = next(run.glob("*.ckpt"))
        assert deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(digits_dir / "val"), "--limit", "8",
                         "--num_workers", "0", "--device", "cpu"]) == 0
        for fmt in ("onnx", "pt2", "torchscript", "safetensors"):
            out = tmp_path / f"model.{fmt}"
            assert deepconv(["export", "--ckpt", str(ckpt), "--format", fmt, "--out", str(out)]) == 0
            assert deepconv(["predict", "--ckpt", str(out), str(next((digits_dir / "val" / "3").iterdir()))]) == 0
        assert deepconv(["models", "A"]) == 0
        assert crops_from_jpegs([jpeg_bytes(48, 40)], [(40.0, 0.0, 0.0, False)], 32, "cpu").shape == (1, 3, 32, 32)
    capsys.readouterr()
    assert check.ours == []
