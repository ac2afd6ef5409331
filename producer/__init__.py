"""nids-replay: pushes UNSW-NB15 flows (real files or synthetic) onto Kafka as live traffic."""
