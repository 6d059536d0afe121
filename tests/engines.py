"""The real engines some tests run against: a local S3 server (moto over TLS, tools/s3_local.sh) and a one-host
SLURM cluster (tools/slurm_local.sh). Found running or started here; where they cannot be, the test is skipped with
one line saying how to run it — and fails instead under DEEPCONV_REQUIRE_ENGINES=1, which CI (.ci/run) sets."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRE = "DEEPCONV_REQUIRE_ENGINES"


def unavailable(reason: str) -> None:
    """Skip with `reason` (a newcomer's machine); fail under DEEPCONV_REQUIRE_ENGINES=1 (CI must run these)."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: CI must run this test)")
    pytest.skip(reason)


def read_env_file(path: Path) -> dict[str, str]:
    """The `export NAME=VALUE` lines tools/s3_local.sh writes."""
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def start_s3(folder: Path, port: int, own: bool = False) -> tuple[dict[str, str], bool]:
    """(the server's AWS_* variables, whether it was started here): the server named by DEEPCONV_S3_DIR when it
    answers (CI starts one) and `own` is false, else a new one in `folder`."""
    script = REPO / "tools" / "s3_local.sh"
    shared = os.environ.get("DEEPCONV_S3_DIR")
    if shared and not own and subprocess.run(["bash", script, "status", shared], capture_output=True).returncode == 0:
        return read_env_file(Path(shared) / "env"), False
    if not shutil.which("moto_server") or not shutil.which("openssl"):
        unavailable("no S3 server to test against: pip install 'moto[server]' (and openssl), or run bash .ci/run")
    started = subprocess.run(["bash", script, "start", folder], capture_output=True, text=True,
                             env={**os.environ, "DEEPCONV_S3_PORT": str(port)})
    if started.returncode != 0:
        unavailable(f"the local S3 server did not start: {started.stderr.strip()[-300:]}")
    return read_env_file(folder / "env"), True


def stop_s3(folder: Path) -> None:
    subprocess.run(["bash", REPO / "tools" / "s3_local.sh", "stop", folder], capture_output=True)


def require_slurm() -> None:
    """The one-host cluster answers (tools/slurm_local.sh start, as root), or the test is skipped (CI: fails)."""
    if not shutil.which("sbatch"):
        unavailable("no SLURM here: apt-get install -y slurm-wlm munge && tools/slurm_local.sh start (as root)")
    if subprocess.run(["bash", REPO / "tools" / "slurm_local.sh", "status"], capture_output=True).returncode != 0:
        unavailable("the SLURM cluster is not running: tools/slurm_local.sh start (as root)")
