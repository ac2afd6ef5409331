"""Code shared by the producer, the detector and training: config, errors, CLI plumbing, the flow schema."""
