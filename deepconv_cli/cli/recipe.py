"""`deepconv recipe run FILE.yaml [--dry_run] [--run_root DIR] [--rerun STAGE]`: a chain of stages, resumably."""

import json
import shlex
import sys
import time

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli.options import run_function
from deepconv_cli.cli.stage_arguments import check_arguments
from deepconv_cli.errors import usage
from deepconv_cli.recipes.checks import problems
from deepconv_cli.recipes.runner import TRAINING, Recipe, Stage, load_recipe, run_stage


def stage_result(recipe: Recipe, stage: Stage) -> str:
    """A one-cell summary of what a finished stage produced."""
    run_dir = recipe.run_dir(stage)
    if stage.command in TRAINING and (run_dir / "best.ckpt").is_file():
        from deepconv_cli.models.checkpoint import read_checkpoint

        callbacks = read_checkpoint(run_dir / "best.ckpt").get("callbacks", {})
        scores = [v.get("best_model_score") for k, v in callbacks.items() if k.startswith("ModelCheckpoint")]
        if scores and scores[0] is not None:
            return f"best val {'localisation' if 'loc' in stage.command else 'top-1'} error {float(scores[0]):.2f}%"
    results = [p for p in run_dir.glob("*.json") if not p.name.startswith(".")]
    for path in results:
        try:
            rows = json.loads(path.read_text())
        except ValueError:
            continue
        rows = rows.get("results", rows) if isinstance(rows, dict) else rows
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "top1_error" in rows[0]:
            return "; ".join(f"{r.get('method', '')} {r['top1_error']:.2f}/{r['top5_error']:.2f}%" for r in rows)
    files = [p for p in run_dir.iterdir() if p.is_file() and not p.name.startswith(".")] if run_dir.is_dir() else []
    return ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in files[:4])


def plan_table(recipe: Recipe, title: str, statuses: dict[str, str], times: dict[str, float] | None = None) -> Table:
    table = Table(title=title)
    for col in ("stage", "command", "status", "from") + (("result", "time") if times is not None else ()):
        table.add_column(col, justify="right" if col == "time" else "left")
    for stage in recipe.stages:
        row = [stage.name, stage.command, statuses[stage.name], stage.init_from or stage.ckpt or ""]
        if times is not None:
            row += [stage_result(recipe, stage), f"{times[stage.name]:.0f} s" if stage.name in times else "skipped"]
        table.add_row(*row)
    return table


def plan(recipe: Recipe, rerun: list[str]) -> dict[str, str]:
    """Each stage's status: done, run (pending or forced), resume, changed (re-run) or changed-kept (training
    stage finished with other settings: kept unless --rerun names it)."""
    names = [s.name for s in recipe.stages]
    unknown = [name for name in rerun if name not in names]
    if unknown:
        raise usage(f"--rerun {unknown[0]}: no such stage (stages: {', '.join(names)})")
    statuses = {}
    for stage in recipe.stages:
        status = recipe.status(stage)
        if stage.name in rerun:
            status = "rerun"
        elif status == "changed" and stage.command in TRAINING:
            status = "changed-kept"
        statuses[stage.name] = status
    return statuses


def command_lines(recipe: Recipe, statuses: dict[str, str]) -> list[str]:
    """The stages that would run, as commands a user can paste into a shell."""
    lines = []
    for stage in recipe.stages:
        if statuses[stage.name] not in ("done", "changed-kept"):
            extra = ["--resume=false"] if statuses[stage.name] == "rerun" and stage.command in TRAINING else []
            lines.append(shlex.join(["deepconv", *recipe.argv(stage), *extra]))
    return lines


def run(recipe: str, dry_run: bool = False, run_root: str | None = None, rerun: list[str] | None = None) -> None:
    """Run the stages in order, skipping finished ones and resuming an interrupted training stage.

    Before anything starts, every pending stage's arguments are parsed by its command's own parser and the data
    and checkpoints it needs are checked; one mistake anywhere stops the recipe with nothing run.

    Args:
        recipe: the recipe YAML file (run_root and a list of stages; see recipes/quickstart.yaml).
        dry_run: check the stages' options, data and checkpoints, print the plan and the commands, then stop.
        run_root: folder for the stages' run directories (default: the recipe's run_root).
        rerun: run these stages again from scratch even if they finished (repeat --rerun STAGE).
    """
    loaded = load_recipe(recipe, run_root)
    console = Console()
    statuses = plan(loaded, rerun or [])
    check_arguments(loaded, [s for s in loaded.stages if statuses[s.name] not in ("done", "changed-kept")])
    missing = problems(loaded, statuses)
    if dry_run:
        console.print(plan_table(loaded, f"{loaded.path} -> {loaded.run_root} (dry run)", statuses))
        print("\n".join(command_lines(loaded, statuses)) or "nothing to run: every stage is done")
    for line in missing:
        print(f"deepconv recipe: problem: {line}", file=sys.stderr)
    if missing:
        raise usage(f"{len(missing)} problem(s) with {loaded.path} (listed above); nothing was started")
    if dry_run:
        return
    run_stages(loaded, statuses, console)


def run_stages(recipe: Recipe, statuses: dict[str, str], console: Console) -> None:
    times: dict[str, float] = {}
    for stage in recipe.stages:
        status = statuses[stage.name]
        if status == "done":
            console.print(f"[dim]stage {stage.name}: done, skipped[/]")
            continue
        if status == "changed-kept":
            console.print(f"[yellow]stage {stage.name}: finished with other settings (its config, arguments or input"
                          f" checkpoint changed since); kept as it is: pass --rerun {stage.name} to train it again[/]")
            continue
        note = {"resume": " (resuming)", "changed": " (changed since it finished: running again)",
                "rerun": " (--rerun: from scratch)"}.get(status, "")
        console.rule(f"stage {stage.name}: {stage.command}{note}")
        start = time.perf_counter()
        forced = ("--resume=false",) if status == "rerun" and stage.command in TRAINING else ()
        run_stage(recipe, stage, forced)
        times[stage.name] = time.perf_counter() - start
    final = {stage.name: recipe.status(stage) for stage in recipe.stages}
    console.print(plan_table(recipe, f"{recipe.path}: all stages done ({recipe.run_root})", final, times))


def main(argv: list[str]) -> int:
    run_function([run], argv, "deepconv recipe")
    return 0
