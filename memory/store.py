"""``MemoryStore``: where past decisions and their outcomes live, and the point-in-time search over them.

Contract:
- ``add(records)`` stores one record per id (``YYYYMMDD:SYMBOL``); writing a day again replaces its records,
  except those that already carry an outcome (a day's outcome is never wiped by a re-run).
- ``attach(outcomes)`` adds outcomes to stored records; ``pending(before)`` lists the records decided before
  ``before`` that have none yet.
- ``search(texts, as_of=D, k)`` is ONE batched query for all ``texts``: per text, the ``k`` most similar
  records with ``decision_date < D``; a record's outcome comes back only when ``known_at <= D`` (else the
  record comes back without it). An empty store returns empty lists: nothing is invented.
- ``ChromaMemoryStore.persistent(path, embedder)`` (the user's ``TRADEAGENT_HOME/memory``) and
  ``ChromaMemoryStore.ephemeral(embedder)`` (in-process, a collection of its own per store). Replays use
  ``memory.exact.ExactMemoryStore`` instead: exact, reproducible and ~100x cheaper a day (its module doc).
- A store remembers its embedding model's name; opening it with another model is refused with one line
  (vectors of two models are not comparable). Every failure is a one-line ``MemoryStoreError``.

Deliberate decisions:
- Point-in-time twice: the Chroma query carries ``where decision_date < D`` (and ``symbol`` when asked),
  and every hit is re-checked in Python, outcomes included. One exception, for speed, with the same result:
  Chroma's metadata pre-filter costs ~70 ms per query at 10,000 records (it materialises every matching id)
  against ~12 ms for the plain nearest-neighbour search, and in a daily run or a replay NO stored record is
  dated D or later. So the store first asks Chroma for one record dated ``>= D`` (a filter that matches
  nothing, ~2 ms); only when none exists does it drop the ``where`` (it could not exclude anything). A record
  written between the two calls is still removed by the Python check.
- Ties: situation texts are categorical, so many records share one text; their readings tell them apart
  (``memory.models``: the vector is the text's embedding plus the weighted readings), and Chroma's order among
  exactly equal distances is arbitrary, so a query also over-fetches (``OVERFETCH`` x k) and ranks by
  similarity, then the most recent decision, then symbol. A search with readings (the day's pre-fetch) is
  then deterministic; a words-only search (the tool, the CLI) is exact in everything but which of several
  identical records fill the last places.
- ``pending`` reads the records without an outcome from Chroma once per store object and then keeps that
  set itself as ``add`` and ``attach`` go (at 25,000 records the filtered read cost ~50 ms a day). A store
  has one writer at a time (the daily run; a replay's own store): another process's writes are seen by the
  next store opened.
- Determinism: Chroma 1.5.9 (local, Rust) has no exact buffer: every write goes straight into the HNSW graph,
  synchronously, and the records of ONE write call are inserted in parallel (``apply_log_chunk`` in
  rust/segment/src/local_hnsw.rs: rayon's global pool over a ``HashMap`` whose order is random per process,
  so even one thread would not fix the order), so a graph built from many-record upserts differs between
  runs; beyond ~2,000 records its approximate recall (and which of several tied records come back) then
  differed: two runs of the 2008-2012 demo ablation recalled differently for GOOG on 2012-09-07. The
  collection's ``num_threads`` is stored but not read by the local index; ``batch_size`` neither;
  ``sync_threshold`` says how often the index is saved, and every write re-reads Chroma's log since the last
  save (``BackfillMessage``), so a write costs more the longer ago the last save was. So the in-process
  Chroma store upserts ONE record per call, in id order, and saves after every record (``sync_threshold`` 1:
  in memory that is one bookmark row, no file): the graph is built the same way in every run (hnswlib's level
  generator is seeded). Each such call costs ~3 ms, a 20-record day ~50-70 ms: replays use
  ``memory.exact``. A persistent store keeps one call per day (a day's records all there or none when a
  daily run is killed) and Chroma's defaults (a save, every 1,000 records, writes the whole index): its
  graph is not bit-identical across runs, which only replays promise.
- Metadata is flat (Chroma's rule): the filterable keys, plus the record and the outcome as JSON strings.
- Chroma's anonymous telemetry is switched off: the memory makes no network call.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import ValidationError

from memory.embeddings import Embedder
from memory.errors import MemoryStoreError
from memory.models import (
    NUMERIC_WEIGHT,
    MemoryHit,
    MemoryRecord,
    Outcome,
    Situation,
    int_date,
    is_hit,
    readings,
    search_situations,
)

COLLECTION = "decisions"
HNSW: Any = {"hnsw": {"space": "cosine"}}  # persistent: Chroma's defaults otherwise ("Determinism", module doc)
EPHEMERAL_HNSW: Any = {"hnsw": {"space": "cosine", "sync_threshold": 1, "batch_size": 1}}  # in-process: idem
OVERFETCH = 4
PAGE = 5_000
SCHEMA = 1


@runtime_checkable
class MemoryStore(Protocol):
    def add(self, records: Sequence[MemoryRecord]) -> int: ...

    def attach(self, outcomes: Mapping[str, Outcome]) -> int: ...

    def pending(self, before: int) -> list[MemoryRecord]: ...

    def search(self, texts: Sequence[str], *, as_of: int, k: int = 5, symbol: str | None = None,
               situations: Sequence[Situation | None] | None = None) -> list[list[MemoryHit]]: ...

    def records(self) -> list[tuple[MemoryRecord, Outcome | None]]: ...

    def count(self) -> int: ...


@contextlib.contextmanager
def _chroma(what: str) -> Iterator[None]:
    """Any failure inside Chroma becomes one ``MemoryStoreError`` line."""
    try:
        yield
    except MemoryStoreError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise MemoryStoreError(f"memory {what} failed ({type(exc).__name__}: {detail})") from None


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


class ChromaMemoryStore:
    """A ``MemoryStore`` on one Chroma collection (cosine space, embeddings computed by ``embedder``)."""

    def __init__(self, collection: Any, embedder: Embedder | None, *, where: str, client: Any = None) -> None:
        self._col = collection
        self._embedder = embedder
        self._client = client
        self._nonempty = False
        self._pending: dict[str, MemoryRecord] | None = None  # records without an outcome (module doc)
        self.where = where

    # -- opening -------------------------------------------------------------------------------------------

    @classmethod
    def persistent(cls, path: Path, embedder: Embedder | None) -> ChromaMemoryStore:
        """Open (or create) the store in folder ``path``. ``embedder`` None: read-only use (stats)."""
        import chromadb

        where = str(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MemoryStoreError(f"cannot create the memory folder {path}: {exc.strerror or exc}") from None
        hint = f"; move {path} aside (the next run starts an empty memory; the ledger is not in it)"
        try:
            client = chromadb.PersistentClient(path=where, settings=_settings())
            collection = cls._collection(client, embedder)
        except MemoryStoreError:
            raise
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]
            raise MemoryStoreError(f"cannot open the memory at {path} ({type(exc).__name__}: {detail}){hint}") from None
        return cls(collection, embedder, where=where, client=client)

    @classmethod
    def ephemeral(cls, embedder: Embedder) -> ChromaMemoryStore:
        """A store in this process's memory, empty, with a collection of its own (replays)."""
        import chromadb

        with _chroma("creation"):
            client = chromadb.EphemeralClient(settings=_settings())
            # ephemeral clients of one process share their data: a unique name keeps replays apart
            collection = client.create_collection(
                f"replay-{uuid.uuid4().hex}", embedding_function=None,
                configuration=EPHEMERAL_HNSW, metadata={"embedder": embedder.name, "schema": SCHEMA})
        return cls(collection, embedder, where="in-process", client=client)

    @staticmethod
    def _collection(client: Any, embedder: Embedder | None) -> Any:
        names = {c.name if hasattr(c, "name") else str(c) for c in client.list_collections()}
        if COLLECTION not in names:
            if embedder is None:
                return None  # read-only use of a memory nobody wrote yet
            return client.create_collection(COLLECTION, embedding_function=None,
                                            configuration=HNSW,
                                            metadata={"embedder": embedder.name, "schema": SCHEMA})
        collection = client.get_collection(COLLECTION, embedding_function=None)
        stored = (collection.metadata or {}).get("embedder")
        if embedder is not None and stored != embedder.name:
            raise MemoryStoreError(
                f"this memory was written with embedding model {stored!r} and this run embeds with "
                f"{embedder.name!r}: their vectors are not comparable; configure {stored!r} again "
                "(TRADEAGENT_EMBEDDING_MODEL) or move the memory folder aside to start a new one")
        return collection

    def close(self) -> None:
        """Drop an in-process store's collection (a persistent store keeps everything)."""
        if self.where == "in-process" and self._client is not None and self._col is not None:
            with contextlib.suppress(Exception):
                self._client.delete_collection(self._col.name)
            self._col = None

    @property
    def embedder_name(self) -> str | None:
        if self._col is None:
            return None
        return (self._col.metadata or {}).get("embedder")

    # -- writing -------------------------------------------------------------------------------------------

    def _writable(self) -> tuple[Any, Embedder]:
        if self._col is None or self._embedder is None:
            raise MemoryStoreError(f"memory at {self.where} was opened read-only")
        return self._col, self._embedder

    def add(self, records: Sequence[MemoryRecord]) -> int:
        if not records:
            return 0
        col, embedder = self._writable()
        by_id = {r.id: r for r in records}  # one per symbol and day: the last one wins
        with _chroma("read before write"):
            existing = col.get(ids=list(by_id), include=["metadatas"])
        done = {i for i, m in zip(existing["ids"], existing["metadatas"] or [], strict=True) if (m or {}).get("has_outcome")}
        todo = [r for i, r in by_id.items() if i not in done]
        if not todo:
            return 0
        rows = vectors(embedder.embed([r.text for r in todo]), [r.situation for r in todo])
        with _chroma("write"):
            if self.where == "in-process":  # one record per call, in id order ("Determinism", module doc)
                for r, v in sorted(zip(todo, rows, strict=True), key=lambda rv: rv[0].id):
                    col.upsert(ids=[r.id], embeddings=[v], documents=[r.text], metadatas=[_metadata(r)])
            else:  # one call: a day's records are all written or none (a killed daily run)
                col.upsert(ids=[r.id for r in todo], embeddings=list(rows), documents=[r.text for r in todo],
                           metadatas=[_metadata(r) for r in todo])
        self._nonempty = True
        if self._pending is not None:
            self._pending.update((r.id, r) for r in todo)
        return len(todo)

    def attach(self, outcomes: Mapping[str, Outcome]) -> int:
        if not outcomes:
            return 0
        col, _ = self._writable()
        ids = sorted(outcomes)
        with _chroma("outcome write"):
            col.update(ids=ids, metadatas=[{"has_outcome": True, "outcome_known_at": outcomes[i].known_at,
                                            "outcome": outcomes[i].model_dump_json()} for i in ids])
        if self._pending is not None:
            for i in ids:
                self._pending.pop(i, None)
        return len(ids)

    # -- reading -------------------------------------------------------------------------------------------

    def count(self) -> int:
        if self._col is None:
            return 0
        with _chroma("count"):
            return int(self._col.count())

    def pending(self, before: int) -> list[MemoryRecord]:
        if self._col is None:
            return []
        if self._pending is None:  # read from Chroma once per store object, then kept by add and attach
            with _chroma("read"):
                got = self._col.get(where={"has_outcome": False}, include=["metadatas"])
            self._pending = {r.id: r for r in map(_record, got["metadatas"] or [])}
        return sorted((r for r in self._pending.values() if r.decision_date < before),
                      key=lambda r: (r.decision_date, r.symbol))

    def search(self, texts: Sequence[str], *, as_of: int, k: int = 5, symbol: str | None = None,
               situations: Sequence[Situation | None] | None = None) -> list[list[MemoryHit]]:
        """See the module doc; ``situations`` (one per text, optional) adds each query's readings."""
        extra = search_situations(texts, k, situations)
        if not texts:
            return []
        if not self._nonempty:  # records are never deleted: once there are some, no need to count again
            self._nonempty = self.count() > 0
            if not self._nonempty:
                return [[] for _ in texts]
        if self._embedder is None:
            raise MemoryStoreError(f"memory at {self.where} was opened without an embedding model")
        queries = vectors(self._embedder.embed(list(texts)), extra)
        where = self._where(as_of, symbol)
        with _chroma("search"):
            got = self._col.query(query_embeddings=list(queries), n_results=k * OVERFETCH, where=where,
                                  include=["metadatas", "distances"])
        out: list[list[MemoryHit]] = []
        for metas, dists in zip(got["metadatas"] or [], got["distances"] or [], strict=True):
            # ranked on the flat keys; only the k kept are parsed (a record's JSON costs ~50 us)
            ranked = sorted(((round(1.0 - float(d), 6), m) for m, d in zip(metas, dists, strict=True)),
                            key=lambda sm: (-sm[0], -int(sm[1]["decision_date"]), str(sm[1]["symbol"])))
            hits: list[MemoryHit] = []
            for sim, m in ranked:
                if len(hits) == k:
                    break
                if (hit := _visible(m, sim, as_of, symbol)) is not None:
                    hits.append(hit)
            out.append(hits)
        return out

    def _where(self, as_of: int, symbol: str | None) -> dict[str, Any] | None:
        """The Chroma filter of a search on ``as_of`` (None when it provably excludes nothing: module doc)."""
        before: dict[str, Any] = {"decision_date": {"$lt": as_of}}
        if symbol is not None:
            return {"$and": [before, {"symbol": symbol}]}
        with _chroma("search"):
            later = self._col.get(where={"decision_date": {"$gte": as_of}}, limit=1, include=[])
        return before if later["ids"] else None

    def records(self) -> list[tuple[MemoryRecord, Outcome | None]]:
        """Every record with its outcome (if any), oldest first."""
        if self._col is None:
            return []
        out: list[tuple[MemoryRecord, Outcome | None]] = []
        offset = 0
        while True:
            with _chroma("read"):
                got = self._col.get(include=["metadatas"], limit=PAGE, offset=offset)
            metas = got["metadatas"] or []
            out.extend((_record(m), _outcome(m)) for m in metas)
            if len(metas) < PAGE:
                break
            offset += PAGE
        return sorted(out, key=lambda ro: (ro[0].decision_date, ro[0].symbol))


