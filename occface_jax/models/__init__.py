"""Flax NNX networks of the system."""
