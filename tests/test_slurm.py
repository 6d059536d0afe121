"""SLURM without a cluster: docs/slurm/train.sbatch asks `deepconv train` for what SLURM booked; Lightning detects
the SLURM environment from the variables srun sets. (On a real cluster: tests/test_slurm_cluster.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "docs" / "slurm" / "train.sbatch"


@pytest.mark.slow
def test_sbatch_script_asks_lightning_for_what_slurm_booked(tmp_path):
    """The script as shipped, run by bash as sbatch would on 2 nodes x 8 GPUs with the ImageNet config, with an
    `srun` that prints the config instead of training: one task per device, the nodes, loader workers within
    the booked CPUs, the S3 pack; the #SBATCH lines ask for the signal before the time limit and for requeueing."""
    text = SBATCH.read_text()
    assert re.search(r"^#SBATCH --signal=USR1@\d+$", text, re.M) and re.search(r"^#SBATCH --requeue$", text, re.M)
    (tmp_path / "srun").write_text('#!/bin/sh\nshift\nexec "$@" --print_config\n')  # drop --kill-on-bad-exit
    (tmp_path / "srun").chmod(0o755)
    env = {**os.environ, "PATH": os.pathsep.join([str(tmp_path), str(Path(sys.executable).parent), os.environ["PATH"]]),
           "SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS_PER_NODE": "8", "SLURM_CPUS_PER_TASK": "8",
           "CONFIG": "recipes/imagenet/vgg_d_s256.yaml"}
    out = subprocess.run(["bash", str(SBATCH), "s3://my-bucket/imagenet-packed", "runs/vgg16"], capture_output=True,
                         text=True, timeout=120, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    config = yaml.safe_load(out.stdout.split("\n", 1)[1])  # less the script's first line
    assert (config["trainer"]["num_nodes"], int(config["trainer"]["devices"])) == (2, 8)
    assert config["trainer"]["strategy"] == "ddp" and config["trainer"]["default_root_dir"] == "runs/vgg16"
    assert config["data"]["data_dir"] == "s3://my-bucket/imagenet-packed" and config["data"]["num_workers"] == 7
    assert config["model"]["arch"] == "D" and config["last_every_n_steps"] > 0


def test_lightning_detects_slurm_from_srun_variables(monkeypatch):
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from lightning.pytorch import Trainer

    for name, value in {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NAME": "vgg16",
                        "SLURM_JOB_ID": "1234", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
                        "SLURM_NODELIST": "node[1-2]"}.items():
        monkeypatch.setenv(name, value)
    for name in ("MASTER_ADDR", "MASTER_PORT"):  # SLURMEnvironment writes these into os.environ: undone after the test,
        monkeypatch.setenv(name, "")              # or later srun jobs of this process would look for node1
        monkeypatch.delenv(name)
    trainer = Trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment)
    assert (env.world_size(), env.global_rank(), env.main_address) == (2, 0, "node1")