def vectors(embeddings: Sequence[Sequence[float]], situations: Sequence[Situation | None]) -> np.ndarray:
    """``_vector`` for a batch, as float32 rows (what Chroma stores, and what ``memory.exact`` searches)."""
    if not embeddings:
        return np.zeros((0, 0), dtype=np.float32)
    numbers = np.array([[NUMERIC_WEIGHT * x for x in readings(s)] if s is not None else [0.0] * 5 for s in situations],
                       dtype=np.float64)
    v = np.hstack([np.asarray(embeddings, dtype=np.float64), numbers])
    norm = np.sqrt(np.einsum("ij,ij->i", v, v))
    norm[norm == 0.0] = 1.0
    return (v / norm[:, None]).astype(np.float32)


def _vector(embedding: Sequence[float], situation: Situation | None) -> list[float]:
    """The text's embedding and the weighted readings, unit length (``memory.models``)."""
    numbers = [NUMERIC_WEIGHT * x for x in readings(situation)] if situation is not None else [0.0] * 5
    v = [*map(float, embedding), *numbers]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def _metadata(record: MemoryRecord) -> dict[str, Any]:
    return {"decision_date": record.decision_date, "symbol": record.symbol, "action": record.action,
            "has_outcome": False, "record": record.model_dump_json()}


