"""``ExactMemoryStore``: the replays' in-process memory, an exact nearest-neighbour search over numpy arrays.

Contract: the ``MemoryStore`` contract of ``memory.store`` (add, attach, pending, search, records, count),
with the same vectors (a text's embedding and the weighted readings, ``memory.models``), the same point-in-time
rule and the same ranking (similarity rounded to 6 decimals, then the most recent decision, then symbol). It
lives in this process only and starts empty; ``close()`` drops it. Replays use it (``evals.replay``).

Deliberate decisions:
- Exact, not approximate: a day's search scores every stored record (~25,000 after a 20-symbol,
  1,260-session replay) and keeps the best ``k`` of those dated before D. Nothing depends on insertion
  order or threads, so a replay is reproducible by construction, whatever the number of records written
  per call. Chroma 1.5.9's local HNSW can give neither: it inserts the
  records of one write call in parallel over a per-process randomly ordered hash map (rayon's global pool;
  the collection's ``num_threads`` is not read by the local index), so its graph, and then which records an
  approximate search returns, differ between runs unless every call writes ONE record, and each such call
  costs ~3 ms (a log write, a re-read and a purge in SQLite); a 20-record day then cost ~70 ms and its query
  ~35 ms (benchmarks/bench_memory.py, 10,000 records). Here a day's write is a few array rows.
- Factored by text: a record's vector is its text's embedding and its weighted readings, normalised
  (``memory.models``), and a replay's records share a few hundred distinct texts. So the store keeps each
  distinct text's embedding once and, per record, its text, readings and norm; the cosine of a query with
  every record is (text . text + readings . readings) / norms, the text part computed once per distinct text.
  At 10,000 records that is ~10x less arithmetic than one product over all 389-dimensional vectors, in
  float64 (the similarities are then exact to ~1e-15 before rounding to 6 decimals). A text is embedded once
  per store: its first vector is kept.
- numpy's BLAS runs on one thread during a search (threadpoolctl): the products are small, and on two shared
  cores OpenBLAS's second thread mostly waits for a busy one (measured under a load of ~5: the readings
  product over 25,000 records took 15 ms on 2 threads, 0.3 ms on 1; p95 of the text product 32 ms vs
  0.25 ms). Each output is summed by one thread either way: the results do not change, only the time.
- Point-in-time is a mask on the stored dates (``decision_date < D``, and the symbol when asked), applied
  before ranking, and outcomes are returned only when ``known_at <= D``: the same rule, checked on the
  records themselves (no metadata to parse: the validated records and outcomes are kept as objects).
- The persistent store (the user's ``TRADEAGENT_HOME/memory``) stays Chroma: it must survive processes and
  a killed writer; this one need not.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memory.embeddings import Embedder
from memory.errors import MemoryStoreError
from memory.models import (
    NUMERIC_WEIGHT,
    MemoryHit,
    MemoryRecord,
    Outcome,
    Situation,
    readings,
    search_situations,
)

_ROWS = 1024  # initial capacity (records, texts); the arrays double when full
# The scan is in float32 (error < 1e-6 on a similarity); the records it keeps are scored again in float64.
# The margin covers both errors and the rounding to 6 decimals: every record that can tie the k-th is ranked.
_MARGIN = 5e-6


_blas: Any = None


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS on one thread for the block (module doc); a no-op without threadpoolctl."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        except ImportError:  # installed with scikit-learn (sentence-transformers); only speed depends on it
            _blas = False
    return _blas.limit(limits=1, user_api="blas") if _blas else contextlib.nullcontext()


def _numbers(situation: Situation | None) -> list[float]:
    return [NUMERIC_WEIGHT * x for x in readings(situation)] if situation is not None else [0.0] * 5


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    if rows <= len(array):
        return array
    out = np.zeros((max(rows, 2 * len(array)), *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


class ExactMemoryStore:
    """A ``MemoryStore`` held in this process's memory (see the module doc)."""

    where = "in-process"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.embedder_name: str | None = embedder.name
        self._lock = threading.Lock()
        self._text: dict[str, int] = {}  # distinct text -> row of _embeddings
        self._embeddings = np.zeros((0, 0))  # distinct texts x dimensions
        self._row: dict[str, int] = {}  # record id -> row of the per-record arrays
        self._records: list[MemoryRecord] = []
        self._outcomes: list[Outcome | None] = []
        self._text_of = np.zeros(_ROWS, dtype=np.int64)
        self._numbers = np.zeros((_ROWS, 5))
        self._norms = np.ones(_ROWS)
        self._numbers32 = np.zeros((_ROWS, 5), dtype=np.float32)  # the scan's copies, divided by the norm
        self._inverse32 = np.ones(_ROWS, dtype=np.float32)
        self._dates = np.zeros(_ROWS, dtype=np.int64)
        self._pending: dict[str, MemoryRecord] = {}

    def close(self) -> None:
        with self._lock:
            self._text.clear()
            self._row.clear()
            self._records.clear()
            self._outcomes.clear()
            self._pending.clear()
            self._embeddings = np.zeros((0, 0))

    # -- writing -------------------------------------------------------------------------------------------

    def add(self, records: Sequence[MemoryRecord]) -> int:
        if not records:
            return 0
        by_id = {r.id: r for r in records}  # one per symbol and day: the last one wins
        todo = [r for i, r in by_id.items() if i not in self._row or self._outcomes[self._row[i]] is None]
        if not todo:
            return 0
        new_texts = list(dict.fromkeys(r.text for r in todo if r.text not in self._text))
        embedded = np.asarray(self._embedder.embed(new_texts), dtype=np.float64) if new_texts else None
        with self._lock:
            if embedded is not None:
                self._add_texts(new_texts, embedded)
            for r in todo:
                row = self._row.get(r.id)
                if row is None:  # a new record: the next row
                    row = len(self._records)
                    self._reserve(row + 1)
                    self._row[r.id] = row
                    self._records.append(r)
                    self._outcomes.append(None)
                else:  # a day written again: its record replaced in place
                    self._records[row] = r
                t = self._text[r.text]
                numbers = _numbers(r.situation)
                self._text_of[row] = t
                self._numbers[row] = numbers
                self._norms[row] = math.sqrt(float(self._embeddings[t] @ self._embeddings[t])
                                             + sum(x * x for x in numbers)) or 1.0
                self._numbers32[row] = self._numbers[row] / self._norms[row]
                self._inverse32[row] = 1.0 / self._norms[row]
                self._dates[row] = r.decision_date
                self._pending[r.id] = r
        return len(todo)

    def _add_texts(self, texts: list[str], embedded: np.ndarray) -> None:
        if embedded.ndim != 2 or len(embedded) != len(texts):
            raise MemoryStoreError(f"{self._embedder.name!r} gave {len(embedded)} vector(s) for {len(texts)} text(s)")
        if not self._text:
            self._embeddings = np.zeros((_ROWS, embedded.shape[1]))
        elif embedded.shape[1] != self._embeddings.shape[1]:
            raise MemoryStoreError(f"memory holds {self._embeddings.shape[1]}-dimensional vectors and "
                                   f"{self._embedder.name!r} gave {embedded.shape[1]}")
        for text, vector in zip(texts, embedded, strict=True):
            if text not in self._text:  # another thread may have added it meanwhile: the first vector stays
                t = len(self._text)
                self._embeddings = _grown(self._embeddings, t + 1)
                self._embeddings[t] = vector
                self._text[text] = t

    def _reserve(self, rows: int) -> None:
        self._text_of = _grown(self._text_of, rows)
        self._numbers = _grown(self._numbers, rows)
        self._norms = _grown(self._norms, rows)
        self._numbers32 = _grown(self._numbers32, rows)
        self._inverse32 = _grown(self._inverse32, rows)
        self._dates = _grown(self._dates, rows)

    def attach(self, outcomes: Mapping[str, Outcome]) -> int:
        done = 0
        with self._lock:
            for i in sorted(outcomes):
                if (row := self._row.get(i)) is not None:
                    self._outcomes[row] = outcomes[i]
                    self._pending.pop(i, None)
                    done += 1
        return done

    # -- reading -------------------------------------------------------------------------------------------

    def count(self) -> int:
        return len(self._records)

    def pending(self, before: int) -> list[MemoryRecord]:
        with self._lock:
            due = [r for r in self._pending.values() if r.decision_date < before]
        return sorted(due, key=lambda r: (r.decision_date, r.symbol))

    def search(self, texts: Sequence[str], *, as_of: int, k: int = 5, symbol: str | None = None,
               situations: Sequence[Situation | None] | None = None) -> list[list[MemoryHit]]:
        """See ``memory.store``'s module doc; exact (this module's doc)."""
        extra = search_situations(texts, k, situations)
        if not texts:
            return []
        if not self._records:
            return [[] for _ in texts]
        query = np.asarray(self._embedder.embed(list(texts)), dtype=np.float64)
        numbers = np.array([_numbers(s) for s in extra])
        with self._lock, _one_blas_thread():
            n, u = len(self._records), len(self._text)
            if query.ndim != 2 or query.shape[1] != self._embeddings.shape[1]:
                raise MemoryStoreError(f"memory holds {self._embeddings.shape[1]}-dimensional vectors and "
                                       f"{self._embedder.name!r} gave {query.shape[1:]}")
            visible = self._dates[:n] < as_of
            if symbol is not None:
                visible &= np.fromiter((r.symbol == symbol for r in self._records), dtype=bool, count=n)
            if not visible.any():
                return [[] for _ in texts]
            norms = np.sqrt(np.einsum("ij,ij->i", query, query) + np.einsum("ij,ij->i", numbers, numbers))
            norms[norms == 0.0] = 1.0
            by_text = query @ self._embeddings[:u].T  # queries x distinct texts (float64)
            # the scan, up to each query's own norm (which does not change its order): queries x records
            sims = by_text.astype(np.float32)[:, self._text_of[:n]]
            sims *= self._inverse32[:n]
            sims += numbers.astype(np.float32) @ self._numbers32[:n].T
            seen = int(np.count_nonzero(visible))
            if seen < n:
                sims[:, ~visible] = -np.inf
            # the k-th best of each query (with k or fewer visible, every visible record is ranked)
            kth = np.partition(sims, n - k, axis=1)[:, n - k] if seen > k else np.full(len(texts), -np.inf)
            return [self._best(sims[j], float(kth[j]), by_text[j], numbers[j], norms[j], as_of, k)
                    for j in range(len(texts))]

    def _best(self, scan: np.ndarray, kth: float, by_text: np.ndarray, numbers: np.ndarray, norm: float,
              as_of: int, k: int) -> list[MemoryHit]:
        """The ``k`` best records by (similarity rounded to 6 decimals, most recent, symbol), scored in float64
        among those the scan (similarity x ``norm``, float32) puts within ``_MARGIN`` of its k-th (``kth``):
        the answer depends neither on the storage order nor on float32 rounding."""
        floor = kth - _MARGIN * norm if kth > -np.inf else -np.inf
        candidates = np.flatnonzero(scan >= floor) if kth > -np.inf else np.flatnonzero(scan > -np.inf)
        exact = (by_text[self._text_of[candidates]] + self._numbers[candidates] @ numbers)
        exact /= self._norms[candidates] * norm
        records = self._records
        ranked = sorted(((round(float(x), 6), int(c)) for x, c in zip(exact, candidates, strict=True)),
                        key=lambda sc: (-sc[0], -records[sc[1]].decision_date, records[sc[1]].symbol))
        hits = []
        for sim, row in ranked[:k]:
            record, outcome = records[row], self._outcomes[row]
            if record.decision_date >= as_of:  # the mask already excluded it: checked again on the record
                continue
            shown = outcome if outcome is not None and outcome.known_at <= as_of else None
            hits.append(MemoryHit(record=record, outcome=shown, similarity=sim))
        return hits

    def records(self) -> list[tuple[MemoryRecord, Outcome | None]]:
        """Every record with its outcome (if any), oldest first."""
        with self._lock:
            rows = list(zip(self._records, self._outcomes, strict=True))
        return sorted(rows, key=lambda ro: (ro[0].decision_date, ro[0].symbol))
