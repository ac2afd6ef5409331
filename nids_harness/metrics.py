"""A detector's /metrics as values: scraped over HTTP, parsed line by line, summed by name and labels."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Sample = tuple[str, Labels]
Samples = dict[Sample, float]

# The text exposition format: `name{label="value",…} value [timestamp]`; comments start with #.
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def metrics_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


def parse_samples(lines: Iterable[str]) -> Samples:
    """Every sample of the exposition `lines`. A regular expression, not prometheus_client's parser:
    benches poll a detector ten times a second, and its parser takes ~20 ms a scrape."""
    samples: Samples = {}
    for line in lines:
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        pairs = tuple(sorted((key, _unescape(raw)) for key, raw in _LABEL.findall(labels or "")))
        samples[(name, pairs)] = float(value)
    return samples


def _unescape(value: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda m: _ESCAPES[m.group(0)], value)


def scrape(port: int, timeout: float = 2.0) -> Samples:
    """Every sample of the detector's /metrics on 127.0.0.1:`port`; OSError while it does not answer."""
    with urllib.request.urlopen(metrics_url(port), timeout=timeout) as response:
        return parse_samples(response.read().decode().splitlines())


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        value
        for (sample, pairs), value in samples.items()
        if sample == name and all(dict(pairs).get(key) == wanted for key, wanted in labels.items())
    )


def scrape_total(port: int, name: str, **labels: str) -> float:
    """`total` of one fresh scrape; 0 while the detector does not answer (it is still loading its model)."""
    try:
        return total(scrape(port, timeout=1.0), name, **labels)
    except OSError:
        return 0.0
