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


def fit_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
    """The fit config the arguments of :func:`add_fit_config_arguments` name."""
    return apply_overrides(load_config("fit", args.variant), args.set, "configs/fit.py")


def config_name(args: argparse.Namespace) -> str:
    """'default' or the variant, with the overrides: for the results' first line."""
    return f"'{args.variant or 'default'}'" + (f" with {', '.join(args.set)}" if args.set else "")
