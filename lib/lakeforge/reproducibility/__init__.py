"""Reproducibility: run manifests, replay of a run to the same result, and a retention guard for VACUUM."""
