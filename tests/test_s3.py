"""Object storage on a real S3 server (moto's, over TLS, as tools/s3_local.sh starts it): a pack written to
s3:// trains, evaluates, describes and gives statistics exactly as the same pack on local disk, a killed run resumes
from it exactly, and a missing bucket, refused credentials or a server gone are one line each."""

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import torch
from engines import start_s3, stop_s3
from helpers import QUICKSTART_A, digits_subset, free_port

from deepconv_cli.__main__ import main as deepconv

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
KILL_AT_6 = '--trainer.callbacks+={"class_path": "helpers.SignalAtStep", "init_args": {"step": 6, "signum": 9}}'


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The server's AWS_* variables, set in this process (and so in the commands it starts) for the module."""
    folder = tmp_path_factory.mktemp("s3server")
    env, started = start_s3(folder, free_port())
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if started:
        stop_s3(folder)


def new_bucket(env: dict | None = None) -> str:
    """A new bucket on the module's server (or the one `env` names)."""
    import boto3

    name = f"deepconv-{uuid.uuid4().hex[:12]}"
    where = {"endpoint_url": env["AWS_ENDPOINT_URL"], "verify": env["AWS_CA_BUNDLE"]} if env else {}
    boto3.client("s3", **where).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def packs(s3, digits_dir, tmp_path_factory) -> tuple[Path, str]:
    """The same 80 + 40 digits packed on local disk and to s3://BUCKET/digits."""
    root = tmp_path_factory.mktemp("s3data")
    tree = digits_subset(digits_dir, root / "tree", 8, 4)
    url = f"s3://{new_bucket()}/digits"
    for out in (root / "packed", url):
        assert deepconv(["data", "pack", str(tree), str(out), "--workers", "1"]) == 0
    return root / "packed", url


def run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "DEEPCONV_S3_ATTEMPTS": "2",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "deepconv_cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def train_args(data: str | Path, run_dir: Path) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", "--trainer.max_epochs=3", "--last_every_n_steps=1",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false"]


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def s3_run(packs, tmp_path_factory) -> Path:
    """An uninterrupted run on the S3 pack, its chunks cached in a chosen folder (DEEPCONV_CACHE_DIR)."""
    run_dir = tmp_path_factory.mktemp("s3run")
    os.environ["DEEPCONV_CACHE_DIR"] = str(run_dir / "cache")
    try:
        assert deepconv(train_args(packs[1], run_dir / "run")) == 0
    finally:
        del os.environ["DEEPCONV_CACHE_DIR"]
    return run_dir


def test_training_on_s3_equals_the_local_pack_and_caches_where_asked(packs, s3_run, tmp_path):
    assert deepconv(train_args(packs[0], tmp_path / "local")) == 0
    a, b = weights(tmp_path / "local"), weights(s3_run / "run")
    assert a["global_step"] == b["global_step"] == 12
    for name, weight in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], weight), name
    assert list((s3_run / "cache").rglob("chunk-*.bin")), "litdata's chunks are not in DEEPCONV_CACHE_DIR"


def test_kill9_mid_epoch_then_rerun_resumes_from_s3_exactly(packs, s3_run, tmp_path):
    """80 images, batch 20: 4 steps an epoch; kill -9 at step 6 (epoch 1), the same command again resumes there
    and ends on the uninterrupted run's weights (one process, num_workers 0)."""
    run_dir = tmp_path / "killed"
    killed = run([*train_args(packs[1], run_dir), KILL_AT_6])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (weights(run_dir)["epoch"], weights(run_dir)["global_step"]) == (1, 6)
    resumed = run(train_args(packs[1], run_dir))
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout, resumed.stderr[-2000:]
    a, b = weights(s3_run / "run"), weights(run_dir)
    assert b["global_step"] == a["global_step"] == 12
    for name, weight in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], weight), name


def test_evaluate_features_and_stats_read_s3_as_the_local_pack(packs, s3_run, tmp_path, capsys):
    from deepconv_cli.features.store import read_features

    ckpt = s3_run / "run" / "last.ckpt"
    rows, feats, tables = [], [], []
    for name, data in zip(("local", "s3"), packs):
        out = tmp_path / f"{name}.json"
        assert deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(data), "--num_workers", "0",
                         "--method", "center", "--json", str(out)]) == 0
        rows.append([{k: v for k, v in row.items() if "second" not in k and "time" not in k}
                     for row in json.loads(out.read_text())])
        assert deepconv(["features", "--ckpt", str(ckpt), "--data", f"{data}/val", "--scales", "32",
                         "--num_workers", "0", "--out", str(tmp_path / f"{name}.safetensors")]) == 0
        feats.append(read_features(tmp_path / f"{name}.safetensors"))
        capsys.readouterr()
        assert deepconv(["stats", str(data)]) == 0
        out = capsys.readouterr().out
        assert "80 images" in out
        tables.append([line for line in out.splitlines() if "mean (0..255)" in line or "PCA eigvec" in line])
    assert rows[0] == rows[1] and rows[0][0]["images"] == 40
    assert torch.equal(feats[0].descriptors, feats[1].descriptors) and feats[0].paths == feats[1].paths
    assert tables[0] == tables[1] and len(tables[0]) == 4


