"""nids-detect: a consumer-group member that scores flows in micro-batches and emits alerts."""
