"""Data and a trained model shared by the quant tests: the demo universe from the ``sample`` source, loaded
through ``load_universe_data`` into a temporary DuckDB file (no network), and one small XGBoost model."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from tools.cache import MarketCache
from tools.data import load_universe_data
from tools.quant.models import TrainConfig, XgbParams
from tools.quant.train import TrainResult, train_xgb
from tools.universe import load_universe

TRAIN_END = date(2007, 12, 31)
SMALL = TrainConfig(params=XgbParams(max_rounds=25, early_stopping_rounds=10))
NOW = datetime(2024, 1, 2, 12, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo_bars(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, pd.DataFrame]:
    """SP500, NASDAQ and GOOG up to 2012-12-31, read from the sample source through the cache."""
    db = tmp_path_factory.mktemp("demo") / "tradeagent.duckdb"
    with MarketCache(db) as cache:
        data = load_universe_data(load_universe("demo"), cache, as_of=date(2012, 12, 31), refresh=True)
    assert set(data.bars) == {"SP500", "NASDAQ", "GOOG"}, data.errors
    return data.bars


@pytest.fixture(scope="session")
def trained(demo_bars: Mapping[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """One small model of the demo universe trained with bars up to TRAIN_END, saved in a registry."""
    home = tmp_path_factory.mktemp("home")
    return train_xgb(
        demo_bars, "demo", end=TRAIN_END, models_dir=home / "models", db_path=home / "tradeagent.duckdb",
        now=NOW, config=SMALL,
    )  # fmt: skip
