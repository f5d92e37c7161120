"""Scan-to-mesh error on a real textured face scan (menpo3d's ``james``), clean and occluded: the
``scans`` protocol of ``occface evaluate`` (``occface_jax/eval/protocols/scans.py`` says how the
scan is scaled, rendered at yaw -25, 0 and 25 degrees with and without an occluder, reconstructed
and compared) on ``$OCCFACE_SHARED/faces/menpo3d``, with the fit config of ``--variant``/``--set``.
``--checkpoints DIR`` gives the pipeline the networks a training workdir or export folder holds
(e.g. the regressor: the fit starts from its prediction; with ``--set steps=0 --set
landmark_steps=0`` the prediction alone is scored). The same as

    occface evaluate scans --data $OCCFACE_SHARED/faces/menpo3d --out DIR [--checkpoints ...]

    python experiments/james_scan.py --out experiments/results/james_scan.md
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

from _config import add_fit_config_arguments, config_name, fit_config  # experiments/_config.py
from _tables import emit  # experiments/_tables.py

from occface_jax.eval.protocols import scans
from occface_jax.eval.protocols.runner import RESULTS, evaluate, make_predictor
from occface_jax.paths import shared_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_fit_config_arguments(parser)
    parser.add_argument("--checkpoints", help="networks: a training workdir or export folder")
    parser.add_argument("--out", help="write the table (markdown) here")
    parser.add_argument(
        "--eval-dir",
        help=f"the evaluation's folder ({RESULTS}, per-view heat maps; default: temporary)",
    )
    args = parser.parse_args()
    out = args.eval_dir or tempfile.mkdtemp(prefix="james_scan_")
    predict = make_predictor(fit_config(args), args.checkpoints)
    results = evaluate(
        scans.PROTOCOL,
        shared_dir() / "faces" / "menpo3d",
        out,
        predict,
        method=f"fit {config_name(args)}; networks {args.checkpoints or 'none'}",
        options={"names": "james"},
    )
    lines = [
        f"james scan; config {config_name(args)}; networks {args.checkpoints or 'none'}; "
        f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; evaluation folder {out}.",
        "",
        scans.table(results),
    ]
    emit("Scan-to-mesh error on the james scan", lines, args.out)


if __name__ == "__main__":
    main()
