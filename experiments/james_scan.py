"""Scan-to-mesh error on a real textured face scan (menpo3d's ``james``), clean and occluded.

The scan (6,680 vertices, texture photo, 68 3D landmarks; units undocumented) is first brought into
the default model's frame by the similarity that maps its inner 51 landmarks onto the model mean's
(so errors read as millimetres under that scale). It is rendered with its texture by the project's
renderer (Deng camera, 448 px, grey background) at yaw -25, 0 and 25 degrees, with and without an
occluder from the data engine (a fixed seed per view), and reconstructed by the full pipeline
(dlib detection and landmarks, alignment, fit). The reconstructed face region is aligned to the scan
by its landmarks (similarity) and then ICP with scale (closest points on the reconstructed surface);
the error is the distance from every scan vertex within 80 mm of the nose tip to that surface.
``--checkpoints DIR`` gives the pipeline the networks a training workdir or export folder holds
(e.g. the regressor: the fit starts from its prediction; with ``--set steps=0 --set
landmark_steps=0`` the prediction alone is scored).

    python experiments/james_scan.py --out experiments/results/james_scan.md
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import trimesh
from _config import add_fit_config_arguments, config_name, fit_config  # experiments/_config.py
from _tables import emit  # experiments/_tables.py
from PIL import Image

from occface_jax.app.pipeline import Reconstructor
from occface_jax.app.predictors import networks_from_checkpoints
from occface_jax.data.augment import occlude_photo
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.surface import (
    apply_similarity,
    scan_to_mesh_error,
    similarity_transform,
)
from occface_jax.faces.landmarks_io import read_landmarks
from occface_jax.io import images as imageio
from occface_jax.morphable import geometry, load_model
from occface_jax.paths import shared_dir
from occface_jax.render import camera as cam
from occface_jax.render.interpolate import interpolate
from occface_jax.render.raster import rasterize

SIZE = 448


def render_textured(
    vertices_mm, faces, uv, texture, yaw_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """(image (S, S, 3), pixel positions (N, 2)) of the scan at ``yaw_deg``, grey background."""
    camera = cam.deng_camera(SIZE)
    angles = jnp.array([0.0, np.deg2rad(yaw_deg), 0.0])
    world = cam.rigid_transform(jnp.asarray(vertices_mm, jnp.float32), angles, jnp.zeros(3))
    clip = cam.perspective_clip(world, camera)
    raster = rasterize(clip, jnp.asarray(faces, jnp.int32), (SIZE, SIZE))
    tex_uv = interpolate(jnp.asarray(uv, jnp.float32), raster, jnp.asarray(faces, jnp.int32))
    th, tw = texture.shape[:2]
    rows = (1.0 - tex_uv[..., 1]) * th - 0.5
    cols = tex_uv[..., 0] * tw - 0.5
    colour = jnp.stack(
        [
            jax.scipy.ndimage.map_coordinates(
                jnp.asarray(texture[..., c]), [rows, cols], order=1, mode="nearest"
            )
            for c in range(3)
        ],
        axis=-1,
    )
    mask = raster.mask[..., None]
    image = colour * mask + 0.5 * (1 - mask)
    return np.asarray(image), np.asarray(cam.project_perspective(world, camera))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_fit_config_arguments(parser)
    parser.add_argument("--checkpoints", help="networks: a training workdir or export folder")
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    folder = shared_dir() / "faces" / "menpo3d"
    scan = trimesh.load(folder / "james.obj", process=False)
    texture = np.asarray(Image.open(folder / "james.jpg").convert("RGB"), np.float32) / 255.0
    scan_lms_raw = read_landmarks(folder / "james.ljson")
    model = load_model()
    mean_lms = np.asarray(model.mean_shape)[np.asarray(model.landmarks68)]
    to_model = similarity_transform(scan_lms_raw[17:], mean_lms[17:])
    scan_v = apply_similarity(to_model, np.asarray(scan.vertices))
    scan_lms = apply_similarity(to_model, scan_lms_raw)
    near_nose = np.linalg.norm(scan_v - scan_lms[30], axis=1) < 80.0
    scan_pts = scan_v[near_nose]

    face_tris = np.asarray(model.triangles)[np.asarray(model.face_triangles)]
    networks = networks_from_checkpoints(args.checkpoints, model)
    rec = Reconstructor(model, fit_config(args), all_faces=True, **networks.as_kwargs())
    tmp = Path(tempfile.mkdtemp())
    rows = []
    inner = slice(17, 68)
    baseline = scan_to_mesh_error(
        np.asarray(model.mean_shape), face_tris, mean_lms[inner], scan_pts, scan_lms[inner]
    )
    for yaw in (-25.0, 0.0, 25.0):
        image, pixels = render_textured(scan_v, scan.faces, scan.visual.uv, texture, yaw)
        lm2d = pixels[np.argmin(np.linalg.norm(scan_v[:, None] - scan_lms[None], axis=2), 0)]
        occluded = occlude_photo(
            image,
            np.random.default_rng(int(yaw) + 100),
            landmarks=lm2d,
            config=OcclusionConfig(count=(1, 1), coverage=(0.15, 0.35)),
        )
        for condition, img in (("clean", image), ("occluded", occluded["occluded"])):
            path = imageio.save_image(tmp / f"james_{int(yaw)}_{condition}.png", img)
            start = time.perf_counter()
            loaded = imageio.load_image(path)
            try:
                faces = rec.detect(loaded.pixels)
                landmarks, note = faces[0], ""
            except OccfaceError:
                box = np.concatenate([lm2d.min(0), lm2d.max(0)])
                landmarks, note = rec.landmarks_in_box(loaded.pixels, box), " (landmark box)"
            result = rec.reconstruct_face(path, loaded, landmarks, start)
            fitted = result.fit.vertices
            recon_lms = np.asarray(geometry.landmarks3d(model, jnp.asarray(fitted)))
            dist = scan_to_mesh_error(
                fitted, face_tris, recon_lms[inner], scan_pts, scan_lms[inner]
            )
            rows.append(
                (
                    yaw,
                    condition,
                    dist.mean(),
                    np.median(dist),
                    np.percentile(dist, 90),
                    time.perf_counter() - start,
                    note,
                )
            )
            print(rows[-1], flush=True)
    lines = [
        f"james scan ({len(scan_pts)} scan vertices within 80 mm of the nose tip); config "
        f"{config_name(args)}; networks {args.checkpoints or 'none'}; {platform.machine()} CPU, {time.strftime('%Y-%m-%d')}. "
        "Distances in mm (scan scaled to the model by its landmarks).",
        "",
        "| yaw | condition | mean (mm) | median (mm) | 90% (mm) | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| - | mean face, no fit | {baseline.mean():.2f} | {np.median(baseline):.2f} | "
        f"{np.percentile(baseline, 90):.2f} | |",
    ]
    for yaw, cond, mean, med, p90, sec, note in rows:
        lines.append(
            f"| {yaw:+.0f} | {cond}{note} | {mean:.2f} | {med:.2f} | {p90:.2f} | {sec:.1f} |"
        )
    for cond in ("clean", "occluded"):
        vals = [r[2] for r in rows if r[1] == cond]
        lines.append(f"| all | **{cond}** | {np.mean(vals):.2f} | | | |")
    emit("Scan-to-mesh error on the james scan", lines, args.out)


if __name__ == "__main__":
    main()
