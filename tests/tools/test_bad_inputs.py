"""Bad inputs a user can hand the data layer: non-ISO CSV dates, odd universe files, files that are not DuckDB.

Each must be a one-line typed error naming the file (or be accepted when harmless, like a UTF-8 BOM), never a
silent misreading, a traceback, or a network call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agent.cli_data import app
from tests.duckdb_files import held_open_elsewhere, sqlite_file
from tools.cache import MarketCache
from tools.errors import DataError, MalformedDataError
from tools.market_data import CsvData
from tools.models import Instrument
from tools.universe import load_universe

runner = CliRunner()
X = Instrument(symbol="X", source="csv:x")
HEADER = "Date,Open,High,Low,Close,Volume\n"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return tmp_path / "home"


def _csv(tmp_path: Path, *days: str) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + "".join(f"{d},1,2,0.5,1.5,10\n" for d in days))
    return path


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    return lines[0]


# ---------------------------------------------------------------- CSV dates


def test_csv_day_first_dates_are_refused_not_swapped(tmp_path: Path) -> None:
    # 01/05/2015 is 1 May to a European and 5 January to pandas: the wrong reading moves May's prices into January.
    path = _csv(tmp_path, "2015-04-30", "01/05/2015", "04/05/2015")
    with pytest.raises(MalformedDataError, match=r"bars.csv: unparsable date '01/05/2015' in data row 2") as err:
        CsvData(path).fetch(X, None, None)
    assert "\n" not in str(err.value) and "YYYY-MM-DD" in str(err.value)


@pytest.mark.parametrize("bad", ["05/01/2015", "2015/05/01", "May 1 2015", "20150501", "2015-5-1", "1430438400",
                                 "2015-05-01 banana", "2015-02-30", "2015-05-01T25:00"])
def test_csv_non_iso_dates_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(MalformedDataError, match=f"unparsable date '{bad}' in data row 2"):
        CsvData(_csv(tmp_path, "2015-04-30", bad)).fetch(X, None, None)


def test_csv_iso_datetimes_keep_the_day_as_written_even_across_dst(tmp_path: Path) -> None:
    # A yfinance export of a Paris stock: offsets change from +01:00 to +02:00 at the end of March.
    path = _csv(tmp_path, "2024-03-28 00:00:00+01:00", "2024-04-02 00:00:00+02:00", "2024-04-03T00:00:00Z",
                "2024-04-04 16:00", "2024-04-05T09:30:00.5", "2024-04-08")
    df = CsvData(path).fetch(X, None, None)
    assert list(df.index) == list(pd.to_datetime(["2024-03-28", "2024-04-02", "2024-04-03", "2024-04-04",
                                                  "2024-04-05", "2024-04-08"]))


def test_csv_day_first_dates_are_a_one_line_cli_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "30/04/2015", "01/05/2015")
    uni = tmp_path / "u.toml"
    uni.write_text(f'name = "u"\n[[instruments]]\nsymbol = "ACME"\nsource = "csv:{path}"\n')
    line = _one_line_error(["show", "ACME", "--universe", str(uni)])
    assert "bars.csv: unparsable date '30/04/2015'" in line


# ---------------------------------------------------------------- universe files

TOML = 'name = "u"\n[[instruments]]\nsymbol = "SPY"\nsource = "yfinance"\n'


def test_a_universe_file_with_a_utf8_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_bytes(b"\xef\xbb\xbf" + TOML.encode())
    assert load_universe(str(path)).symbols == ["SPY"]


def test_a_universe_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(TOML.replace('"u"', '"caf\xe9"').encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.toml: not UTF-8 text") as err:
        load_universe(str(path))
    assert str(path) in str(err.value)
    assert "latin1.toml: not UTF-8 text" in _one_line_error(["fetch", "--universe", str(path)])


@pytest.mark.parametrize("symbol", ["", " ", "\t", "  \u3000 ", " SPY", "SPY "])
def test_a_blank_or_padded_symbol_is_refused(tmp_path: Path, symbol: str) -> None:
    path = tmp_path / "u.toml"
    path.write_text(TOML.replace('"SPY"', f'"{symbol}"'), encoding="utf-8")
    with pytest.raises(DataError, match=r"u.toml: instruments.0.symbol: "):
        load_universe(str(path))
    with pytest.raises(ValidationError):
        Instrument(symbol=symbol, source="yfinance")


# ---------------------------------------------------------------- DuckDB files


@pytest.fixture
def held_by_another_process(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path = tmp_path / "held.duckdb"
    with held_open_elsewhere(path) as pid:
        yield path, pid


def test_the_cache_never_autoloads_extensions(tmp_path: Path) -> None:
    with MarketCache(tmp_path / "c.duckdb") as cache:
        settings = cache._con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), current_setting('autoload_known_extensions')"
        ).fetchall()
    assert settings == [(False, False)]


def _text(path: Path) -> Path:
    path.write_text("not a database")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("make", [_text, sqlite_file, _empty])
def test_a_file_that_is_not_duckdb_is_a_one_line_data_error(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = tmp_path / "tradeagent.duckdb"
    make(path)
    with pytest.raises(DataError, match="is not a tradeagent DuckDB file") as err:
        MarketCache(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_foreign_home_database_is_a_one_line_cli_error(home: Path) -> None:
    home.mkdir(parents=True)
    sqlite_file(home / "tradeagent.duckdb")
    line = _one_line_error(["fetch", "--end", "2010-12-31"])
    assert line.startswith("error: cannot open the market cache: ") and "is not a tradeagent DuckDB file" in line


def test_a_cache_locked_by_another_process_says_so(held_by_another_process: tuple[Path, int]) -> None:
    path, pid = held_by_another_process
    with pytest.raises(DataError, match=rf"held.duckdb is locked by another process \(PID {pid}\)"):
        MarketCache(path)


def test_the_ledger_and_the_cache_can_hold_one_file_open_together(tmp_path: Path) -> None:
    # DuckDB refuses a second connection to one file with other settings: both open it through portfolio.storage.
    from portfolio.ledger import Ledger

    path = tmp_path / "tradeagent.duckdb"
    with MarketCache(path) as cache, Ledger(path, base_currency="USD", starting_cash=100) as ledger:
        assert cache.symbols() == [] and ledger.snapshot().cash == 100


# ---------------------------------------------------------------- fetch window


def test_fetch_with_start_after_end_is_refused_up_front(home: Path) -> None:
    line = _one_line_error(["fetch", "--start", "2010-01-01", "--end", "2009-01-01"])
    assert line == "error: --start 2010-01-01 is after --end 2009-01-01"
    assert not (home / "tradeagent.duckdb").exists()  # refused before the cache was opened
