"""SLURM for real, on the one-host cluster of tools/slurm_local.sh: docs/slurm/train.sbatch as shipped (given only
the data and the run folder) trains on 2 tasks through Lightning's SLURM environment; `scontrol requeue` mid-epoch
and the time-limit signal (--signal=USR1) each stop the job with its checkpoint, requeue it, and the resumed job
ends on the weights of an uninterrupted 2-task job. The three jobs are submitted together (SLURM runs them one
after the other on 2 CPUs, and the requeued ones wait out SLURM's requeue delay while the next one runs)."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engines import require_slurm
from helpers import digits_subset

from deepconv_cli.__main__ import main as deepconv

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "docs" / "slurm" / "train.sbatch"
pytestmark = pytest.mark.slow
OPTIONS = ["--trainer.max_epochs", "2", "--data.batch_size", "10", "--trainer.log_every_n_steps", "2",
           "--trainer.enable_progress_bar", "false", "--trainer.num_sanity_val_steps", "0"]
PAUSE = '--trainer.callbacks+={"class_path": "helpers.PauseAtStep", "init_args": {"step": 3}}'


def job_env() -> dict[str, str]:
    """A job's environment: this venv's commands and the tests' helpers; no MASTER_ADDR/PORT (Lightning sets them)."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    return {**inherited, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}


def sbatch(out: Path, data: Path, run_dir: Path, *extra: str, options: tuple[str, ...] = ()) -> str:
    env = job_env()
    done = subprocess.run(["sbatch", "--parsable", f"--output={out}", *options, str(SBATCH), str(data), str(run_dir),
                           *OPTIONS, *extra], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    return done.stdout.strip().split(";")[0]


def job_state(job: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S+)", text))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def jobs(digits_dir, tmp_path_factory) -> dict[str, tuple[str, Path, str]]:
    """{name: (job id, run folder, job output)} of the uninterrupted, the requeued and the time-limited job."""
    require_slurm()
    root = tmp_path_factory.mktemp("slurm")
    pack = root / "pack"
    assert deepconv(["data", "pack", str(digits_subset(digits_dir, root / "tree", 8, 4)), str(pack),
                     "--workers", "1"]) == 0
    ids = {
        "whole": sbatch(root / "whole.out", pack, root / "whole"),
        "requeued": sbatch(root / "requeued.out", pack, root / "requeued", PAUSE),
        # SIGUSR1 100 s before a 3-minute limit: the job is paused at step 3 when it comes
        "time_limit": sbatch(root / "time_limit.out", pack, root / "time_limit", PAUSE,
                             options=("--time=3", "--signal=USR1@100")),
    }
    try:
        wait_for(lambda: (root / "requeued" / "paused").exists(), 600, "the requeued job to reach step 3")
        subprocess.run(["scontrol", "requeue", ids["requeued"]], check=True)
        wait_for(lambda: all(job_state(j).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
                             for j in ids.values()), 900, "the three jobs to end")
    except BaseException:
        subprocess.run(["scancel", *ids.values()])
        raise
    return {name: (job, root / name, (root / f"{name}.out").read_text()) for name, job in ids.items()}


def last(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)


def test_train_sbatch_as_shipped_runs_two_tasks_through_lightnings_slurm_environment(jobs):
    job, run_dir, out = jobs["whole"]
    assert job_state(job)["JobState"] == "COMPLETED", out[-3000:]
    assert "1 node(s) x 2 task(s)" in out and "MEMBER: 1/2" in out and "MEMBER: 2/2" in out, out[-3000:]
    assert "SLURM auto-requeueing enabled" in out  # Lightning chose its SLURMEnvironment
    assert last(run_dir)["epoch"] == 1 and (run_dir / "best.ckpt").is_file()


@pytest.mark.parametrize("name,signal", [("requeued", "SIGTERM"), ("time_limit", "SIGUSR1")])
def test_a_requeued_job_resumes_mid_epoch_and_ends_on_the_uninterrupted_weights(jobs, name, signal):
    job, run_dir, out = jobs[name]
    state = job_state(job)
    assert state["JobState"] == "COMPLETED" and int(state["Restarts"]) >= 1, out[-3000:]
    whole = last(jobs["whole"][1])
    per_epoch = whole["global_step"] // (whole["epoch"] + 1)
    stopped = re.search(rf"stopped by {signal} at epoch 0, step (\d+): saved", out)
    assert stopped and int(stopped.group(1)) % per_epoch, out[-3000:]  # saved mid-epoch
    assert "(restart 1)" in out and "resuming from" in out
    resumed = last(run_dir)
    assert resumed["global_step"] == whole["global_step"]
    for key, weight in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], weight), key


def test_recipe_sbatch_requeued_mid_stage_continues_the_chain_from_the_saved_step(digits_dir, tmp_path):
    """docs/slurm/recipe.sbatch as shipped, given a two-stage recipe (train, then evaluate its best.ckpt):
    `scontrol requeue` while the training stage is paused at step 3 stops it with its checkpoint; the requeued job
    runs the recipe again, which resumes that stage from the saved step (not from scratch) and runs the next one."""
    require_slurm()
    import yaml

    tree = digits_subset(digits_dir, tmp_path / "tree", 8, 4)
    recipe = tmp_path / "chain.yaml"
    options = [f"{key}={value}" for key, value in zip(OPTIONS[::2], OPTIONS[1::2])]
    train = [f"--data.data_dir={tree}", "--data.num_workers=0", *options, PAUSE]
    recipe.write_text(yaml.safe_dump({"run_root": str(tmp_path / "runs"), "stages": [
        {"name": "a", "command": "train", "config": str(REPO / "recipes" / "quickstart" / "vgg_a.yaml"), "args": train},
        {"name": "eval_a", "command": "evaluate", "ckpt": "a",
         "args": ["--data", str(tree / "val"), "--json", "{run_dir}/results.json"]}]}))
    out = tmp_path / "job.out"
    job = subprocess.run(["sbatch", "--parsable", f"--output={out}", str(REPO / "docs" / "slurm" / "recipe.sbatch"),
                          str(recipe)], capture_output=True, text=True, cwd=REPO, env=job_env(),
                         check=True).stdout.strip().split(";")[0]
    try:
        wait_for(lambda: (tmp_path / "runs" / "a" / "paused").exists(), 600, "the training stage to reach step 3")
        subprocess.run(["scontrol", "requeue", job], check=True)
        wait_for(lambda: job_state(job).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 600,
                 "the requeued job to end")
    except BaseException:
        subprocess.run(["scancel", job])
        raise
    text = out.read_text()
    state = job_state(job)
    assert state["JobState"] == "COMPLETED" and int(state["Restarts"]) >= 1, text[-3000:]
    stopped = re.search(r"stopped by SIGTERM at epoch 0, step (\d+): saved", text)
    assert stopped and int(stopped.group(1)) >= 3, text[-3000:]
    assert "(restart 1)" in text and "resuming from" in text, text[-3000:]
    run = tmp_path / "runs" / "a"
    # both runs of the job logged the steps they trained: the requeued one began at the saved step, none twice
    steps = [int(s) for s in (run / "steps").read_text().split()]
    assert steps == list(range(last(run)["global_step"])) and int(stopped.group(1)) in steps, steps
    assert last(run)["epoch"] == 1
    assert (tmp_path / "runs" / "eval_a" / "results.json").is_file()
