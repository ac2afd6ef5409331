"""What the tests, the benchmarks and the demo share: reading topics as a downstream consumer, scraping
a detector's /metrics, starting detectors, the local broker, the bad-payload matrix, the chaos run.

The services never import it; it may import them.
"""
