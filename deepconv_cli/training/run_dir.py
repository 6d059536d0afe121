"""What a run directory promises: one training at a time, a history kept across resumes, a finished run stays so.

- `RunLock`: RUN_DIR/.lock holds the owner's pid, host and start time; a second training into the same folder
  gets one line and exit 1. A lock left by a process that no longer exists on this host is stale and replaced.
- `finished_state` / `mark_finished`: RUN_DIR/.finished.json records how a completed run ended (epochs, and
  whether the learning-rate drops or max_epochs stopped it), so re-running the command says "already finished"
  and touches nothing, a larger --trainer.max_epochs extends it and a smaller one is a one-line error.
- `keep_history`: metrics.csv rows logged up to the resumed checkpoint's step survive the resume (Lightning's
  CSVLogger would delete the file), so metrics.csv and curves.png hold every epoch.
"""

import csv
import io
import json
import os
import socket
import time
from pathlib import Path

from deepconv_cli.errors import failure
from deepconv_cli.files import write_text_atomically

LOCK = ".lock"
FINISHED = ".finished.json"
METRICS = "metrics.csv"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """An exclusive lock on a run directory, recognising stale locks of killed processes by pid and host."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.held = False

    def owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _stale(self, owner: dict | None) -> bool:
        if owner is None:  # unreadable or half-written by a process killed while writing it
            return time.time() - self.path.stat().st_mtime > 10 if self.path.exists() else True
        if owner.get("host") != socket.gethostname():
            return False  # another machine's process: cannot tell, so it is not ours to break
        pid = int(owner.get("pid", -1))
        return pid not in (os.getpid(), os.getppid()) and not _alive(pid)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner and int(owner.get("pid", -1)) in (os.getpid(), os.getppid()) \
                        and owner.get("host") == socket.gethostname():
                    return  # this process (or the launcher of this DDP process) holds it
                if self._stale(owner):
                    self.path.unlink(missing_ok=True)
                    continue
                who = f"pid {owner['pid']} on {owner['host']} since {owner.get('since', '?')}" if owner else "?"
                raise failure(f"{self.path.parent} is in use by another training ({who}); wait for it to end or "
                              f"choose another --trainer.default_root_dir (a lock of a dead process is removed"
                              f" by itself; on another host delete {self.path})") from None
            with os.fdopen(fd, "w") as f:
                f.write(record)
            self.held = True
            return
        raise failure(f"cannot take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def finished_state(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / FINISHED).read_text())
    except (OSError, ValueError):
        return None


def mark_finished(run_dir: Path, epochs: int, reason: str) -> None:
    write_text_atomically(Path(run_dir) / FINISHED, json.dumps({"epochs": epochs, "reason": reason}) + "\n")


def clear_finished(run_dir: Path) -> None:
    (Path(run_dir) / FINISHED).unlink(missing_ok=True)


def read_history(run_dir: Path, before_step: int) -> tuple[list[str], list[dict]] | None:
    """metrics.csv's header and the rows logged before `before_step` (what the resumed checkpoint had seen)."""
    path = Path(run_dir) / METRICS
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, csv.Error, UnicodeDecodeError):
        return None

    def step(row: dict) -> float:
        try:
            return float(row.get("step") or 0)
        except ValueError:
            return float("inf")

    return header, [r for r in rows if step(r) < before_step]


def write_history(run_dir: Path, header: list[str], rows: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(Path(run_dir) / METRICS, out.getvalue())
