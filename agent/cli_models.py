"""``tradeagent train xgb|ppo`` and ``tradeagent models list``: train quant models, list the registry.

- ``train xgb [--universe U] [--end D] [--trials N] [--seed S] [--json]`` loads the universe through the cache
  (``load_universe_data(..., as_of=D, refresh=True)``: offline sources need no network), runs the walk-forward
  evaluation and fits the model to keep (``tools.quant.train.train_xgb``), saves it under
  ``TRADEAGENT_HOME/models/xgb/<version>/`` with one ``model_performance`` row per window, and prints the
  metrics against the two naive references (majority class, training prior) with the verdict. A progress bar
  runs on stderr (not with ``--json``). Without ``--end`` D is the universe's last cached bar.
- ``train ppo [--universe U] [--end D] [--seeds N] [--seed S] [--timesteps N] [--json]`` trains N seeded PPO
  policies on the bars before a held-out window at the end of the data (``tools.quant.ppo.train_ppo``), prints
  each one's out-of-sample Sharpe on that window, their mean ± std and buy-and-hold's on the same window, and
  saves the first seed's policy under ``TRADEAGENT_HOME/models/ppo/<version>/``. Progress bar on stderr.
- ``models list [--json]`` lists every artefact (xgb and ppo), refused ones (corrupt, foreign) with their
  one-line reason.

Errors (bad date, unknown universe, no data, too little data, corrupt artefact) are one line, exit 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli_common import (
    UserError,
    cli_errors,
    console,
    err_console,
    load_settings,
    parse_date,
    print_json,
)
from agent.settings import Settings
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.errors import DataError
from tools.models import Universe
from tools.quant.errors import ModelError
from tools.quant.models import (
    CLASSES,
    ClassificationMetrics,
    LabelRule,
    PpoConfig,
    PpoValidation,
    TrainConfig,
    XgbParams,
)
from tools.quant.registry import list_artefacts
from tools.quant.train import TrainResult, train_xgb
from tools.universe import load_universe

train_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
models_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
_PPO = PpoConfig()


@contextmanager
def _model_errors() -> Iterator[None]:
    try:
        yield
    except ModelError as exc:
        raise UserError(str(exc)) from None


def _training_data(universe: str, end: date | None, *, progress: bool) -> tuple[Universe, Settings, UniverseData, date]:
    """The universe, settings, bars cut at ``end`` and the day training ends (``end``, or the last bar)."""
    uni = load_universe(universe)
    settings = load_settings()
    settings.ensure_home()
    with MarketCache(settings.db_path) as cache:
        data = load_universe_data(uni, cache, as_of=end, refresh=True, progress=progress)
    if not data.bars:
        first = next(iter(data.errors.items()), ("?", "no data"))
        raise DataError(f"nothing loaded for universe {uni.name} (first, {first[0]}: {first[1]})")
    return uni, settings, data, end or max(b.index[-1].date() for b in data.bars.values())


@train_app.command("xgb")
@cli_errors
def train_xgb_cmd(
    universe: Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a universe TOML")] = "demo",
    end: Annotated[str | None, typer.Option("--end", help="last bar training may read (YYYY-MM-DD)")] = None,
    trials: Annotated[int, typer.Option("--trials", min=0, help="Optuna trials per training window (0: none)")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="seed of the booster and the search")] = 0,
    max_rounds: Annotated[int, typer.Option("--max-rounds", min=1, help="boosting rounds before early stopping")] = 150,
    train_years: Annotated[int, typer.Option("--train-years", min=1, help="years in each training window")] = 3,
    test_months: Annotated[int, typer.Option("--test-months", min=1, help="months each walk-forward model predicts")] = 6,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="label: sessions ahead")] = 5,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0001, help="label: BUY/SELL beyond ± this return")] = 0.02,
    json_out: JsonOpt = False,
) -> None:
    """Train the universe's XGBoost model: walk-forward report vs naive references, then save the model."""
    end_d = parse_date(end, "--end")
    config = TrainConfig(
        rule=LabelRule(horizon=horizon, threshold=threshold),
        params=XgbParams(max_rounds=max_rounds),
        seed=seed,
        train_years=train_years,
        test_months=test_months,
        trials=trials,
    )
    uni, settings, data, day = _training_data(universe, end_d, progress=not json_out)
    with _model_errors(), _progress(not json_out) as progress:
        result = train_xgb(
            data.bars, uni.name, end=day, models_dir=settings.models_dir, db_path=settings.db_path,
            now=datetime.now(UTC), config=config, progress=progress,
        )  # fmt: skip
    if json_out:
        print_json({**_train_json(result, data.errors), "notes": data.notes})
        return
    for note in data.notes:  # e.g. a remote source unreachable: trained on the cached bars
        err_console.print(f"note: {note}")
    _print_train(result, data.errors)


