"""`deepconv benchmark`: each benchmark runs end to end on tiny sizes and writes JSON with a speedup per comparison."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.benchmarks.train_step import forward_flops
from deepconv_cli.models.vgg import VGG
from deepconv_cli.training.module import ClassifierModule


def run_json(tmp_path, *args: str) -> dict:
    out = tmp_path / "result.json"
    assert deepconv(["benchmark", *args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for c in result["comparisons"].values():
        expected = c["ours"] / c["baseline"] if c["higher_is_better"] else c["baseline"] / c["ours"]
        assert c["speedup"] == pytest.approx(expected) and c["speedup"] > 0
    return result


def test_loader_benchmark_writes_a_speedup(tmp_path):
    result = run_json(tmp_path, "loader", "--data", str(tmp_path / "jpegs"), "--images", "4", "--runs", "1",
                      "--batch_size", "2")
    assert list(result["comparisons"]) == ["loader"]
    assert len(list((tmp_path / "jpegs" / "c0").glob("*.jpg"))) == 4  # the synthetic JPEGs are kept for reuse


def test_loader_stages_account_for_the_whole_loader(tmp_path):
    """--stages: read, header, decode, resize, flip and collate timed apart; their sum is one worker's time per image
    and the row's rate is its inverse (how it compares with the loader's rate is a measurement, printed, not tested:
    on a shared machine the two differ by more than 3x)."""
    result = run_json(tmp_path, "loader", "--data", str(tmp_path / "jpegs"), "--images", "8", "--runs", "1",
                      "--batch_size", "4", "--stages", "true")
    loader, stages = result["comparisons"]["loader"], result["comparisons"]["loader stages"]
    assert stages["baseline"] == 500 and stages["unit"] == "images/s per core"
    parts = [k for k in stages["extra"] if k.endswith("(ms/image)")]
    assert len(parts) == 6 and float(stages["extra"]["decode (DCT downscale) (ms/image)"].split()[0]) > 0
    total_ms = sum(float(stages["extra"][k].split()[0]) for k in parts)
    assert loader["ours"] > 0 and abs(stages["ours"] - 1000 / total_ms) <= 0.01 * stages["ours"] + 1000 / total_ms ** 2


def test_train_benchmark_compares_lightning_with_a_raw_loop_and_the_speed_options(tmp_path):
    result = run_json(tmp_path, "train", "--steps", "3", "--runs", "1", "--batch_size", "4", "--options", "true")
    assert list(result["comparisons"]) == ["train step", "speed options"]
    assert result["comparisons"]["speed options"]["extra"]["precision"] == "bf16-mixed"


def test_train_benchmark_times_the_real_loader_with_data_and_reports_mfu(tmp_path, digits_dir):
    """--data: both sides read ImageFolderData's loader (10 digit classes, whatever --classes says) and the JSON
    keeps `speedup` and adds `mfu`, null on a CPU."""
    result = run_json(tmp_path, "train", "--data", str(digits_dir), "--classes", "3", "--steps", "4", "--runs", "1",
                      "--batch_size", "8", "--num_workers", "0", "--s_min", "36", "--s_max", "40", "--device", "cpu")
    step = result["comparisons"]["train step"]
    assert result["settings"]["classes"] == 10 and result["settings"]["s_max"] == 40
    assert step["extra"]["data"] == f"real loader on {digits_dir}"
    assert step["speedup"] > 0 and step["extra"]["images/s (Lightning)"] > 0
    assert "mfu" in step and step["mfu"] is None
    assert 0 <= step["extra"]["data wait fraction (Lightning, whole run)"] <= 1  # train's own figure, stopped mid-epoch


def test_evaluate_benchmark_writes_a_speedup(tmp_path):
    result = run_json(tmp_path, "evaluate", "--images", "1", "--runs", "1")
    assert result["settings"]["crop"] == 32 and list(result["comparisons"]) == ["evaluation"]


@pytest.mark.slow
def test_startup_benchmark_writes_a_speedup(tmp_path):
    result = run_json(tmp_path, "startup", "--runs", "1", "--only", "deepconv --help,train --help,evaluate --ckpt")
    assert list(result["comparisons"]) == ["deepconv --help", "train --help", "evaluate --ckpt missing"]
    assert all(row["unit"] == "s" and row["ours"] > 0 for row in result["comparisons"].values())


def test_prepare_benchmark_times_scan_and_statistics_and_projects_them(tmp_path):
    from deepconv_cli.benchmarks.prepare import projected_seconds

    result = run_json(tmp_path, "prepare", "--data", str(tmp_path / "jpegs"), "--images", "6", "--runs", "1",
                      "--cores", "4")
    rows = result["comparisons"]
    assert list(rows) == ["bad-image scan", "mean RGB + PCA statistics"]
    scan, stats = rows["bad-image scan"], rows["mean RGB + PCA statistics"]
    assert scan["unit"] == "img/s" and scan["baseline"] > 0 and stats["baseline"] > 0
    # the projection is the one-process rates spread over 4 cores: 100,000 files scanned, 10,000 for statistics
    assert scan["extra"]["projected_seconds_100k_files"] == pytest.approx(
        projected_seconds(scan["baseline"], stats["baseline"], 4), abs=0.05)


@pytest.mark.slow
def test_prepare_packed_row_times_a_real_pack_against_the_folder(tmp_path):
    """--packed true packs the same JPEGs (litdata) and times its statistics against the folder's scan + statistics."""
    from deepconv_cli.data.packed import read_meta

    result = run_json(tmp_path, "prepare", "--data", str(tmp_path / "jpegs"), "--images", "6", "--runs", "1",
                      "--packed", "true")
    row = result["comparisons"]["time to the first step (first run)"]
    assert row["unit"] == "s" and row["ours"] > 0 and row["baseline"] > 0 and row["extra"]["images"] == 6
    assert row["extra"]["pack_seconds_once"] > 0
    assert len(read_meta(tmp_path / "jpegs" / "packed-6")["splits"]["train"]["labels"]) == 6


