"""`deepconv benchmark gpu`: one line and exit 2 without CUDA; with --allow_cpu and --size tiny the whole code path
(generated JPEGs, both loaders, a real `deepconv train` of the recipe, raw PyTorch, evaluation) on the CPU, every
figure of the JSON a positive number and a row of the markdown table."""

import json
import subprocess
import sys

import pytest
import torch

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.benchmarks.gpu import FIGURES


def test_help_answers_without_importing_torch():
    code = ("import sys\nfrom deepconv_cli.__main__ import main\ntry:\n    main(['benchmark', 'gpu', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--allow_cpu" in done.stdout and done.stdout.strip().endswith("False")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_without_cuda_it_says_so_in_one_line_and_exits_2(tmp_path, capsys):
    assert deepconv(["benchmark", "gpu", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU" in err[0] and "--allow_cpu" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tiny_run_on_the_cpu_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "out"
    code = deepconv(["benchmark", "gpu", "--out", str(out), "--allow_cpu", "--size", "tiny", "--workers", "1",
                     "--peak_tflops", "1"])
    assert code == 0
    result = json.loads((out / "gpu.json").read_text())
    assert list(result["figures"]) == list(FIGURES)
    for key, value in result["figures"].items():
        if key == "loader_device_decode_images_per_second" and not torch.cuda.is_available():
            assert value is None  # nvJPEG needs a CUDA device: not measured, never a CPU figure under its name
            continue
        assert isinstance(value, float) and value > 0, key
    if not torch.cuda.is_available():
        assert "not measured (no CUDA device)" in (out / "gpu.md").read_text()
    assert result["settings"]["train_command"].startswith("deepconv train -c ")
    assert "vgg_d_s256_512.yaml" in result["settings"]["train_command"]
    table = (out / "gpu.md").read_text()
    assert all(f"| {what} |" in table for what, _ in FIGURES.values())
    log = (out / "train.log").read_text()
    assert "precision 32-true" in log and "VGG" in log  # the real `deepconv train` run's own output
    assert not list(out.glob("train-run-*"))  # the training run's folder (checkpoint) is removed