@train_app.command("ppo")
@cli_errors
def train_ppo_cmd(
    universe: Annotated[str, typer.Option("--universe", "-u", help="built-in name or path to a universe TOML")] = "demo",
    end: Annotated[str | None, typer.Option("--end", help="last bar training may read (YYYY-MM-DD)")] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=20, help="policies trained (seeds seed, seed + 1, ...)")] = _PPO.seeds,
    seed: Annotated[int, typer.Option("--seed", min=0, help="first seed")] = 0,
    timesteps: Annotated[int, typer.Option("--timesteps", min=256, help="environment steps per seed")] = _PPO.timesteps,
    json_out: JsonOpt = False,
) -> None:
    """Train the universe's PPO policy: out-of-sample Sharpe per seed vs buy-and-hold, then save the first seed's."""
    end_d = parse_date(end, "--end")
    config = PpoConfig(seeds=seeds, seed=seed, timesteps=timesteps)
    uni, settings, data, day = _training_data(universe, end_d, progress=not json_out)
    from tools.quant.ppo import train_ppo  # torch and stable-baselines3 load only for this command

    with _model_errors(), _progress(not json_out) as progress:
        result = train_ppo(data.bars, uni.name, end=day, models_dir=settings.models_dir, now=datetime.now(UTC),
                           config=config, progress=progress)  # fmt: skip
    meta, v = result.artefact.meta, result.validation
    assert meta.ppo is not None
    if json_out:
        print_json({
            "model": {"version": meta.version, "kind": meta.kind, "universe": meta.universe, "symbols": meta.symbols,
                      "training_start": meta.training_start, "training_end": meta.training_end,
                      "fit_end": meta.ppo.fit_end, "data_end": meta.data_end, "path": str(result.artefact.path),
                      "timesteps": result.timesteps, "seed": meta.seed},
            "held_out": v.model_dump(mode="json"), "errors": data.errors, "notes": data.notes,
            "seconds": round(result.seconds, 3),
        })  # fmt: skip
        return
    for note in data.notes:
        err_console.print(f"note: {note}")
    for symbol, why in data.errors.items():
        console.print(f"skipped {symbol}: {why}")
    table = Table(title=f"held-out window {v.start} … {v.end} ({v.days} days; trained up to {meta.ppo.fit_end})")
    for col in ("policy", "Sharpe", "total return"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for s, sh, tr in zip(v.seeds, v.sharpe, v.total_return, strict=True):
        table.add_row(f"ppo seed {s}" + (" (saved)" if s == v.kept_seed else ""), f"{sh:.2f}", f"{tr:+.1%}")
    spread = "" if v.sharpe_std is None else f" ± {v.sharpe_std:.2f}"
    table.add_row(f"ppo, mean over {len(v.seeds)} seed(s)", f"{v.sharpe_mean:.2f}{spread}", "")
    table.add_row("buy-and-hold (same fees)", f"{v.buy_hold_sharpe:.2f}", f"{v.buy_hold_total_return:+.1%}")
    console.print(table)
    console.print(v.verdict)
    console.print(f"saved {meta.version} (seed {meta.seed}, {result.timesteps} steps; trained {meta.training_start} … "
                  f"{meta.ppo.fit_end}, held out to {meta.training_end}) to {result.artefact.path} "
                  f"in {result.seconds:.1f} s")  # fmt: skip


@models_app.command("list")
@cli_errors
def list_cmd(json_out: JsonOpt = False) -> None:
    """List the trained models (newest training window last); refused artefacts with their reason."""
    settings = load_settings()
    rows: list[dict[str, Any]] = []
    for item in list_artefacts(settings.models_dir):
        if item.artefact is None:
            rows.append({"version": item.path.name, "kind": item.path.parent.name, "status": "refused",
                         "error": item.error, "path": str(item.path)})  # fmt: skip
            continue
        m = item.artefact.meta
        rows.append(
            {
                "version": m.version, "kind": m.kind, "universe": m.universe, "status": "ok",
                "training_start": m.training_start, "training_end": m.training_end, "data_end": m.data_end,
                "created_at": m.created_at, "seed": m.seed, "label_rule": m.label_rule,
                "validation": m.validation, "walk_forward": m.walk_forward,
                "held_out": None if m.ppo is None else m.ppo.validation, "path": str(item.path),
            }
        )  # fmt: skip
    rows.sort(key=lambda r: (r["kind"], str(r.get("training_end", "")), r["version"]))
    if json_out:
        print_json({"models_dir": str(settings.models_dir), "models": rows})
        return
    if not rows:
        console.print(f"no models in {settings.models_dir}; train one with `tradeagent train xgb`")
        return
    table = Table(title=f"models in {settings.models_dir}")
    for col in ("version", "universe", "training window", "out of sample (reference)", "log-loss (prior)", "beats reference"):
        table.add_column(col)
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["version"], "-", "REFUSED", r["error"], "", "")
            continue
        window = f"{r['training_start']} … {r['training_end']}"
        held: PpoValidation | None = r["held_out"]
        if held is not None:
            spread = "" if held.sharpe_std is None else f" ± {held.sharpe_std:.2f}"
            table.add_row(r["version"], r["universe"], window,
                          f"Sharpe {held.sharpe_mean:.2f}{spread} (buy-and-hold {held.buy_hold_sharpe:.2f})", "-",
                          "yes" if held.sharpe_mean > held.buy_hold_sharpe else "no")  # fmt: skip
            continue
        wf: ClassificationMetrics | None = r["walk_forward"]
        table.add_row(
            r["version"], r["universe"], window,
            "-" if wf is None else f"accuracy {wf.model.accuracy:.3f} (majority {wf.majority.accuracy:.3f})",
            "-" if wf is None else f"{wf.model.log_loss:.4f} ({wf.prior.log_loss:.4f})",
            "-" if wf is None else ("yes" if wf.beats_naive else "no"),
        )  # fmt: skip
    console.print(table)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)  # fmt: skip
    task = bar.add_task("training", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label)

    with bar:
        yield update


