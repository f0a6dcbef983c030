"""``run_eval``: load a universe once, replay the graph policies, simulate the benchmarks, write the reports.

Contract (``tradeagent eval``, shared/DESIGN.md):
- Policies: graph policies (``evals.replay.POLICY_NODES``) and benchmarks (``evals.baselines.BASELINES``). When
  ``xgb`` (or ``ppo``) is named, its models are trained walk-forward inside the replay (``evals.training``), and
  ``agent`` reads them too; a model kind that is not built is refused. Unknown names and a window with no session
  are refused with one line before any work.
- ``memory``: every graph policy is replayed twice, without and with the vector memory of its own past
  decisions (an in-process store per run, empty at the window's start); the memory run is named
  ``<policy>+memory`` and follows its policy in the report, whose ``memory_ablation`` block sets them side by
  side (metrics and their differences).
- Data is loaded once, cut at ``end`` (nothing after the window is even read), from the user's market cache
  (live sources refresh; offline they fall back to the cache and say so). Indicators are computed once.
- ``jobs`` > 1 replays graph policies in parallel worker processes; each builds its own ledger, guard and
  broker and returns plain data (a ``PolicyRun``). Results do not depend on ``jobs``.
- The report (``evals.report``) is deterministic apart from ``timing``: same inputs, same seed, same LLM
  answers (offline rules or ``--llm-cache replay``) give a byte-identical ``report.json``.
- News: ``news`` (``--news FILE``: JSONL or a folder of saved feeds, ``tools.news.archive``) is imported into the
  user's news table first; then every item stored for the window is loaded once and each replayed day reads
  only what was available by its decision time. No news for a day: the sentiment node abstains.
- ``llm_cutoff`` (a model's training cutoff): each policy also gets metrics before and after it, and a note
  says the days before it are not evidence (the model may have read about them).

Deliberate decisions:
- Benchmarks see the same bars in the base currency (closes and opens times the FX close of the day) and the
  same fees as the paper broker, but not the guard: a yardstick, not a trader. The report says so. They are
  valued as the graph policies' ledger: at the valuation close in the instrument's own currency
  (``tools.validation.valuation_rows``, the gate's jump test) times the day's FX (``valuation_close``).
- Regimes are read from the universe's first instrument (its whole history, so the 200-day trend is warm).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from agent.errors import AgentError
from agent.llm.base import Deadline, LLMClient, TokenBudget
from agent.llm.factory import make_client
from agent.llm.offline import OfflineRulesClient
from agent.news_inputs import load_window
from agent.profiles import resolve
from agent.quant_inputs import QuantSetup
from agent.settings import Settings
from evals.attribution import why_not_invested, why_traded
from evals.baselines import BASELINES, Fees, run_baselines
from evals.metrics import compute_metrics, sharpe_difference
from evals.models import PolicyRun
from evals.replay import (
    MEMORY_SUFFIX,
    MODEL_POLICIES,
    PolicyUnavailable,
    ReplayBook,
    check_policy,
    replay_policy,
    sessions_between,
    split_policy,
)
from evals.report import ReportFiles, build_report, write_files
from evals.training import TRAINERS, Trained, train_walk_forward
from portfolio.risk import load_limits
from prompts.loader import load_prompt
from tools.cache import MarketCache
from tools.data import UniverseData, load_universe_data
from tools.fx import valued_rates
from tools.models import Universe
from tools.news.archive import read_archive
from tools.news.store import LoadedNews, NewsStore
from tools.universe import load_universe
from tools.validation import valuation_closes
from tools.view import precompute_indicators

DEFAULT_POLICIES = ("agent", "analyst", "buyhold", "equalweight", "holdall")


class EvalError(AgentError):
    """A refused eval (bad policy, window, option); the message is one line."""


@dataclass(frozen=True)
class EvalConfig:
    universe: str
    start: date
    end: date
    out: Path
    policies: tuple[str, ...] = DEFAULT_POLICIES
    llm: Literal["offline", "openai"] = "offline"
    cache_mode: Literal["record", "replay", "off"] = "off"
    memory: bool = False
    seed: int = 0
    jobs: int = 1
    llm_cutoff: date | None = None
    news: Path | None = None  # a news archive to import before replaying


def check_config(cfg: EvalConfig) -> None:
    """Refuse what cannot run, in one line, before any data is loaded."""
    if cfg.start > cfg.end:
        raise EvalError(f"--start {cfg.start} is after --end {cfg.end}")
    if not cfg.policies:
        raise EvalError("--policy names no policy")
    if len({p.lower() for p in cfg.policies}) != len(cfg.policies):  # profile names are case-insensitive
        raise EvalError(f"--policy names a policy twice: {','.join(cfg.policies)}")
    if cfg.news is not None and not cfg.news.exists():
        raise EvalError(f"--news {cfg.news} not found (a .jsonl file or a folder of saved feeds)")
    if cfg.jobs < 1:
        raise EvalError(f"--jobs must be at least 1, not {cfg.jobs}")
    for name in cfg.policies:
        base, sep, _ = name.partition("@")
        if sep and base in BASELINES:
            raise EvalError(f"policy {name!r}: the benchmark {base!r} takes no risk profile (it has no risk node)")
        if name not in BASELINES:
            try:
                check_policy(name)
            except PolicyUnavailable as exc:
                raise EvalError(f"{exc}; benchmarks: {', '.join(BASELINES)}") from None


def run_eval(settings: Settings, cfg: EvalConfig, *, progress: Callable[[int], Callable[[], None]] | None = None,
             client: LLMClient | None = None) -> ReportFiles:
    """Replay ``cfg``'s window and write ``cfg.out/report.json`` and ``report.html``.

    ``progress(total_days)`` returns the callback advanced once per replayed session (the CLI's bar).
    ``client`` replaces the LLM of every graph policy (tests).
    """
    check_config(cfg)
    _prepare_out(cfg.out)  # before hours of replay, not after
    started = time.perf_counter()
    uni = load_universe(cfg.universe)
    if client is None and cfg.llm == "openai":  # refuse a missing key before any data is loaded
        make_client(settings, "openai", cfg.cache_mode)
    limits, limit_notes = load_limits(settings.risk_config_path)
    settings.ensure_home()
    cache = MarketCache(settings.db_path)
    try:
        data = load_universe_data(uni, cache, as_of=cfg.end, refresh=True)
    finally:
        cache.close()
    sessions = sessions_between(data, cfg.start, cfg.end)
    if len(sessions) < 2:
        failed = "; ".join(f"{s}: {e}" for s, e in list(data.errors.items())[:3])
        raise EvalError(f"universe {uni.name!r} has {len(sessions)} session(s) between {cfg.start} and {cfg.end}; "
                        f"a replay needs at least 2" + (f" ({failed})" if failed else ""))
    graph = [p for p in cfg.policies if p not in BASELINES]
    trained = _train(data, cfg, sessions)
    news, news_notes = _news(settings, cfg, uni, sessions)
    money = ReplayBook(starting_cash=settings.starting_cash or 10_000.0,
                       commission_bps=settings.commission_bps, slippage_bps=settings.slippage_bps)
    replay_started = time.perf_counter()
    specs = [(p, False) for p in graph] + ([(p, True) for p in graph] if cfg.memory else [])
    tick = progress(len(sessions) * len(specs)) if progress is not None else None
    runs = _replay_graph(settings, cfg, data, sessions, specs, limits, money, tick, client, _quant(trained), news)
    replay_seconds = time.perf_counter() - replay_started
    runs.update(_benchmarks(data, sessions, [p for p in cfg.policies if p in BASELINES], money))
    ordered = [runs[name] for p in cfg.policies for name in (p, p + MEMORY_SUFFIX) if name in runs]
    first = uni.instruments[0].symbol
    report = build_report(
        ordered, config=_config(cfg, uni.name, sessions, money, limits.model_dump(), client, settings),
        benchmark=data.bars[first]["close"] if first in data.bars else None,
        seed=cfg.seed, notes=[*data.notes, *limit_notes, *_cutoff_notes(cfg), *_quant_notes(cfg, trained),
               *news_notes],
        reference="buyhold" if "buyhold" in cfg.policies else cfg.policies[0],
        timing={"total_seconds": round(time.perf_counter() - started, 3),
                "train_seconds": round(trained.seconds, 3) if trained is not None else 0.0,
                "replay_seconds": round(replay_seconds, 3),
                "days_per_second": round(len(sessions) * len(specs) / replay_seconds, 2) if specs else None},
    )
    symbols = [i.symbol for i in uni.instruments]
    for run in ordered:  # issue 14's breakdowns, for the policies that went through the graph
        if run.targets:
            report["policies"][run.name]["why"] = {
                "traded": why_traded(run),
                "not_invested": why_not_invested(run, symbols, limits.max_position_weight)}
    if cfg.memory:
        report["memory_ablation"] = memory_ablation(report, graph, runs, seed=cfg.seed)
    if cfg.llm_cutoff is not None:
        for run in ordered:
            report["policies"][run.name]["cutoff"] = _split_metrics(run, cfg.llm_cutoff)
    return write_files(cfg.out, report, ordered)


def memory_ablation(report: dict[str, Any], graph: Sequence[str], runs: dict[str, PolicyRun], *,
                    seed: int = 0) -> dict[str, Any]:
    """Per graph policy: its metrics without and with memory, the difference (with minus without), and the
    Sharpe difference with a paired bootstrap 95% interval (``sharpe_difference``; None when undefined)."""
    out: dict[str, Any] = {}
    for name in graph:
        off = report["policies"][name]["metrics"]
        on = report["policies"][name + MEMORY_SUFFIX]["metrics"]
        delta = {k: (on[k] - off[k] if isinstance(on.get(k), int | float) and isinstance(off.get(k), int | float)
                     else None) for k in off}
        diff = sharpe_difference(runs[name + MEMORY_SUFFIX].equity, runs[name].equity, seed=seed)
        out[name] = {"off": off, "on": on, "delta": delta, "sharpe_difference": diff}
    return out


def _replay_graph(
    settings: Settings, cfg: EvalConfig, data: UniverseData, sessions: list[date], specs: Sequence[tuple[str, bool]],
    limits: Any, money: ReplayBook, tick: Callable[[], None] | None, client: LLMClient | None,
    quant: QuantSetup | None, news: LoadedNews | None = None,
) -> dict[str, PolicyRun]:
    if not specs:
        return {}
    indicators = precompute_indicators(data)
    jobs = min(cfg.jobs, len(specs))
    if jobs == 1 or client is not None:
        runs = [replay_policy(name, data, sessions, indicators=indicators, limits=limits, money=money,
                              client_for_day=_client_factory(settings, cfg, client), on_day=tick, quant=quant,
                              news=news, memory=memory, default_profile=resolve(settings.profile))
                for name, memory in specs]
        return {run.name: run for run in runs}
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding DuckDB and thread pools
    manager = ctx.Manager()
    ticks = manager.Queue()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {(name, memory): pool.submit(_worker, name, settings, cfg, data, sessions, indicators, limits, money,
                                               ticks, quant, news, memory) for name, memory in specs}
        pending = len(sessions) * len(specs)
        while pending and not all(f.done() for f in futures.values()):
            try:
                ticks.get(timeout=0.2)
            except Exception:  # queue.Empty, or the manager went away with a failed worker
                continue
            pending -= 1
            if tick is not None:
                tick()
        return {run.name: run for run in (f.result() for f in futures.values())}


def _worker(name: str, settings: Settings, cfg: EvalConfig, data: UniverseData, sessions: list[date],
            indicators: Any, limits: Any, money: ReplayBook, ticks: Any, quant: QuantSetup | None,
            news: LoadedNews | None = None, memory: bool = False) -> PolicyRun:
    return replay_policy(name, data, sessions, indicators=indicators, limits=limits, money=money,
                         client_for_day=_client_factory(settings, cfg, None), on_day=lambda: ticks.put(1), quant=quant,
                         news=news, memory=memory, default_profile=resolve(settings.profile))


def _train(data: UniverseData, cfg: EvalConfig, sessions: list[date]) -> Trained | None:
    """Walk-forward models of the kinds the policies name (``xgb``, ``ppo``), or None when none is named."""
    bases = [split_policy(p)[0] for p in cfg.policies if p not in BASELINES]
    kinds = frozenset(MODEL_POLICIES[p] for p in bases if p in MODEL_POLICIES) & frozenset(TRAINERS)
    if not kinds:
        return None
    return train_walk_forward(data.bars, data.universe.name, kinds, sessions, cfg.out)


def _news(settings: Settings, cfg: EvalConfig, uni: Universe, sessions: list[date]) -> tuple[LoadedNews | None, list[str]]:
    """Import ``cfg.news`` (if any) into the user's news table, then load the window's stored news, with notes."""
    notes: list[str] = []
    if cfg.news is not None:
        items, outcomes = read_archive(cfg.news, uni)
        with NewsStore(settings.db_path) as store:
            new = store.upsert(items)
        notes.append(f"news: {len(items)} items read from {cfg.news} ({new} new, "
                     f"{sum(1 for i in items if i.symbols)} about {uni.name})")
        notes.extend(f"news: {o.source} {o.status}: {o.reason}" for o in outcomes if o.reason)
    news = load_window(settings.db_path, sessions[0], sessions[-1])
    if not news:
        if "agent" in cfg.policies:
            notes.append("news: none stored for the window, the sentiment node abstained (no_news)")
        return None, notes
    notes.append(f"news: {len(news)} dated items available in the window; each day reads only those available by "
                 "its decision time (D 23:59:59 UTC, 72 h back)")
    return news, notes


def _quant(trained: Trained | None) -> QuantSetup | None:
    if trained is None:
        return None
    return QuantSetup(models_dir=trained.models_dir, kinds=trained.kinds, features=trained.features)


def _quant_notes(cfg: EvalConfig, trained: Trained | None) -> list[str]:
    if trained is None:
        return (["the quant node had no models (name xgb or ppo in --policy to train them walk-forward; agent then "
                 "reads them too)"] if "agent" in cfg.policies else [])
    return list(trained.notes)


def _client_factory(settings: Settings, cfg: EvalConfig, client: LLMClient | None) -> Callable[[date], LLMClient]:
    if client is not None:
        return lambda _day: client
    if cfg.llm == "offline":
        offline = OfflineRulesClient()
        return lambda _day: offline
    # a real LLM: each replayed session gets the daily run's per-run budget and deadline
    return lambda _day: make_client(settings, "openai", cfg.cache_mode, budget=TokenBudget(settings.llm_token_budget),
                                    deadline=Deadline(settings.llm_run_deadline_seconds))


def _benchmarks(data: UniverseData, sessions: list[date], names: list[str], money: ReplayBook) -> dict[str, PolicyRun]:
    if not names:
        return {}
    results = run_baselines(_bars_in_base(data), sessions[0], sessions[-1], names=names, cash=money.starting_cash,
                            fees=Fees(commission_bps=money.commission_bps, slippage_bps=money.slippage_bps))
    return {name: r.to_policy_run() for name, r in results.items()}


def _bars_in_base(data: UniverseData) -> dict[str, pd.DataFrame]:
    """Each instrument's bars in the base currency (prices times the FX valuation close of the day, or the last
    before: ``tools.fx.valued_rates``, so a refused FX print converts nothing)."""
    base = data.universe.base_currency
    currencies = {i.symbol: i.currency for i in data.universe.instruments}
    out: dict[str, pd.DataFrame] = {}
    for symbol, bars in data.bars.items():
        currency = currencies.get(symbol, base)
        if currency == base:
            out[symbol] = bars
            continue
        fx = valued_rates(data.fx_series[currency]).reindex(bars.index, method="ffill")  # a refused rate never converts
        priced = bars.copy()
        for col in ("open", "high", "low", "close"):
            priced[col] = bars[col] * fx
        # valued as the graph policies' ledger: the instrument's valuation close (its own currency, the gate's
        # jump test) times the day's FX
        closes = bars["close"].to_numpy(dtype="float64")
        priced["valuation_close"] = valuation_closes(closes, bars.index, missing=closes) * fx.to_numpy()
        out[symbol] = priced.dropna(subset=["close"])
    return out


def _config(cfg: EvalConfig, universe: str, sessions: list[date], money: ReplayBook, limits: dict[str, Any],
            client: LLMClient | None, settings: Settings) -> dict[str, Any]:
    model = getattr(client, "model", None) or ("offline-rules-v1" if cfg.llm == "offline" else settings.llm_model)
    return {
        "universe": universe, "start": sessions[0], "end": sessions[-1], "requested": [cfg.start, cfg.end],
        "sessions": len(sessions), "policies": list(cfg.policies), "llm": cfg.llm, "model": model,
        "llm_cache": cfg.cache_mode, "memory": "on" if cfg.memory else "off", "seed": cfg.seed,
        "profile": settings.profile,  # of the graph policies named without @PROFILE
        "llm_cutoff": cfg.llm_cutoff, "starting_cash": money.starting_cash,
        "commission_bps": money.commission_bps, "slippage_bps": money.slippage_bps, "limits": limits,
        "fills": "decisions read D's close and fill at the next session's open",
        "prompts": {n: load_prompt(n).sha256[:12] for n in ("system", "analyst", "sentiment", "quant", "risk")},
        "offline_rules": load_prompt("offline_rules").version if cfg.llm == "offline" else None,
    }


def _cutoff_notes(cfg: EvalConfig) -> list[str]:
    if cfg.llm_cutoff is None:
        return []
    return [f"the model's training cutoff is {cfg.llm_cutoff}: days before it are not evidence (the model may have "
            "read about them); each policy's 'cutoff' block gives the metrics before and after it apart"]


def _split_metrics(run: PolicyRun, cutoff: date) -> dict[str, Any]:
    when = pd.Timestamp(cutoff)
    parts = {"before": run.equity.index <= when, "after": run.equity.index >= when}
    return {k: compute_metrics(run.equity[m], exposure=run.exposure[m]) if m.sum() >= 2 else None
            for k, m in parts.items()}


def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise EvalError(f"--out {out} exists and is not a folder") from None
    except OSError as exc:
        raise EvalError(f"--out {out} cannot be created: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise EvalError(f"--out {out} is not writable")
