"""Model registry: one versioned folder per trained model, and the ``model_performance`` table.

Layout (``models_dir`` is ``TRADEAGENT_HOME/models``, passed in by the caller)::

    models_dir/<kind>/<version>/model.json   the model file (xgb: ``Booster.save_model`` JSON; never a pickle)
    models_dir/<kind>/<version>/model.zip    (ppo: stable-baselines3's ``model.save`` zip; inference reads
                                             only its tensors, see ``tools.quant.ppo.load_policy``)
    models_dir/<kind>/<version>/meta.json    ``tools.quant.models.ModelMeta`` (kind, universe, training window,
                                             features, label rule, seed, params, libraries, metrics, sha256;
                                             only the fields of its own kind: ``ModelMeta.other_kind_fields``)

Contract:
- ``save_artefact`` writes into a hidden temporary folder and renames it into place, so a crash never leaves
  half an artefact under a version name. The version is ``<kind>-<universe>-<training_end>-<12 hex>``, a digest
  of the model file's sha256 and the meta (``created_at`` aside): retraining the same thing yields the same
  version, which is kept as it is.
- ``load_artefact`` refuses (``ArtefactError``, one line) a folder whose ``meta.json`` is missing or not JSON,
  does not match the schema (unknown kind, missing or extra key), sits under another kind's folder or
  another version's name, names a model file that is missing, or whose sha256 differs.
- ``latest_usable(models_dir, kind, universe, as_of=D)``: the newest model whose training window, labels
  included, ended strictly BEFORE D (``training_end < D``), so no model ever predicts a day it was trained on.
  It fails closed: any unreadable artefact under the kind's folder is refused rather than skipped (it may be
  the newest one). ``NoUsableModelError`` when none qualifies.
- ``model_performance`` (in the shared DuckDB file, opened only through ``portfolio.storage.connect``, created
  IF NOT EXISTS): one row per model, evaluation and window; re-recording a window replaces its row.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
from pydantic import ValidationError

from portfolio.storage import StorageError, connect
from tools.quant.errors import ArtefactError, ModelError, NoUsableModelError
from tools.quant.models import KINDS, FoldMetrics, ModelMeta

MODEL_FILES: dict[str, str] = {"xgb": "model.json", "ppo": "model.zip"}
META_FILE = "meta.json"

_PERFORMANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_performance (
    model_version     VARCHAR   NOT NULL,
    kind              VARCHAR   NOT NULL,
    universe          VARCHAR   NOT NULL,
    evaluation        VARCHAR   NOT NULL,
    train_start       DATE      NOT NULL,
    train_end         DATE      NOT NULL,
    window_start      DATE      NOT NULL,
    window_end        DATE      NOT NULL,
    n                 INTEGER   NOT NULL,
    accuracy          DOUBLE    NOT NULL,
    log_loss          DOUBLE,
    majority_accuracy DOUBLE    NOT NULL,
    prior_accuracy    DOUBLE    NOT NULL,
    prior_log_loss    DOUBLE,
    beats_naive       BOOLEAN   NOT NULL,
    recorded_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (model_version, evaluation, window_start, window_end)
)
"""


@dataclass(frozen=True)
class Artefact:
    path: Path
    meta: ModelMeta

    @property
    def model_path(self) -> Path:
        return self.path / self.meta.model_file


@dataclass(frozen=True)
class Listing:
    """One folder under the registry: its artefact, or why it is refused."""

    path: Path
    artefact: Artefact | None
    error: str | None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "universe"


def _version(meta: ModelMeta) -> str:
    """``<kind>-<universe>-<training_end>-<12 hex>``: the hex digest covers the model file's hash and every meta
    field but ``version`` and ``created_at``, so an identical retrain gets the same version and the same model
    with other recorded metrics (another walk-forward shape) gets its own."""
    body = meta.model_dump_json(exclude={"version", "created_at"} | meta.other_kind_fields())
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
    return f"{meta.kind}-{_slug(meta.universe)}-{meta.training_end:%Y%m%d}-{digest}"


