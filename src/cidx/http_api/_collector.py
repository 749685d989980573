"""`/metrics`: the owner's instruments as Prometheus metric families, read when scraped.

`cidx.metrics` keeps plain numbers so that the core never imports a client
library; this collector hands them to prometheus-client at scrape time
(file, chunk and point counts, sync lag, queue depth and the last sync are
read then), and the library writes the exposition format the scraper asks
for: Prometheus text by default, OpenMetrics when the `Accept` header
prefers it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from cidx.metrics import Counter, Gauge, LabelledCounter, Metrics


class MetricsCollector(Collector):
    """One scrape's view of a `Metrics`: every instrument, its value read now."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        self.metrics.refresh()
        for instrument in self.metrics.instruments():
            if isinstance(instrument, Counter):
                # The family drops the `_total` suffix; its sample keeps it.
                yield CounterMetricFamily(
                    instrument.name, instrument.help, value=instrument.current()
                )
            elif isinstance(instrument, LabelledCounter):
                family = CounterMetricFamily(
                    instrument.name, instrument.help, labels=[instrument.label]
                )
                for key, value in sorted(instrument.current().items()):
                    family.add_metric([key], value)
                yield family
            elif isinstance(instrument, Gauge):
                yield GaugeMetricFamily(
                    instrument.name, instrument.help, value=instrument.current()
                )
            else:
                counts, total, count = instrument.snapshot()
                buckets = [
                    (repr(float(bound)), float(n))
                    for bound, n in zip(instrument.buckets, counts, strict=True)
                ]
                buckets.append(("+Inf", float(count)))
                yield HistogramMetricFamily(
                    instrument.name, instrument.help, buckets=buckets, sum_value=total
                )


def exposition(metrics: Metrics, accept: str) -> tuple[bytes, str]:
    """The scrape's body and its content type, in the format `accept` asks for."""
    encode, content_type = choose_encoder(accept)
    return encode(MetricsCollector(metrics)), content_type
