"""The paper's Table 1 layout for the regressor's loss (issue 19): Eq. 15's four terms in five
combinations, each trained with the same budget, evaluated on synthetic ground truth and on the
james scan.

Terms: feat (Eq. 16, identity features through the face-ID network: ``loss.use_identity``), regu
(Eq. 17, coefficient prior), phot (Eq. 18, photometric with the attention and the occlusion mask),
land (Eq. 19, 68 landmarks). The paper's own five rows could not be read here (no copy of its
Table 1 offline), so the rows are every leave-one-out combination plus all four (``ROWS``: one
entry per row). Each row: ``occface train regressor --workdir ROOT/<row>`` with the other terms'
weights at 0 and the shared ``--set`` overrides (same steps, data and seed), then
``experiments/regressor.py`` (the regressor alone on unseen synthetic faces, clean and occluded;
mean vertex error, mm) and ``experiments/james_scan.py`` with the fit turned off (the prediction
alone through the pipeline: scan-to-mesh mean error, mm). A row whose workdir already holds the
final step is not retrained (runs resume).

    python experiments/regressor_ablation.py --root runs/ablation --steps 2000 \
        --out experiments/results/regressor_ablation.md
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from _tables import emit  # experiments/_tables.py

TERMS = ("feat", "regu", "phot", "land")
#: row name -> the terms it trains with
ROWS = {
    "regu + phot + land": ("regu", "phot", "land"),
    "feat + phot + land": ("feat", "phot", "land"),
    "feat + regu + land": ("feat", "regu", "land"),
    "feat + regu + phot": ("feat", "regu", "phot"),
    "all four": TERMS,
}
HERE = Path(__file__).resolve().parent


def slug(row: str) -> str:
    return re.sub(r"[^a-z]+", "_", row).strip("_")


def table_value(markdown: str, leading: tuple[str, ...], column: int) -> float:
    """The number in ``column`` of the markdown table row whose first cells are ``leading``."""
    for line in markdown.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if tuple(cells[: len(leading)]) == leading:
            return float(cells[column])
    raise ValueError(f"no row {leading!r} in the table")


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="one training workdir per row under it")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of every row")
    parser.add_argument("--n", type=int, default=12, help="synthetic faces to evaluate")
    parser.add_argument("--rows", default="", help="comma-separated row slugs (default: all)")
    parser.add_argument("--set", action="append", default=[], help="shared training overrides")
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    chosen = [r for r in ROWS if not args.rows or slug(r) in args.rows.split(",")]
    lines = [
        f"{args.steps} steps per row ({' '.join(args.set) or 'default config'}); synthetic: "
        f"{args.n} unseen faces (experiments/regressor.py), james: the prediction alone "
        "(experiments/james_scan.py, fit off). Errors in mm.",
        "",
        "| feat | regu | phot | land | synthetic clean | synthetic occluded | james clean "
        "| james occluded |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in chosen:
        workdir = Path(args.root) / slug(row)
        terms = ROWS[row]
        overrides = [f"train.steps={args.steps}", f"loss.use_identity={'feat' in terms}"]
        overrides += [f"loss.weights.{t}=0" for t in TERMS if t not in terms]
        command = [sys.executable, "-m", "occface_jax.cli", "train", "regressor", "--quiet"]
        command += ["--workdir", str(workdir)]
        for item in overrides + list(args.set):
            command += ["--set", item]
        run(command)
        synthetic = workdir / "synthetic.md"
        run(
            [sys.executable, str(HERE / "regressor.py"), "--checkpoints", str(workdir)]
            + ["--n", str(args.n), "--out", str(synthetic)]
        )
        james = workdir / "james_eval"
        run(
            [sys.executable, str(HERE / "james_scan.py"), "--checkpoints", str(workdir)]
            + ["--set", "steps=0", "--set", "landmark_steps=0", "--eval-dir", str(james)]
        )
        s = synthetic.read_text()
        j = json.loads((james / "results.json").read_text())["subsets"]
        marks = ["x" if t in terms else "" for t in TERMS]
        values = [
            table_value(s, ("regressor, clean",), 1),
            table_value(s, ("regressor, occluded",), 1),
            j["clean"]["mean"],
            j["occluded"]["mean"],
        ]
        lines.append("| " + " | ".join(marks + [f"{v:.2f}" for v in values]) + " |")
        print(lines[-1], flush=True)
    emit("Regressor loss ablation (the paper's Table 1 layout)", lines, args.out)


if __name__ == "__main__":
    main()
