"""Shared by the experiment scripts: the fit config from ``--variant`` and ``--set KEY=VALUE``."""

from __future__ import annotations

import argparse

import ml_collections

from occface_jax.config import apply_overrides, load_config


def add_fit_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--variant`` (a ``configs/fit.py`` variant) and repeatable ``--set KEY=VALUE``."""
    parser.add_argument("--variant", default="", help="configs/fit.py variant")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configs/fit.py value (typed: see occface_jax.config)",
    )


def fit_config(
    args: argparse.Namespace, truth_landmarks: bool = False
) -> ml_collections.ConfigDict:
    """The fit config the arguments of :func:`add_fit_config_arguments` name. ``truth_landmarks``:
    the fit is given the data engine's true landmarks, the model's own 68 vertices projected, so it
    fits those (``landmark_vertices=model``) unless ``--set`` says otherwise."""
    config = load_config("fit", args.variant)
    if truth_landmarks:
        config.landmark_vertices = "model"
    return apply_overrides(config, args.set, "configs/fit.py")


def config_name(args: argparse.Namespace) -> str:
    """'default' or the variant, with the overrides: for the results' first line."""
    return f"'{args.variant or 'default'}'" + (f" with {', '.join(args.set)}" if args.set else "")