def _record(meta: Mapping[str, Any]) -> MemoryRecord:
    try:
        return MemoryRecord.model_validate_json(meta["record"])
    except (KeyError, TypeError, ValidationError) as exc:
        raise MemoryStoreError(f"memory holds a record it cannot read ({type(exc).__name__})") from None


def _outcome(meta: Mapping[str, Any]) -> Outcome | None:
    if not meta.get("has_outcome"):
        return None
    try:
        return Outcome.model_validate_json(meta["outcome"])
    except (KeyError, TypeError, ValidationError) as exc:
        raise MemoryStoreError(f"memory holds an outcome it cannot read ({type(exc).__name__})") from None


def _visible(meta: Mapping[str, Any], similarity: float, as_of: int, symbol: str | None) -> MemoryHit | None:
    """The hit as a reader on ``as_of`` may see it (None: the record is not visible at all)."""
    if int(meta["decision_date"]) >= as_of or (symbol is not None and meta["symbol"] != symbol):
        return None  # checked on the flat keys first, then again on the record itself
    record = _record(meta)
    if record.decision_date >= as_of or (symbol is not None and record.symbol != symbol):
        return None
    outcome = _outcome(meta)
    if outcome is not None and outcome.known_at > as_of:
        outcome = None
    return MemoryHit(record=record, outcome=outcome, similarity=similarity)


def memory_stats(store: MemoryStore) -> dict[str, Any]:
    """Records, records with outcomes, and per action: count, outcomes, hits, hit rate, mean excess return."""
    rows = store.records()
    actions: dict[str, dict[str, Any]] = {}
    for record, outcome in rows:
        a = actions.setdefault(record.action, {"records": 0, "with_outcome": 0, "hits": 0, "excess": []})
        a["records"] += 1
        if outcome is not None:
            a["with_outcome"] += 1
            a["hits"] += int(is_hit(record, outcome))
            a["excess"].append(outcome.excess)
    for a in actions.values():
        n, excess = a["with_outcome"], a.pop("excess")
        a["hit_rate"] = round(a["hits"] / n, 4) if n else None
        a["mean_excess_return"] = round(sum(excess) / n, 6) if n else None
    dates = [r.decision_date for r, _ in rows]
    return {
        "records": len(rows),
        "with_outcome": sum(1 for _, o in rows if o is not None),
        "first": int_date(min(dates)).isoformat() if dates else None,
        "last": int_date(max(dates)).isoformat() if dates else None,
        "actions": dict(sorted(actions.items())),
    }
