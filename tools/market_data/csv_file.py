"""``csv:PATH``: daily bars from a local CSV (or ``.parquet``) file, one instrument per file.

Expected columns (headers case-insensitive, surrounding spaces ignored): ``Date, Open, High, Low, Close,
Volume``. Other columns (``Adj Close``…) are ignored. Parquet files are read with DuckDB (pandas would
need pyarrow, not a dependency); the date column is named ``Date`` there too.

Deliberate decisions:
- Every shape problem is a ``MalformedDataError`` naming the file and the first offending row, because
  a user fixes these by hand: missing file, missing column, unparsable date, a price that is text.
- An *empty* price cell is not malformed (it is a gap); it stays NaN and the validation gate decides.
- Dates must be ISO ``YYYY-MM-DD``, optionally followed by a time and a UTC offset (``T``/space separated,
  as pandas and yfinance write them). ``01/05/2015`` is refused, not guessed: day-first and month-first
  readings both parse, and the wrong one silently moves prices to other days (look-ahead in a backtest).
  The bar's day is the calendar date as written, so a tz-aware export keeps its exchange's local day and
  a file whose offsets change with daylight saving reads like any other.
- ``Volume`` may be absent (FX and index files often have none) and then reads as 0.0.
- The file is re-read on every fetch: it is local and cheap, and the user may have edited it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from tools.errors import MalformedDataError
from tools.market_data.base import COLUMNS, cut, normalise
from tools.models import Instrument

_REQUIRED = ("date", "open", "high", "low", "close")
# ISO date first; whatever follows (time, offset) must be a separator then something fromisoformat accepts.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\S.*)?")


def _iso_day(value: object) -> pd.Timestamp | None:
    """The calendar day of one ISO date(-time) cell, or None when the cell is not one."""
    if value is pd.NaT:
        return None
    if isinstance(value, datetime):  # parquet object columns hold datetimes; keep their local day
        return pd.Timestamp(value.date())
    if isinstance(value, date):
        return pd.Timestamp(value)
    text = str(value).strip()
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return pd.Timestamp(parsed.date())


def _parse_dates(path: Path, column: pd.Series) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(column):  # a typed parquet DATE/TIMESTAMP column: nothing to guess
        return pd.DatetimeIndex(column)
    days = [_iso_day(v) for v in column]
    for row, day in enumerate(days):
        if day is None:
            raise MalformedDataError(
                f"{path}: unparsable date {column.iloc[row]!r} in data row {row + 1} "
                "(dates must be ISO YYYY-MM-DD, optionally with a time)"
            )
    return pd.DatetimeIndex(days)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MalformedDataError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            # DuckDB reads parquet natively; pandas would need pyarrow, which is not a dependency.
            with duckdb.connect() as con:
                raw = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
        else:
            # Only an empty cell is a gap; pandas would also read "n/a", "null"… as NaN and hide bad exports.
            raw = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pandas/pyarrow raise many types for one cause: an unreadable file
        raise MalformedDataError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    return raw


def read_ohlcv_file(path: Path) -> pd.DataFrame:
    """Parse and check a CSV/parquet OHLCV file into the contract frame shape."""
    raw = _read(path)
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise MalformedDataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, raw.columns)) or 'none'})"
        )
    if raw.columns.duplicated().any():
        raise MalformedDataError(f"{path}: duplicate column names (headers are case-insensitive)")
    if raw.empty:  # said here: further on it would only surface as "nothing cached"
        raise MalformedDataError(f"{path}: no data rows under the header")
    frame = pd.DataFrame(index=_parse_dates(path, raw["date"]))
    for col in COLUMNS:
        if col not in raw.columns:
            continue
        text = raw[col]
        values = pd.to_numeric(text, errors="coerce")
        # A value that was present but did not parse is malformed; an empty cell is only a gap.
        present = text.notna() & (text.astype(str).str.strip() != "")
        wrong = present.to_numpy() & values.isna().to_numpy()
        if wrong.any():
            row = int(wrong.nonzero()[0][0])
            raise MalformedDataError(f"{path}: non-numeric {col} {text.iloc[row]!r} in data row {row + 1}")
        frame[col] = values.to_numpy(dtype="float64")
    return normalise(frame)


class CsvData:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.name = f"csv:{path}"

    def fetch(self, instrument: Instrument, start: date | None, end: date | None) -> pd.DataFrame:
        return cut(read_ohlcv_file(self.path), start, end)