def save_artefact(
    models_dir: Path, fields: Mapping[str, Any], write_model: Callable[[Path], None]
) -> Artefact:
    """Write a model (``write_model(path)`` writes the file) with its meta; ``fields`` is every ``ModelMeta``
    key except ``version``, ``model_file`` and ``model_sha256``, which are filled in here."""
    kind = str(fields["kind"])
    if kind not in KINDS:
        raise ArtefactError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    folder = models_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        model_file = MODEL_FILES[kind]
        write_model(tmp / model_file)
        sha = sha256_of(tmp / model_file)
        draft = ModelMeta(**fields, version="draft", model_file=model_file, model_sha256=sha)
        meta = draft.model_copy(update={"version": _version(draft)})
        version = meta.version
        body = meta.model_dump_json(indent=2, exclude=meta.other_kind_fields())
        (tmp / META_FILE).write_text(body + "\n", encoding="utf-8")
        final = folder / version
        if final.exists():
            return load_artefact(final)  # the same model, already saved: keep the first copy
        os.replace(tmp, final)
        return Artefact(path=final, meta=meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_artefact(path: Path) -> Artefact:
    """The artefact in ``path``, verified (see the module contract); ``ArtefactError`` otherwise.

    A verified artefact is remembered while none of its files changes (name, size, mtime, ctime): a replay asks
    for the day's model every session and must not re-read and re-hash every artefact each time. Any change to
    a file changes the key, so a modified artefact is verified (and refused) again.
    """
    return _verified(path, _stamp(path))


def _stamp(path: Path) -> tuple[tuple[str, int, int, int], ...]:
    try:
        entries = [(e.name, e.stat()) for e in os.scandir(path)]
    except OSError:
        return ()
    return tuple(sorted((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for name, st in entries))


@lru_cache(maxsize=256)
def _verified(path: Path, stamp: tuple[tuple[str, int, int, int], ...]) -> Artefact:
    name = path.name

    def refuse(reason: str) -> ArtefactError:
        return ArtefactError(f"model artefact {name} refused: {reason}")

    try:
        raw = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise refuse(f"no {META_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse(f"{META_FILE} is not JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise refuse(f"{META_FILE} is not a JSON object")
    if raw.get("kind") not in KINDS:
        raise refuse(f"unknown kind {raw.get('kind')!r} (known: {', '.join(KINDS)})")
    try:
        meta = ModelMeta.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "meta"
        raise refuse(f"{META_FILE} does not match the schema ({where}: {first['msg']})") from None
    if path.parent.name != meta.kind:
        raise refuse(f"a {meta.kind} model filed under {path.parent.name}/")
    if meta.version != name:
        raise refuse(f"its meta names version {meta.version}")
    model = path / meta.model_file
    if meta.model_file != MODEL_FILES[meta.kind] or not model.is_file():
        raise refuse(f"model file {meta.model_file} is missing")
    if sha256_of(model) != meta.model_sha256:
        raise refuse(f"sha256 of {meta.model_file} does not match its meta (modified or corrupt)")
    return Artefact(path=path, meta=meta)


def list_artefacts(models_dir: Path, kind: str | None = None) -> list[Listing]:
    """Every artefact folder (hidden temporary folders excepted), refused ones with their reason."""
    kinds = [kind] if kind is not None else sorted(p.name for p in _dirs(models_dir))
    out: list[Listing] = []
    for k in kinds:
        for folder in sorted(_dirs(models_dir / k)):
            try:
                out.append(Listing(folder, load_artefact(folder), None))
            except ModelError as exc:
                out.append(Listing(folder, None, str(exc)))
    return out


def _dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


def latest_usable(models_dir: Path, kind: str, universe: str, *, as_of: date) -> Artefact:
    """The newest ``kind`` model of ``universe`` whose training window ended before ``as_of``."""
    if kind not in KINDS:
        raise ArtefactError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    listings = list_artefacts(models_dir, kind)
    refused = [x.error for x in listings if x.error is not None]
    if refused:
        raise ArtefactError(f"{refused[0]}; remove it or retrain")
    mine = [x.artefact for x in listings if x.artefact is not None and x.artefact.meta.universe == universe]
    if not mine:
        raise NoUsableModelError(f"no {kind} model trained for universe {universe} in {models_dir}")
    usable = [a for a in mine if a.meta.training_end < as_of]
    if not usable:
        first = min(a.meta.training_end for a in mine)
        raise NoUsableModelError(
            f"no {kind} model for universe {universe} was trained before {as_of} "
            f"(the earliest training window ends {first}); a model never predicts a day it was trained on"
        )
    return max(usable, key=lambda a: (a.meta.training_end, a.meta.created_at, a.meta.version))


def record_performance(
    db_path: Path | str,
    meta: ModelMeta,
    evaluation: str,
    windows: Sequence[FoldMetrics],
    *,
    recorded_at: datetime,
) -> int:
    """Insert or replace one ``model_performance`` row per window; returns the number of rows written."""
    rows = [
        (
            meta.version, meta.kind, meta.universe, evaluation, w.train_start, w.train_end, w.test_start,
            w.test_end, w.metrics.model.n, w.metrics.model.accuracy, w.metrics.model.log_loss,
            w.metrics.majority.accuracy, w.metrics.prior.accuracy, w.metrics.prior.log_loss,
            w.metrics.beats_naive, recorded_at,
        )
        for w in windows
    ]  # fmt: skip
    con = _open(db_path)
    try:
        con.execute(_PERFORMANCE_SCHEMA)
        if rows:
            con.executemany(f"INSERT OR REPLACE INTO model_performance VALUES ({', '.join('?' * 16)})", rows)
    finally:
        con.close()
    return len(rows)


def read_performance(db_path: Path | str, version: str | None = None) -> list[dict[str, Any]]:
    """``model_performance`` rows (all, or one model's), by version, evaluation and window."""
    con = _open(db_path)
    try:
        con.execute(_PERFORMANCE_SCHEMA)
        sql = "SELECT * FROM model_performance"
        params: list[object] = []
        if version is not None:
            sql += " WHERE model_version = ?"
            params.append(version)
        cur = con.execute(sql + " ORDER BY model_version, evaluation, window_start", params)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def _open(db_path: Path | str) -> duckdb.DuckDBPyConnection:
    try:
        return connect(db_path)
    except StorageError as exc:
        raise ModelError(f"cannot open the model performance table: {exc}") from None
