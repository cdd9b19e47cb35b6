"""Reading a Prometheus scrape (the text format of GET /metrics) into samples."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

# The samples of a scrape, by name and labels.
Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Scrape:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: Scrape, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)
