"""News ingestion: RSS/Atom feeds (feedparser) and Reddit (praw) into the DuckDB ``news`` table, read point-in-time.

Modules: ``models`` (items, outcomes), ``text`` (HTML stripping, normalisation, caps), ``matching`` (symbols on
word boundaries), ``scoring`` (VADER with finance terms), ``fetch`` (bytes under time, size and redirect
limits), ``feeds`` (RSS/Atom), ``reddit`` (praw), ``store`` (the table and the in-memory point-in-time view),
``ingest`` (a universe's sources into the store), ``archive`` (JSONL or a folder of feeds, for backtests).
Everything here treats news text as untrusted data: it is cleaned, capped, matched and scored, never executed.
"""
