"""``tradeagent eval``: replay history through the daily run's graph, guard and broker; print and write the report.

Registered on the ``tradeagent`` app through the ``tradeagent.commands`` entry point (pyproject.toml), so the
CLI in ``agent/`` never imports ``evals`` (the layers point down only).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agent.cli_common import (
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    parse_date,
    print_json,
)
from evals.replay import BRAKE_NOTE, BRAKE_PARKED_NOTE, KILL_SWITCH_NOTE
from evals.report import metrics_table
from evals.run import DEFAULT_POLICIES, EvalConfig, run_eval


def _progress(enabled: bool) -> Any:
    """A bar on stderr showing replayed days, days/s and the time left; ``None`` when not a terminal."""
    if not enabled:
        return None, None
    bar = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} days/s"), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)

    def start(total: int) -> Any:
        task = bar.add_task("replay", total=total, rate="-")
        bar.start()

        def tick() -> None:
            bar.advance(task)
            t = bar.tasks[task]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed:.1f}")
        return tick

    return start, bar


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> Any:
    if value not in allowed:
        raise UserError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @cli_errors
    def eval_cmd(
        universe: Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a TOML file")] = "demo",
        start: Annotated[str, typer.Option("--start", help="first session (YYYY-MM-DD)")] = "",
        end: Annotated[str, typer.Option("--end", help="last session (YYYY-MM-DD)")] = "",
        policy: Annotated[str, typer.Option("--policy", help="comma-separated: agent, analyst, buyhold, equalweight, "
                                                             "holdall (xgb, ppo once trained)")] = ",".join(DEFAULT_POLICIES),
        out: Annotated[Path | None, typer.Option("--out", help="report folder (default TRADEAGENT_HOME/evals/<universe>-<start>-<end>)")] = None,
        llm: Annotated[str, typer.Option("--llm", help="offline | openai")] = "offline",
        llm_cache: Annotated[str, typer.Option("--llm-cache", help="record | replay | off")] = "off",
        memory: Annotated[str, typer.Option("--memory", help="on | off")] = "off",
        seed: Annotated[int, typer.Option("--seed", help="seed of the bootstrap intervals")] = 0,
        jobs: Annotated[int, typer.Option("--jobs", help="graph policies replayed in parallel processes")] = 1,
        news: Annotated[Path | None, typer.Option("--news", help="news archive to import first: a .jsonl file or a folder of saved RSS/Atom files")] = None,
        llm_cutoff: Annotated[str | None, typer.Option("--llm-cutoff", help="the model's training cutoff: metrics before and after it apart")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print report.json's metrics as JSON")] = False,
    ) -> None:
        """Replay a window of history point-in-time and report every policy against buy-and-hold."""
        if not start or not end:
            raise UserError("--start and --end are required (YYYY-MM-DD)")
        first, last = parse_date(start, "--start"), parse_date(end, "--end")
        assert first is not None and last is not None
        settings = load_settings()
        cfg = EvalConfig(
            universe=universe, start=first, end=last,
            out=out or settings.home / "evals" / f"{Path(universe).stem}-{first}-{last}",
            policies=tuple(p.strip() for p in policy.split(",") if p.strip()),
            llm=_choice(llm, ("offline", "openai"), "--llm"),
            cache_mode=_choice(llm_cache, ("record", "replay", "off"), "--llm-cache"),
            memory=_choice(memory, ("on", "off"), "--memory") == "on", seed=seed, jobs=jobs,
            llm_cutoff=parse_date(llm_cutoff, "--llm-cutoff"), news=news,
        )  # fmt: skip
        start_bar, bar = _progress(not as_json and sys.stderr.isatty())
        try:
            files = run_eval(settings, cfg, progress=start_bar)
        finally:
            if bar is not None:
                bar.stop()
        # a latched breaker (or a book the brake parked in cash) changes what the metrics mean: said in both outputs
        warnings = [f"{name}: {note}" for name, block in files.report["policies"].items()
                    for note in block.get("notes", []) if note.startswith((KILL_SWITCH_NOTE, BRAKE_PARKED_NOTE))]
        if as_json:
            print_json({"report": str(files.json_path), "html": str(files.html_path),
                        "metrics": {n: b["metrics"] for n, b in files.report["policies"].items()},
                        "warnings": warnings, "timing": files.report["timing"]})
            return
        console.print(metrics_table(files.report))
        timing = files.report["timing"]
        for note in files.report.get("notes", []):
            err_console.print(f"note: {note}", style="dim")
        for name, block in files.report["policies"].items():  # how often rule 9's brake held the sizes down
            for note in block.get("notes", []):
                if note.startswith(BRAKE_NOTE):
                    err_console.print(f"note: {name}: {note}", style="dim")
        for warning in warnings:
            err_console.print(f"warning: {warning}", style="yellow")
        console.print(f"report: {files.json_path} · {files.html_path} · {timing['total_seconds']:.1f} s"
                      + (f" ({timing['days_per_second']:.1f} replayed days/s)" if timing.get("days_per_second") else ""))