@pytest.mark.parametrize("args,message", [
    (["train", "--arch", "Z"], "unknown architecture"),
    (["loader", "--s_min", "100"], "crop <= s_min"),
    (["evaluate", "--crop", "50"], "multiple of 32"),
])
def test_bad_settings_are_one_line_usage_errors(capsys, args, message):
    assert deepconv(["benchmark", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize("arch,width,crop", [("A", 0.25, 64), ("C", 0.25, 64), ("B-shallow", 0.25, 64),
                                             ("E", 0.125, 96)])
def test_analytic_flops_match_torchs_flop_counter(arch, width, crop):
    """The table-derived FLOPs (used for model FLOP utilisation) equal what torch counts on the real network."""
    model = VGG(arch, 10, width, crop).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, crop, crop))
    assert forward_flops(arch, crop, width, 10) == counter.get_total_flops()


def test_vgg16_forward_is_15_5_gmacs():
    assert forward_flops("D") / 2 == pytest.approx(15.47e9, rel=0.002)


def test_speed_options_keep_outputs_and_checkpoint_names():
    plain = ClassifierModule("A", 10, width=0.125, crop_size=32, channels_last=False).eval()
    fast = ClassifierModule("A", 10, width=0.125, crop_size=32, channels_last=True, compile=True).eval()
    fast.load_state_dict(plain.state_dict())
    fast.compile_model = False  # compiling is slow on CPU; its effect on names is checked separately below
    fast.configure_model()
    x = torch.rand(2, 3, 32, 32) * 255
    assert fast.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), plain(x), atol=1e-4, rtol=1e-4)
    plain.model.compile()
    assert list(plain.state_dict()) == list(fast.state_dict())


def test_train_benchmark_builds_the_loop_deepconv_train_builds(tmp_path, digits_dir):
    """`benchmark train` is `deepconv train` with synthetic data and a clock: the same module class, callbacks,
    precision, memory format, compile setting and optimizer as `deepconv train` given the same settings."""
    from deepconv_cli.benchmarks.synthetic_data import SyntheticData
    from deepconv_cli.benchmarks.train_clock import TrainClock
    from deepconv_cli.benchmarks.train_step import build_train_cli, train_argv
    from deepconv_cli.cli.train import start

    settings = dict(precision="bf16-mixed", channels_last=True, compile=True)
    bench_argv = train_argv("A", 0.125, 32, 10, 8, 5, torch.device("cpu"), tmp_path / "bench",
                            clock=tmp_path / "clock.json", **settings)
    bench = build_train_cli(bench_argv, None)
    train_argv_ = [a for a in train_argv("A", 0.125, 32, 10, 8, 5, torch.device("cpu"), tmp_path / "train",
                                         **settings) if not a.startswith(("--data.class_count", "--data.steps"))]
    train = start([*train_argv_, f"--data.data_dir={digits_dir}"])  # builds only: the run folder's lock is fit's
    assert isinstance(bench.datamodule, SyntheticData)
    assert [type(c) for c in bench.trainer.callbacks] == [TrainClock] + [type(c) for c in train.trainer.callbacks]
    assert type(bench.model) is type(train.model)
    assert bench.trainer.precision == train.trainer.precision == "bf16-mixed"
    assert bench.model.channels_last is train.model.channels_last is True
    assert bench.model.compile_model is train.model.compile_model is True
    ours, theirs = (cli.model.configure_optimizers()["optimizer"] for cli in (bench, train))
    assert type(ours) is type(theirs) and ours.defaults == theirs.defaults
    assert type(bench.trainer.strategy) is type(train.trainer.strategy)
    assert bench.trainer.accumulate_grad_batches == train.trainer.accumulate_grad_batches


def test_compare_train_needs_data(capsys):
    assert deepconv(["benchmark", "train", "--compare_train", "true"]) == 2
    assert "--compare_train needs --data" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_train_runs_deepconv_train_as_a_command_beside_the_benchmark(tmp_path, digits_dir):
    """--compare_train: `deepconv train` in a fresh process (same settings, same data) timed by the same clock; the
    row holds both images/s and the command that was run."""
    result = run_json(tmp_path, "train", "--data", str(digits_dir), "--compare_train", "true", "--steps", "3",
                      "--runs", "1", "--batch_size", "8", "--num_workers", "0", "--s_min", "36", "--s_max", "40",
                      "--device", "cpu")
    row = result["comparisons"]["benchmark vs deepconv train"]
    assert row["ours"] > 0 and row["baseline"] > 0 and row["unit"] == "images/s"
    assert row["extra"]["command"].startswith("deepconv train --model.arch=A") and str(digits_dir) in \
        row["extra"]["command"]
