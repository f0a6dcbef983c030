"""The book never gets stuck, the kill switch reaches pending orders and running days, dry runs tell the truth.

Each test here failed on the code before the hardening issue (stuck settlement, halts that let queued orders
fill, a kill switch read once per run, dry runs without settlement, fills at the run date's FX, a run refused
after it had already changed the book, a deleted risk state meaning ACTIVE).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.daily import run_daily
from agent.day import Book, trade_day
from agent.errors import LLMError
from agent.settings import Settings
from portfolio.breakers import MemoryRiskStore
from portfolio.broker import PaperBroker
from portfolio.ledger import Ledger
from portfolio.models import RiskState
from portfolio.risk import CEILINGS, RiskStateStore
from tests.agent.test_graph import analyst_says, risk_targets
from tests.fakes import ScriptedLLM
from tools.data import UniverseData
from tools.models import Instrument, Universe
from tools.view import MarketView

SILENT = [LLMError("timeout", "no answer")]  # a day that decides nothing


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def day(settings: Settings, when: date, *answers: object) -> dict:
    return run_daily(settings, universe="demo", run_date=when, client=ScriptedLLM(list(answers) or list(SILENT))).results


def book_state(settings: Settings) -> tuple:
    ledger = Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0)
    try:
        return ledger.account(), ledger.orders(), ledger.fills(), ledger.equity_curve()
    finally:
        ledger.close()


# ----------------------------------------------------------------- 1. a book that got stuck


@pytest.mark.slow
def test_the_readme_tour_then_ten_more_sessions_fills_what_it_orders_and_never_gets_stuck(home: Path) -> None:
    code, out, err = cli("demo", "--json")
    assert code == 0, err
    demo = json.loads(out)
    assert demo["date"] == "2013-02-28" and len(demo["placed"]) == 3
    sessions = pd.bdate_range("2013-03-01", "2013-03-15")  # no NYSE holiday in these two weeks
    assert len(sessions) == 11
    reports = []
    for session in sessions:
        code, out, err = cli("daily", "--date", session.date().isoformat(), "--json")
        assert code == 0, err
        reports.append(json.loads(out))
    assert sorted(f["order_id"] for f in reports[0]["fills"]) == sorted(demo["placed"])  # the tour fills them all
    code, out, _ = cli("trades", "--json")
    orders = json.loads(out)["orders"]
    assert not [o for o in orders if o["status"] == "pending" and o["run_date"] < "2013-03-08"]
    expired = [e for r in reports for e in r["expired"]]
    assert all(e["symbol"] == "GOOG" for e in expired)  # GOOG's history ends on 2013-03-01; nothing else expires


def test_an_instrument_whose_data_stops_never_blocks_the_others(settings: Settings) -> None:
    # GOOG's last bar is 2013-03-01: an order for it has no session to fill at, ever
    day(settings, date(2013, 3, 1), analyst_says(GOOG=0.9), risk_targets(GOOG=0.1))
    day(settings, date(2013, 3, 4), analyst_says(SP500=0.9), risk_targets(SP500=0.1))
    fifth = day(settings, date(2013, 3, 5), analyst_says(NASDAQ=0.9), risk_targets(NASDAQ=0.1))
    assert [f["symbol"] for f in fifth["fills"]] == ["SP500"]
    sixth = day(settings, date(2013, 3, 6))
    assert [f["symbol"] for f in sixth["fills"]] == ["NASDAQ"]
    for d in (7, 8):
        last = day(settings, date(2013, 3, d))
    assert [e["symbol"] for e in last["expired"]] == ["GOOG"]
    assert last["expired"][0]["reason"].startswith("expired: no GOOG session to fill at")


def test_orders_cancel_by_id_and_all(home: Path) -> None:
    code, out, _ = cli("demo", "--json")
    placed = json.loads(out)["placed"]
    code, out, _ = cli("orders", "cancel", placed[0], "--reason", "changed my mind", "--json")
    assert code == 0
    cancelled = json.loads(out)["cancelled"]
    assert [c["order_id"] for c in cancelled] == [placed[0]]
    assert cancelled[0]["reason"] == "cancelled by hand: changed my mind"
    code, out, _ = cli("orders", "cancel", placed[0])
    assert code == 1 and "not pending" in out
    code, out, _ = cli("orders", "cancel", "--all", "--json")
    assert sorted(c["order_id"] for c in json.loads(out)["cancelled"]) == sorted(placed[1:])
    code, out, _ = cli("daily", "--date", "2013-03-01", "--json")
    assert code == 0 and json.loads(out)["fills"] == []
    code, out, err = cli("orders", "cancel")
    assert code == 2 and "give order ids, or --all" in err


# ----------------------------------------------------------------- 2, 3. the kill switch


def test_halt_cancels_the_queued_orders_before_they_can_fill(settings: Settings) -> None:
    first = day(settings, date(2013, 2, 27), analyst_says(SP500=0.9), risk_targets(SP500=0.15))
    assert first["placed"]
    RiskStateStore(settings.risk_state_path).save(RiskState(mode="HALTED", reason="earnings", changed_by="cli"))
    nxt = day(settings, date(2013, 2, 28))
    assert nxt["fills"] == [] and nxt["portfolio"]["positions"] == []
    assert [c["order_id"] for c in nxt["cancelled"]] == first["placed"]
    assert nxt["cancelled"][0]["reason"] == "cancelled: risk mode HALTED (earnings)"


def test_reduce_cancels_queued_buys_and_keeps_queued_sells(settings: Settings) -> None:
    day(settings, date(2013, 2, 26), analyst_says(SP500=0.9), risk_targets(SP500=0.15))
    day(settings, date(2013, 2, 27))  # SP500 fills
    swap = day(settings, date(2013, 2, 28), analyst_says(SP500=-0.9, NASDAQ=0.9), risk_targets(SP500=0.0, NASDAQ=0.15))
    assert {(o["symbol"], o["side"]) for o in swap["approved"]} == {("SP500", "sell"), ("NASDAQ", "buy")}
    RiskStateStore(settings.risk_state_path).save(RiskState(mode="REDUCING", reason="by hand", changed_by="cli"))
    nxt = day(settings, date(2013, 3, 1))
    assert [f["symbol"] for f in nxt["fills"]] == ["SP500"] and nxt["portfolio"]["positions"] == []
    assert [(c["symbol"], c["reason"]) for c in nxt["cancelled"]] == [("NASDAQ", "cancelled: risk mode REDUCING (by hand)")]


class HaltsWhileThinking(ScriptedLLM):
    """A model that takes its time: while it answers the risk node, the owner runs `risk halt`."""

    def __init__(self, store: RiskStateStore, responses: list) -> None:
        super().__init__(responses)
        self.store = store

    def complete(self, request):  # type: ignore[no-untyped-def]
        if request.node == "risk":
            with self.store.locked():
                self.store.save(RiskState(mode="HALTED", reason="pulled the plug", changed_by="cli"))
        return super().complete(request)


def test_a_halt_issued_while_the_run_waits_on_the_llm_stops_that_runs_orders(settings: Settings) -> None:
    store = RiskStateStore(settings.risk_state_path)
    llm = HaltsWhileThinking(store, [analyst_says(SP500=0.9), risk_targets(SP500=0.15)])
    r = run_daily(settings, universe="demo", run_date=date(2013, 2, 27), client=llm).results
    assert r["placed"] == [] and r["approved"] == []
    assert {x["code"] for x in r["rejected"]} == {"halted"} and r["hold"]["reason"] == "hold:halted"
    assert r["risk"]["state"]["mode"] == "HALTED" and r["risk"]["state"]["reason"] == "pulled the plug"
    _, orders, _, _ = book_state(settings)
    assert orders == []


def test_a_breaker_never_replaces_a_persons_halt(tmp_path: Path) -> None:
    store = RiskStateStore(tmp_path / "risk_state.json")
    store.save(RiskState(mode="HALTED", reason="by hand", changed_by="cli"))
    breaker = RiskState(mode="REDUCING", reason="one-day loss", changed_by="breaker:daily_loss")
    assert store.escalate(breaker).mode == "HALTED"
    assert store.load().changed_by == "cli"


def test_a_deleted_risk_state_with_a_book_halts_and_says_how_to_resume(settings: Settings, home: Path) -> None:
    settings = Settings(home=home)
    day(settings, date(2013, 2, 27), analyst_says(SP500=0.9), risk_targets(SP500=0.15))
    settings.risk_state_path.unlink()
    r = day(settings, date(2013, 2, 28), analyst_says(NASDAQ=0.9), risk_targets(NASDAQ=0.15))
    assert r["risk"]["state"]["mode"] == "HALTED" and "risk resume" in r["risk"]["state"]["reason"]
    assert r["placed"] == [] and r["fills"] == []
    code, out, _ = cli("risk", "status", "--json")
    assert code == 0 and json.loads(out)["mode"] == "HALTED"


# ----------------------------------------------------------------- 4. dry runs


def test_a_dry_run_decides_on_the_book_the_real_run_will_see_and_changes_nothing(settings: Settings) -> None:
    day(settings, date(2013, 2, 26), analyst_says(SP500=0.9), risk_targets(SP500=0.15))
    answers = [analyst_says(SP500=0.9, NASDAQ=0.9), risk_targets(SP500=0.15, NASDAQ=0.15)]
    before = book_state(settings)
    dry = run_daily(settings, universe="demo", run_date=date(2013, 2, 27), dry_run=True,
                    client=ScriptedLLM(list(answers))).results
    assert book_state(settings) == before  # settlement, marks and orders all rolled back
    assert [f["symbol"] for f in dry["fills"]] == ["SP500"]  # it saw the fill the real run will make
    real = day(settings, date(2013, 2, 27), *answers)
    assert [(o["symbol"], o["side"], o["quantity"]) for o in dry["approved"]] == [
        (o["symbol"], o["side"], o["quantity"]) for o in real["approved"]
    ]
    assert dry["portfolio"] == real["portfolio"]


# ----------------------------------------------------------------- 7. FX of the fill session


def _eur_universe_view(as_of: date) -> tuple[Universe, MarketView]:
    days = pd.bdate_range("2012-01-02", "2012-03-30")
    gap = (days > "2012-03-01") & (days < "2012-03-09")  # the instrument does not trade for a week
    idx = days[~gap]
    bars = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1e6}, index=idx)
    fx = pd.Series([1.0 + 0.01 * i for i in range(len(days))], index=days)  # EUR per USD, different every day
    uni = Universe(name="eur", base_currency="EUR",
                   instruments=[Instrument(symbol="SPY", source="synthetic", currency="USD")])
    data = UniverseData(universe=uni, as_of=None, bars={"SPY": bars}, fx_series={"USD": fx})
    return uni, MarketView.build(data, as_of)


def test_a_foreign_fill_uses_the_fx_of_its_own_session_not_the_run_dates(tmp_path: Path) -> None:
    ledger = Ledger(Path(":memory:"), base_currency="EUR", starting_cash=10_000.0)
    book = Book(ledger=ledger, broker=PaperBroker(ledger), risk_store=MemoryRiskStore(), limits=CEILINGS)
    uni, view = _eur_universe_view(date(2012, 3, 1))
    first = trade_day(view, uni, book, ScriptedLLM([analyst_says(SPY=0.9), risk_targets(SPY=0.15)]))
    assert first["placed"]
    uni, later = _eur_universe_view(date(2012, 3, 12))
    r = trade_day(later, uni, book, ScriptedLLM(list(SILENT)))
    (fill,) = r["fills"]
    assert fill["fill_date"] == "2012-03-09"
    fx = later.fx_series["USD"]
    assert fill["fx_rate"] == pytest.approx(float(fx.loc["2012-03-08"]))  # the last close before that open
    assert fill["fx_rate"] != pytest.approx(float(fx.loc["2012-03-12"]))


# ----------------------------------------------------------------- 8. a refused run changes nothing


def test_a_run_refused_for_its_settings_leaves_the_book_untouched(home: Path) -> None:
    assert cli("demo", "--json")[0] == 0
    settings = Settings(home=home)
    before = book_state(settings)
    code, _, err = cli("daily", "--date", "2013-03-01", "--llm", "openai")
    assert code == 2 and "OPENAI_API_KEY" in err
    assert book_state(settings) == before  # no settlement, no equity mark


def test_the_daily_run_closes_a_position_whose_data_stopped_at_its_last_close_like_the_replay(settings: Settings) -> None:
    day(settings, date(2013, 2, 27), analyst_says(GOOG=0.9), risk_targets(GOOG=0.1))
    day(settings, date(2013, 2, 28))  # GOOG fills at the 02-28 open; its history ends on 03-01
    reports = [day(settings, date(2013, 3, d)) for d in (1, 4, 5, 6, 7, 8)]
    closed = [d for r in reports for d in r["delisted"]]
    assert [(d["symbol"], d["last_bar"]) for d in closed] == [("GOOG", "2013-03-01")]
    assert reports[-1]["date"] == "2013-03-08" and reports[-1]["delisted"]  # the 5th session without a GOOG bar
    assert all(p["symbol"] != "GOOG" for p in reports[-1]["portfolio"]["positions"])
    _, _, fills, _ = book_state(settings)
    (cash_out,) = [f for f in fills if f.symbol == "GOOG" and f.side == "sell"]
    assert cash_out.commission == 0.0 and cash_out.fill_date == date(2013, 3, 8)
    assert cash_out.price == pytest.approx(closed[0]["price"])


def test_a_dry_run_on_a_fresh_home_does_not_create_the_book(tmp_path: Path) -> None:
    five = Settings(home=tmp_path, starting_cash=5_000.0)
    dry = run_daily(five, universe="demo", run_date=date(2013, 2, 27), dry_run=True,
                    client=ScriptedLLM([analyst_says(SP500=0.9), risk_targets(SP500=0.15)])).results
    assert dry["portfolio"]["equity"] == 5_000.0
    assert Ledger.open_existing(five.db_path) is None  # no book was created by the dry run
    real = day(Settings(home=tmp_path), date(2013, 2, 27), analyst_says(SP500=0.9), risk_targets(SP500=0.15))
    assert real["portfolio"]["equity"] == 10_000.0  # the real run's own settings


def test_every_day_leaves_the_book_settled_through_that_day_even_with_nothing_pending(settings: Settings) -> None:
    """The watermark stayed behind on days with nothing pending; a cash-out fill dated D then blocked every later
    settlement ("cannot settle 2013-02-27: the ledger already has fills of 2013-03-08", a 13-year replay)."""
    day(settings, date(2013, 2, 28), analyst_says(SP500=0.9), risk_targets(SP500=0.1))
    day(settings, date(2013, 3, 1), analyst_says(GOOG=0.9), risk_targets(GOOG=0.1))  # GOOG's last bar: never fills
    for d in (4, 5, 6, 7, 8, 11, 12):  # it waits, expires on the 8th, then nothing is pending
        day(settings, date(2013, 3, d))
        ledger = Ledger(settings.db_path, base_currency="USD", starting_cash=10_000.0)
        try:
            assert ledger.settled_through() == date(2013, 3, d)
        finally:
            ledger.close()