def test_an_s3_pack_continues_only_from_its_own_source_and_restart_starts_over(s3, digits_dir, tmp_path, capsys):
    """The source fingerprint kept under OUT: the same command again is a no-op; after the source changed, or over
    objects deepconv did not write, one line naming --restart; --restart deletes what is there and packs anew."""
    from deepconv_cli.data import storage

    tree = digits_subset(digits_dir, tmp_path / "tree", 2, 1)
    bucket = new_bucket()
    url = f"s3://{bucket}/digits"
    pack = ["data", "pack", str(tree), url, "--workers", "1"]
    assert deepconv(pack) == 0
    assert deepconv(pack) == 0  # the same source and options: the finished splits are kept
    next((tree / "train" / "3").iterdir()).unlink()
    capsys.readouterr()
    assert deepconv(pack) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "other source files or options" in err[0] and "--restart" in err[0], err
    assert storage.indexed_items(f"{url}/train/index.json") == 20  # refused: nothing touched
    assert deepconv([*pack, "--restart"]) == 0
    meta = json.loads(storage.read_bytes(f"{url}/deepconv-packed.json"))
    assert len(meta["splits"]["train"]["names"]) == 19 and storage.indexed_items(f"{url}/train/index.json") == 19
    foreign = f"s3://{bucket}/theirs"
    storage.write_bytes(f"{foreign}/notes.txt", b"not a pack")
    assert deepconv(["data", "pack", str(tree), foreign, "--workers", "1"]) == 1
    assert storage.read_bytes(f"{foreign}/notes.txt") == b"not a pack"


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def set_auth(endpoint: str, ca: str, free_actions: str) -> None:
    """moto checks credentials after `free_actions` more requests ("inf": never, its default)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=free_actions.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca), timeout=10).read()


def test_missing_bucket_refused_credentials_and_no_server_are_one_line_each(s3, packs, tmp_path):
    import boto3

    tree = tmp_path / "tree"
    digits_subset(Path(packs[0]).parent / "tree", tree, 1, 1)
    missing = run(["data", "pack", str(tree), "s3://no-such-bucket-here/digits", "--workers", "1"])
    assert missing.returncode == 2 and "bucket 'no-such-bucket-here' does not exist" in one_line(missing)
    reading = run(["evaluate", "--ckpt", str(tmp_path / "none.ckpt"), "--data", "s3://no-such-bucket-here/x"])
    assert reading.returncode == 2 and one_line(reading)
    bucket = new_bucket()
    set_auth(s3["AWS_ENDPOINT_URL"], s3["AWS_CA_BUNDLE"], "0")
    try:
        refused = run(["data", "pack", str(tree), f"s3://{bucket}/digits", "--workers", "1"])
        stats = run(["stats", packs[1]])
    finally:
        set_auth(s3["AWS_ENDPOINT_URL"], s3["AWS_CA_BUNDLE"], "inf")
    assert refused.returncode == 2 and "refused the credentials" in one_line(refused)
    assert stats.returncode == 2 and "refused the credentials" in one_line(stats)
    nobody = {"AWS_ENDPOINT_URL": f"https://127.0.0.1:{free_port()}"}
    gone = run(["data", "pack", str(tree), f"s3://{bucket}/digits", "--workers", "1"], env=nobody)
    assert gone.returncode == 1 and "cannot reach" in one_line(gone)
    stats = run(["stats", packs[1]], env=nobody)
    assert stats.returncode == 1 and "cannot reach" in one_line(stats)
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # nothing written half


def test_server_gone_mid_run_ends_with_one_line_after_retries(packs, tmp_path):
    """A second server holds a copy of the pack; training pauses at step 1 (the training chunk downloaded), the
    server is stopped, and the validation split it then opens cannot come: retries, then one line (after
    Lightning's usual notices), exit 1 — not litdata's 1000 attempts, not a traceback."""
    env, _ = start_s3(tmp_path / "server", free_port(), own=True)
    try:
        url = f"s3://{new_bucket(env)}/digits"
        packed = run(["data", "pack", str(Path(packs[0]).parent / "tree"), url, "--workers", "1"], env=env)
        assert packed.returncode == 0, packed.stderr[-2000:]
        pause = '--trainer.callbacks+={"class_path": "helpers.PauseAtStep", "init_args": {"step": 1, "seconds": 20}}'
        args = [sys.executable, "-m", "deepconv_cli", *train_args(url, tmp_path / "run"), pause]
        child_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
                     "DEEPCONV_CACHE_DIR": str(tmp_path / "cache"), "DEEPCONV_S3_ATTEMPTS": "2"}
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
        for _ in range(6000):  # up to 10 min: a loaded machine starts slowly
            if (tmp_path / "run" / "paused").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        stop_s3(tmp_path / "server")
    out, err = proc.communicate(timeout=300)
    assert (tmp_path / "run" / "paused").exists(), err[-2000:]  # the server went while training ran
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert proc.returncode == 1 and "Traceback" not in err and "CRASHED" not in err, err[-3000:]
    assert last.startswith("deepconv train: error: ") and re.search("cannot reach|stopped answering", last), last
