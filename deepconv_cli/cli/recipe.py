"""`deepconv recipe run FILE.yaml [--dry-run] [--run-root DIR]`: run a chain of stages, skipping finished ones."""

import json
import time

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli.options import OneLineParser
from deepconv_cli.recipes.runner import TRAINING, Recipe, Stage, load_recipe, run_stage


def stage_result(recipe: Recipe, stage: Stage) -> str:
    """A one-cell summary of what a finished stage produced."""
    run_dir = recipe.run_dir(stage)
    if stage.command in TRAINING and (run_dir / "best.ckpt").is_file():
        from deepconv_cli.models.checkpoint import read_checkpoint

        callbacks = read_checkpoint(run_dir / "best.ckpt").get("callbacks", {})
        scores = [v.get("best_model_score") for k, v in callbacks.items() if k.startswith("ModelCheckpoint")]
        if scores and scores[0] is not None:
            return f"best val top-1 error {float(scores[0]):.2f}%"
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


def plan_table(recipe: Recipe, title: str, times: dict[str, float] | None = None) -> Table:
    table = Table(title=title)
    for col in ("stage", "command", "status", "from", "result" if times is not None else "command line"):
        table.add_column(col, overflow="fold")
    if times is not None:
        table.add_column("time", justify="right")
    for stage in recipe.stages:
        source = stage.init_from or stage.ckpt or ""
        if times is None:
            table.add_row(stage.name, stage.command, recipe.status(stage), source, " ".join(recipe.argv(stage)))
        else:
            took = f"{times[stage.name]:.0f} s" if stage.name in times else "skipped"
            table.add_row(stage.name, stage.command, recipe.status(stage), source, stage_result(recipe, stage), took)
    return table


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="deepconv recipe", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="run the stages in order")
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    run.add_argument("--run-root", help="folder for the stages' run directories (default: the recipe's run_root)")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe, args.run_root)
    console = Console()
    if args.dry_run:
        console.print(plan_table(recipe, f"{recipe.path} -> {recipe.run_root} (dry run)"))
        return 0
    times: dict[str, float] = {}
    for stage in recipe.stages:
        status = recipe.status(stage)
        if status == "done":
            console.print(f"[dim]stage {stage.name}: done, skipped[/]")
            continue
        console.rule(f"stage {stage.name}: {stage.command}" + (" (resuming)" if status == "resume" else ""))
        start = time.perf_counter()
        run_stage(recipe, stage)
        times[stage.name] = time.perf_counter() - start
    console.print(plan_table(recipe, f"{recipe.path}: all stages done ({recipe.run_root})", times))
    return 0
