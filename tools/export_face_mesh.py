"""Write the face mesh trained by ``occface train face_mesh`` as a weight npz that the pipeline
loads (``--set mesh_weights=OUT.npz``), with its provenance inside.

    python tools/export_face_mesh.py WORKDIR/face_mesh OUT.npz [--step N] [--compact]

The npz has the converted-weights layout of ``models/data/face_landmark.npz`` (no pickle), plus
``provenance`` (a JSON string: stage, step, training config, the commit the tree was at when it
was exported) so that the file says how it was made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from occface_jax.errors import OccfaceError  # noqa: E402
from occface_jax.io import checkpoints as ckpt  # noqa: E402
from occface_jax.models.tflite_layers import layer_arrays, write_weight_npz  # noqa: E402
from occface_jax.train import get_task  # noqa: E402


def commit() -> str:
    """The repository's HEAD (with '+changes' when the tree differs from it), or 'unknown'."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage_dir", type=Path, help="the face_mesh folder of a training workdir")
    parser.add_argument("out", type=Path, help="the npz to write")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    parser.add_argument("--compact", action="store_true", help="float16 where exact, compressed")
    parser.add_argument("--data", default="", help="a note on the training data, stored as is")
    args = parser.parse_args()
    task = get_task("face_mesh")
    try:
        models, config, step = ckpt.load_models(args.stage_dir, task.name, task.models, task.architecture, step=args.step)  # fmt: skip
    except OccfaceError as err:
        raise SystemExit(str(err)) from err
    provenance = dict(stage="face_mesh", step=step, commit=commit(), data=args.data, config=json.loads(config.to_json()))  # fmt: skip
    write_weight_npz(
        layer_arrays(models["face_mesh"]),
        args.out,
        args.compact,
        provenance=json.dumps(provenance, sort_keys=True),
        source_name=f"occface train face_mesh, step {step}",
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) from step {step}")


if __name__ == "__main__":
    main()
