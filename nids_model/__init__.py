"""The runtime model: what training writes and a running detector reads.

Artifact load and verification, the detection cascade, the compiled tree walk, preprocessing and
probability scaling. It imports only nids_common; the detector uses it without the training pipeline.
"""
