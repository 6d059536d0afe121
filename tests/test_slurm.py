"""SLURM: docs/slurm/train.sbatch is a command `deepconv train` accepts, asking for what its #SBATCH lines book;
Lightning detects the SLURM environment from the variables srun sets."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "docs" / "slurm" / "train.sbatch"


def test_sbatch_script_parses_and_matches_print_config():
    text = SBATCH.read_text()
    booked = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.M))
    assert "USR1" in booked["signal"] and "requeue" in text  # pre-emption saves and requeues (training/stops.py)
    command = shlex.split(re.search(r"^srun (deepconv train .*?)$(?![^\n]*\\)", text.replace("\\\n", " "),
                                    re.M | re.S).group(1))
    assert command[:2] == ["deepconv", "train"]
    out = subprocess.run([sys.executable, "-m", "deepconv_cli", "train", *command[2:], "--print_config"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    config = yaml.safe_load(out.stdout)
    assert config["trainer"]["num_nodes"] == int(booked["nodes"])
    assert int(config["trainer"]["devices"]) == int(booked["ntasks-per-node"]) == int(booked["gpus-per-node"])
    assert config["trainer"]["strategy"] == "ddp"
    assert config["data"]["data_dir"].startswith("s3://")
    assert config["data"]["num_workers"] < int(booked["cpus-per-task"])
    assert config["last_every_n_steps"] > 0


def test_lightning_detects_slurm_from_srun_variables(monkeypatch):
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from lightning.pytorch import Trainer

    for name, value in {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NAME": "vgg16",
                        "SLURM_JOB_ID": "1234", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
                        "SLURM_NODELIST": "node[1-2]"}.items():
        monkeypatch.setenv(name, value)
    trainer = Trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment)
    assert (env.world_size(), env.global_rank(), env.main_address) == (2, 0, "node1")
