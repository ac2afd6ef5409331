"""UNSW-NB15 loading and cleaning, feature analysis, model training, the verified artifact, offline scoring."""
