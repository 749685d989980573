"""Counters, gauges and histograms of one owner process.

Plain thread-safe numbers: the engine and the live keeper update them on
every sync and query, and most processes never expose them. `cidx serve`
turns them into Prometheus families when scraped (`cidx.http_api`), so only
it imports the client library. Gauges may be callables read at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidx.messages import IndexSummary, MigrationView

# Query latency: most answers take milliseconds; the tail matters up to seconds.
QUERY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Counter:
    name: str
    help: str
    value: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def current(self) -> float:
        with self._lock:
            return self.value


@dataclass
class LabelledCounter:
    """A counter per value of one label (e.g. per alias)."""

    name: str
    help: str
    label: str
    values: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inc(self, key: str, amount: float = 1.0) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def current(self) -> dict[str, float]:
        with self._lock:
            return dict(self.values)


@dataclass
class Gauge:
    name: str
    help: str
    value: float = 0.0
    read: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def current(self) -> float:
        return self.read() if self.read is not None else self.value


@dataclass
class Histogram:
    name: str
    help: str
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        with self._lock:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[i] += 1
            self.total += value
            self.count += 1

    def snapshot(self) -> tuple[list[int], float, int]:
        """Cumulative count per bucket (in `buckets` order), the sum, and the count."""
        with self._lock:
            return list(self.counts), self.total, self.count


class Metrics:
    """The instruments of one owner process."""

    def __init__(self) -> None:
        self.files = Gauge("cidx_files", "Files in the index.")
        self.chunks = Gauge("cidx_chunks", "Chunks in the index (manifest).")
        self.points = Gauge("cidx_points", "Points in the vector store.")
        self.sync_lag = Gauge(
            "cidx_sync_lag_seconds", "Age of the oldest file change not yet indexed (0 if none)."
        )
        self.queue_depth = Gauge("cidx_queue_depth", "Changed paths waiting to be indexed.")
        self.last_sync = Gauge(
            "cidx_last_sync_timestamp_seconds", "Unix time the last successful sync finished."
        )
        self.syncs = Counter("cidx_syncs_total", "Syncs completed.")
        self.embedded = Counter("cidx_chunks_embedded_total", "Chunks embedded by the model.")
        self.reused = Counter(
            "cidx_chunks_reused_total", "Chunks whose vector came from the cache."
        )
        self.files_changed = Counter(
            "cidx_files_changed_total", "Files added, modified or deleted by syncs."
        )
        self.errors = Counter("cidx_errors_total", "Failed syncs and failed requests.")
        self.queries = Counter("cidx_queries_total", "Queries answered.")
        self.alias_resolutions = LabelledCounter(
            "cidx_alias_resolutions_total",
            "Reads and writes that reached a collection through an alias, by alias.",
            "alias",
        )
        self.query_seconds = Histogram(
            "cidx_query_duration_seconds", "Time to answer one query.", QUERY_BUCKETS
        )
        self.sync_seconds = Histogram(
            "cidx_sync_duration_seconds", "Time one sync took.", SYNC_BUCKETS
        )
        self.migration_active = Gauge(
            "cidx_migration_active", "1 while a collection migration runs (dual writes, backfill)."
        )
        self.migration_copied = Gauge(
            "cidx_migration_points_copied", "Points the running migration's backfill has written."
        )
        self.migration_total = Gauge(
            "cidx_migration_source_points",
            "Points the running migration's source held at its start.",
        )
        self.migration_queued = Gauge(
            "cidx_migration_outbox", "Writes queued for the other side of the running migration."
        )
        # Run first by `refresh`: sets gauges that are cheaper read together.
        self.on_scrape: Callable[[], None] | None = None
        self._migration: Callable[[], MigrationView | None] | None = None

    def record_sync(self, summary: IndexSummary) -> None:
        """Count a finished sync: what it embedded, reused and changed, and how long it took."""
        self.syncs.inc()
        self.embedded.inc(summary.chunks_embedded)
        self.reused.inc(summary.chunks_reused)
        self.files_changed.inc(summary.files_changed + summary.files_deleted)
        self.sync_seconds.observe(summary.seconds)
        self.last_sync.set(time.time())

    def record_queries(self, count: int, seconds: float) -> None:
        """Count `count` queries answered together in `seconds`, each taking its share."""
        if count:
            each = seconds / count
            for _ in range(count):
                self.query_seconds.observe(each)
            self.queries.inc(count)

    def watch_migration(self, view: Callable[[], MigrationView | None]) -> None:
        """Export the progress of the collection migration `view` reports."""
        self._migration = view

    def _read_migration(self) -> None:
        view = self._migration() if self._migration is not None else None
        active = view is not None and view.ended_at is None
        self.migration_active.set(1.0 if active else 0.0)
        self.migration_copied.set(float(view.copied) if view else 0.0)
        self.migration_total.set(float(view.total or 0) if view else 0.0)
        self.migration_queued.set(float(view.queued) if view else 0.0)

    def instruments(self) -> list[Counter | LabelledCounter | Gauge | Histogram]:
        return [
            v
            for v in vars(self).values()
            if isinstance(v, Counter | LabelledCounter | Gauge | Histogram)
        ]

    def refresh(self) -> None:
        """Bring the gauges read together up to date, before a scrape reads them all."""
        if self.on_scrape is not None:
            self.on_scrape()
        if self._migration is not None:  # else they keep their values (0, or loaded)
            self._read_migration()


@dataclass(frozen=True)
class InstrumentValue:
    """One instrument's value at a moment: `value` (counter, gauge), `values`
    (labelled counter), or `counts`, `total` and `count` (histogram)."""

    name: str
    value: float = 0.0
    values: dict[str, float] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every instrument of an owner, read together (the owner socket's `metrics`):
    what a `cidx serve` answered through the daemon exposes as its own."""

    instruments: list[InstrumentValue] = field(default_factory=list)


def snapshot(metrics: Metrics) -> MetricsSnapshot:
    """The values of `metrics` now, gauges read as for a scrape."""
    metrics.refresh()
    out = []
    for i in metrics.instruments():
        if isinstance(i, Counter | Gauge):
            out.append(InstrumentValue(i.name, value=i.current()))
        elif isinstance(i, LabelledCounter):
            out.append(InstrumentValue(i.name, values=i.current()))
        else:
            counts, total, count = i.snapshot()
            out.append(InstrumentValue(i.name, counts=counts, total=total, count=count))
    return MetricsSnapshot(out)


def load(metrics: Metrics, taken: MetricsSnapshot) -> None:
    """Set `metrics` to the values of `taken` (instruments it does not name stay)."""
    by_name = {i.name: i for i in metrics.instruments()}
    for v in taken.instruments:
        i = by_name.get(v.name)
        if isinstance(i, Counter):
            with i._lock:
                i.value = v.value
        elif isinstance(i, Gauge):
            i.read, i.value = None, v.value
        elif isinstance(i, LabelledCounter):
            with i._lock:
                i.values = dict(v.values)
        elif isinstance(i, Histogram) and len(v.counts) == len(i.buckets):
            with i._lock:
                i.counts, i.total, i.count = list(v.counts), v.total, v.count