def _metrics_json(m: ClassificationMetrics | None) -> dict[str, Any] | None:
    return None if m is None else m.model_dump(mode="json")


def _train_json(result: TrainResult, errors: dict[str, str]) -> dict[str, Any]:
    meta = result.artefact.meta
    return {
        "model": {
            "version": meta.version, "kind": meta.kind, "universe": meta.universe, "symbols": meta.symbols,
            "training_start": meta.training_start, "training_end": meta.training_end, "data_end": meta.data_end,
            "path": str(result.artefact.path), "best_iteration": meta.params.get("best_iteration"),
        },
        "walk_forward": {
            "train_years": result.walk_forward.train_years, "test_months": result.walk_forward.test_months,
            "pooled": _metrics_json(result.walk_forward.pooled),
            "folds": [f.model_dump(mode="json") for f in result.walk_forward.folds],
        },
        "validation": result.validation.model_dump(mode="json"),
        "errors": errors,
        "seconds": round(result.seconds, 3),
    }  # fmt: skip


def _metrics_table(title: str, m: ClassificationMetrics) -> Table:
    table = Table(title=title)
    for col in ("", "accuracy", "log-loss", "n"):
        table.add_column(col, justify="left" if not col else "right")
    for name, s in (("model", m.model), (f"majority ({m.majority_class})", m.majority), ("training prior", m.prior)):
        table.add_row(name, f"{s.accuracy:.3f}", "-" if s.log_loss is None else f"{s.log_loss:.4f}", str(s.n))
    return table


def _print_train(result: TrainResult, errors: dict[str, str]) -> None:
    meta, wf = result.artefact.meta, result.walk_forward
    for symbol, why in errors.items():
        console.print(f"skipped {symbol}: {why}")
    if wf.pooled is not None:
        console.print(_metrics_table(f"walk-forward: {len(wf.folds)} windows of {wf.test_months} months, "
                                     f"each trained on {wf.train_years} years", wf.pooled))  # fmt: skip
        confusion = Table(title="walk-forward confusion (rows: true, columns: predicted)")
        confusion.add_column("")
        for c in CLASSES:
            confusion.add_column(c, justify="right")
        for c, row in zip(CLASSES, wf.pooled.confusion, strict=True):
            confusion.add_row(c, *(str(v) for v in row))
        console.print(confusion)
        console.print(f"walk-forward: {wf.pooled.verdict}")
    else:
        console.print("walk-forward: no window (less than the training years of data before --end)")
    assert meta.validation is not None  # an xgb meta always has it
    console.print(_metrics_table(f"final model, validation {result.validation.test_start} … "
                                 f"{result.validation.test_end}", meta.validation))  # fmt: skip
    console.print(f"final model: {meta.validation.verdict}")
    if meta.params.get("trials"):
        console.print("(the search chose the parameters on this validation split, so its figures flatter the model;"
                      " the walk-forward figures are out of sample)")  # fmt: skip
    console.print(
        f"saved {meta.version} (trained {meta.training_start} … {meta.training_end}, labels included) "
        f"to {result.artefact.path} in {result.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``models`` groups to the top-level app."""
    app.add_typer(train_app, name="train", help="Train quant models (xgb, ppo).")
    app.add_typer(models_app, name="models", help="The trained-model registry.")
