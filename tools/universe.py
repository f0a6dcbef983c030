"""Universes: built-in ones shipped as package data, or a user's TOML file (format in shared/DESIGN.md).

Built-ins: ``demo`` (offline sample data), ``etf-eu`` (yfinance), ``crypto-eur`` (``ccxt:kraken``) and
``synthetic-N`` (N seeded bootstrap symbols ``SYN000``…, generated, not a file).

Deliberate decisions:
- A name containing a path separator or ending in ``.toml`` is a file; anything else is a built-in name,
  so a typo in a built-in name gives "unknown universe" with the list rather than "file not found".
- A relative ``csv:`` path (and a relative ``[news] feeds`` path) inside a TOML file is resolved against the
  TOML file's folder, so a universe and its CSVs and feed files can be moved together.
- Files are read as UTF-8 with an optional BOM (Windows editors write one); bytes that are not UTF-8
  are a one-line error naming the file rather than a decode traceback.
- TOML syntax errors keep tomllib's "(at line L, column C)"; schema errors name the field. One line each.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tools.errors import DataError, UnknownUniverseError
from tools.models import Instrument, NewsConfig, Universe

_SYNTHETIC = re.compile(r"^synthetic-(\d+)$")
MAX_SYNTHETIC = 5000


def _builtin_files() -> dict[str, Any]:
    folder = resources.files("tools").joinpath("universes")
    return {p.name.removesuffix(".toml"): p for p in folder.iterdir() if p.name.endswith(".toml")}


def list_universes() -> list[str]:
    """Names accepted by ``load_universe`` (besides a path to a TOML file)."""
    return [*sorted(_builtin_files()), "synthetic-N"]


def synthetic_universe(n: int, seed: int = 0) -> Universe:
    if not 1 <= n <= MAX_SYNTHETIC:
        raise UnknownUniverseError(f"synthetic-N needs 1 <= N <= {MAX_SYNTHETIC}, got {n}")
    source = "synthetic" if seed == 0 else f"synthetic:{seed}"
    width = max(3, len(str(n - 1)))
    return Universe(
        name=f"synthetic-{n}",
        base_currency="USD",
        instruments=[Instrument(symbol=f"SYN{i:0{width}d}", source=source) for i in range(n)],
        news=NewsConfig(),
    )


def _from_toml(text: str, origin: str, base_dir: Path | None) -> Universe:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{origin}: invalid TOML: {exc}") from None
    if base_dir is not None:
        for inst in raw.get("instruments", []) or []:
            source = inst.get("source", "") if isinstance(inst, dict) else ""
            if isinstance(source, str) and source.startswith("csv:"):
                path = Path(source[4:]).expanduser()
                if not path.is_absolute():
                    inst["source"] = f"csv:{(base_dir / path).resolve()}"
        news = raw.get("news")
        if isinstance(news, dict) and isinstance(news.get("feeds"), list):  # local feed files move with the TOML too
            news["feeds"] = [
                str((base_dir / Path(f).expanduser()).resolve())
                if isinstance(f, str) and f.strip() and "://" not in f and not Path(f).expanduser().is_absolute()
                else f
                for f in news["feeds"]
            ]
    try:
        return Universe.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "universe"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise DataError(f"{origin}: {where}: {err['msg']}{more}") from None


def _read_text(path: Traversable, origin: str) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{origin}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{origin}: cannot be read ({exc.strerror or exc})") from None


def load_universe(name_or_path: str) -> Universe:
    """A built-in universe by name, ``synthetic-N``, or a TOML file by path."""
    match = _SYNTHETIC.match(name_or_path)
    if match:
        return synthetic_universe(int(match.group(1)))
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path
    if looks_like_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise UnknownUniverseError(f"universe file {name_or_path} not found")
        return _from_toml(_read_text(path, str(path)), str(path), path.resolve().parent)
    files = _builtin_files()
    if name_or_path not in files:
        raise UnknownUniverseError(
            f"unknown universe {name_or_path!r}; built-in: {', '.join(list_universes())}, or a path to a .toml file"
        )
    origin = f"universe {name_or_path}"
    return _from_toml(_read_text(files[name_or_path], origin), origin, None)
