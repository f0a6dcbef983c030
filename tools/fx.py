"""FX: rates that turn an instrument's price into the universe's base currency, point-in-time.

Convention: a *rate* for currency C in base B is "units of B per 1 unit of C", so
``value_in_base = price * rate``. Yahoo names the pair ``{C}{B}=X`` with exactly that meaning
(``EURUSD=X`` = USD per 1 EUR; ``USDEUR=X`` = EUR per 1 USD), so we fetch that ticker directly rather than
inverting the opposite pair.

Deliberate decisions:
- Rates are daily closes, read "last close on or before D" like every other series (no look-ahead).
- A missing rate is an error (``DataError``), never a silent 1.0: valuing USD at par with EUR is a 10 %+
  mistake the guard would not catch.
- A rate is the series' *valuation close* (``tools.validation.valuation_rows``, the price gate's own jump test):
  a ×50 bad print of ``EURUSD=X`` (or a NaN / non-positive one) never converts a price, values a book or a fill:
  the last accepted rate does (a lasting move of more than 50 % is accepted on its 5th session).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pandas as pd

from tools.errors import DataError
from tools.models import Instrument
from tools.validation import last_valuation_close, valuation_closes


def fx_ticker(currency: str, base: str) -> str:
    """The Yahoo ticker quoting ``base`` per 1 ``currency`` (e.g. USD→EUR: ``USDEUR=X``)."""
    return f"{currency.upper()}{base.upper()}=X"


def fx_instrument(currency: str, base: str) -> Instrument:
    return Instrument(
        symbol=fx_ticker(currency, base), source="yfinance", currency=base, name=f"{currency}→{base}"
    )


def fx_rates_as_of(series: Mapping[str, pd.Series], base: str, as_of: date | None) -> dict[str, float]:
    """Rate per currency (base per unit) from daily close series keyed by currency; base itself is 1.0.

    Each rate is the valuation close on or before ``as_of`` (the last close the jump test accepts, see the
    module); a currency whose series has none is left out.
    """
    rates: dict[str, float] = {base.upper(): 1.0}
    for currency, closes in series.items():
        cut = closes if as_of is None else closes[closes.index <= pd.Timestamp(as_of)]
        rate = last_valuation_close(cut.to_numpy(dtype="float64"), cut.index)
        if rate is not None:
            rates[currency.upper()] = rate
    return rates


def valued_rates(closes: pd.Series) -> pd.Series:
    """Each day's valuation rate of one FX close series (NaN before its first usable close): point-in-time, the
    value on day D is ``fx_rates_as_of`` on D."""
    return pd.Series(valuation_closes(closes.to_numpy(dtype="float64"), closes.index), index=closes.index,
                     name=closes.name)


def to_base(price: float, currency: str, base: str, rate_table: Mapping[str, float]) -> float:
    """``price`` in ``currency`` expressed in ``base`` using ``rate_table`` (base per unit of currency)."""
    if currency.upper() == base.upper():
        return float(price)
    rate = rate_table.get(currency.upper())
    if rate is None or not rate > 0:
        raise DataError(f"no {currency}→{base} rate available")
    return float(price) * float(rate)
