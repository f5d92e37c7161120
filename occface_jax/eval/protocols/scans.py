"""Textured scans rendered and reconstructed: scan-to-mesh error of the reconstruction of a real
scan's own renders, clean and occluded, against the unfitted mean face (``experiments/james_scan.py``).

Per scan: the scan is brought into the default morphable model's frame by the similarity that maps
its inner 51 landmarks (iBUG 17-67) onto the model mean's, so errors read as millimetres under that
scale (a scan's own units may be undocumented). It is rendered with its texture (Deng camera,
``SIZE`` px, grey background) at each yaw of ``yaws`` (degrees, positive turns the face to its
left), clean and with one occluder of the data engine (``landmarks.OCCLUSION``; seed 100 + yaw +
1000 x the scan's index), and reconstructed from the render by the predictor (detection; the
landmarks in the box of the scan's projected 68 landmarks when no detector finds the face; with
``landmarks=truth`` those projected landmarks themselves, no detection). The
prediction's inner 51 landmark vertices are aligned to the scan's by a similarity refined by ICP
with scale (``surface.scan_to_mesh_error``); the error is the distance (mm) from every scan vertex
within ``RADIUS_MM`` of the nose tip (iBUG 30) to the predicted surface. The unfitted mean face of
the default model is scored the same way ("mean face": the do-nothing baseline a fit must beat).

Pictures: ``OUT/heatmaps/<id>.png``, the aligned prediction coloured by its distance to the scan's
surface (grey where the scan does not cover it).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from occface_jax.data.augment import occlude_photo
from occface_jax.data.errors import RecordError
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.eval.heatmap import HEATMAP_MAX_MM, HEATMAPS, save_error_heatmap
from occface_jax.eval.metrics.surface import (
    apply_similarity,
    closest_points_on_mesh,
    scan_to_mesh_alignment,
    similarity_transform,
)
from occface_jax.eval.protocols.landmarks import OCCLUSION
from occface_jax.eval.protocols.runner import (
    Predict,
    Protocol,
    Sample,
    by_subset,
    layout_error,
    markdown,
    mean_std,
    occluder_kinds,
    safe_name,
)

LAYOUT = (
    "ROOT/<name>.obj (a textured scan: texture coordinates, its texture ROOT/<name>.jpg or .png "
    "or the .mtl's map_Kd) and ROOT/<name>.ljson (its 68 3-D landmarks, iBUG order)"
)
SIZE = 448
RADIUS_MM = 80.0
INNER = slice(17, 68)
CONDITIONS = ("clean", "occluded")
HEATMAP_COVER_MM = 10.0


def samples(
    root: Path,
    yaws: str = "-25,0,25",
    occluders: str = "all",
    names: str = "",
    landmarks: str = "detected",
) -> list[Sample]:
    """One sample per scan, yaw and condition. ``yaws``: comma-separated degrees; ``occluders``:
    the kinds drawn from ("all", or e.g. "glasses,hand"; "" scores the clean renders only);
    ``names``: comma-separated scan names (default every ``*.obj`` with a ``.ljson`` beside it);
    ``landmarks``: "detected" (the pipeline's) or "truth" (the scan's 68 landmarks projected are
    given to the fit: the shape error without the landmark detector's)."""
    if landmarks not in ("detected", "truth"):
        raise OccfaceError(f"scans: landmarks={landmarks!r}: 'detected' or 'truth'")
    kinds = occluder_kinds("scans", occluders)
    wanted = [n.strip() for n in str(names).split(",") if n.strip()]
    found = sorted(p.stem for p in Path(root).glob("*.obj") if p.with_suffix(".ljson").is_file())
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise layout_error(Path(root) / f"{missing[0]}.obj", "no such scan with landmarks", LAYOUT)
    try:
        angles = [float(y) for y in str(yaws).split(",") if y.strip()]
    except ValueError as err:
        raise OccfaceError(
            f"scans: yaws={yaws!r} is not a comma-separated list of degrees"
        ) from err
    out = []
    for name in wanted or found:
        index = found.index(name)
        for yaw in angles:
            for condition in CONDITIONS if kinds else CONDITIONS[:1]:
                out.append(
                    Sample(
                        f"{name}/yaw{yaw:+g}/{condition}",
                        condition,
                        {
                            "root": str(root),
                            "name": name,
                            "index": index,
                            "yaw": yaw,
                            "kinds": ",".join(kinds),
                            "truth": landmarks == "truth",
                        },
                    )
                )
    return out


def render_textured(
    vertices_mm: np.ndarray,
    triangles: np.ndarray,
    uv: np.ndarray,
    texture: np.ndarray,
    yaw_deg: float,
    size: int = SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """(image (S, S, 3) in [0, 1], pixel positions (N, 2) of the vertices) of a UV-textured mesh
    (vertices mm in the model frame, ``uv`` (N, 2) with v up, ``texture`` (H, W, 3) in [0, 1]) seen
    by the Deng camera after a turn of ``yaw_deg`` about the vertical axis; grey background."""
    from occface_jax.render import camera as cam
    from occface_jax.render.interpolate import interpolate
    from occface_jax.render.raster import rasterize
    from occface_jax.texture.atlas import sample_bilinear

    camera = cam.deng_camera(size)
    angles = jnp.array([0.0, np.deg2rad(yaw_deg), 0.0])
    world = cam.rigid_transform(jnp.asarray(vertices_mm, jnp.float32), angles, jnp.zeros(3))
    clip = cam.perspective_clip(world, camera)
    tris = jnp.asarray(triangles, jnp.int32)
    raster = rasterize(clip, tris, (size, size))
    tex_uv = interpolate(jnp.asarray(uv, jnp.float32), raster, tris)
    th, tw = texture.shape[:2]
    points = jnp.stack([tex_uv[..., 0] * tw, (1.0 - tex_uv[..., 1]) * th], axis=-1)
    colour = sample_bilinear(jnp.asarray(texture, jnp.float32), points)[0]
    mask = raster.mask[..., None]
    image = colour * mask + 0.5 * (1 - mask)
    return np.asarray(image), np.asarray(cam.project_perspective(world, camera))


@functools.cache
def reference_face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The default morphable model's mean face (N, 3) mm, triangles of its face region (F, 3) and
    its 68 landmark vertices (68, 3): the frame scans are scaled to and the baseline."""
    from occface_jax.morphable import load_model

    model = load_model()
    mean = np.asarray(model.mean_shape, np.float64)
    tris = np.asarray(model.triangles)[np.asarray(model.face_triangles)]
    return mean, tris, mean[np.asarray(model.landmarks68)]


def _texture(obj: Path, mesh: Any) -> np.ndarray:
    from PIL import Image

    for suffix in (".jpg", ".png", ".jpeg"):
        if obj.with_suffix(suffix).is_file():
            with Image.open(obj.with_suffix(suffix)) as img:
                return np.asarray(img.convert("RGB"), np.float32) / 255.0
    image = getattr(getattr(mesh.visual, "material", None), "image", None)
    if image is None:
        raise RecordError(f"{obj}: no texture (no {obj.stem}.jpg/.png beside it, no map_Kd)")
    return np.asarray(image.convert("RGB"), np.float32) / 255.0


@functools.lru_cache(maxsize=2)
def load_textured_scan(root: str, name: str) -> dict[str, np.ndarray]:
    """The scan ``ROOT/<name>`` in the model frame: ``vertices`` (N, 3) mm, ``triangles``,
    ``uv``, ``texture``, ``landmarks`` (68, 3) mm, ``landmark_vertices`` (68,) (the scan vertex
    nearest each), ``points`` (the scan vertices within ``RADIUS_MM`` of the nose tip) and
    ``baseline`` (their distances to the mean face)."""
    import trimesh  # ~3 s to import; only scans need it

    from occface_jax.faces.landmarks_io import read_landmarks

    obj = Path(root) / f"{name}.obj"
    try:
        mesh = trimesh.load(obj, process=False, force="mesh")
    except Exception as err:  # trimesh raises many types for a corrupt file
        raise RecordError(f"{obj}: unreadable scan ({err})") from err
    uv = getattr(mesh.visual, "uv", None)
    if uv is None or len(uv) != len(mesh.vertices):
        raise RecordError(f"{obj}: no texture coordinates (a textured scan is expected)")
    raw_landmarks = np.asarray(read_landmarks(obj.with_suffix(".ljson")), np.float64)
    if raw_landmarks.shape != (68, 3):
        raise RecordError(
            f"{obj.with_suffix('.ljson')}: {raw_landmarks.shape[0]} points of "
            f"{raw_landmarks.shape[1]} coordinates; 68 3-D points (iBUG order) expected"
        )
    mean, tris, mean_landmarks = reference_face()
    to_model = similarity_transform(raw_landmarks[INNER], mean_landmarks[INNER])
    vertices = apply_similarity(to_model, np.asarray(mesh.vertices, np.float64))
    landmarks = apply_similarity(to_model, raw_landmarks)
    scan = {
        "vertices": vertices,
        "triangles": np.asarray(mesh.faces, np.int32),
        "uv": np.asarray(uv, np.float32),
        "texture": _texture(obj, mesh),
        "landmarks": landmarks,
        "landmark_vertices": np.argmin(
            np.linalg.norm(vertices[:, None] - landmarks[None], axis=2), axis=0
        ),
        "points": vertices[np.linalg.norm(vertices - landmarks[30], axis=1) < RADIUS_MM],
    }
    scan["baseline"] = align_to_scan(scan, mean, tris, mean_landmarks)[1]
    return scan


def align_to_scan(
    scan: dict[str, np.ndarray],
    vertices: np.ndarray,
    triangles: np.ndarray,
    landmarks3d: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(``vertices`` moved onto the scan, the distance (P,) mm from each of the scan's ``points``
    to the moved surface): a similarity on the inner 51 of the 68 ``landmarks3d`` refined by ICP
    with scale (``surface.scan_to_mesh_alignment``)."""
    sim = scan_to_mesh_alignment(
        vertices, triangles, landmarks3d[INNER], scan["points"], scan["landmarks"][INNER]
    )
    moved = apply_similarity(sim, vertices)
    return moved, closest_points_on_mesh(scan["points"], moved, triangles)[1]


def view(scan: dict[str, np.ndarray], yaw: float, seed: int, kinds: tuple[str, ...]) -> dict:
    """The render of ``scan`` at ``yaw`` (``clean``), its ``occluded`` copy (occluder from
    ``seed`` and ``kinds``; None without kinds) and the projected 68 ``landmarks`` (68, 2) px."""
    image, pixels = render_textured(
        scan["vertices"], scan["triangles"], scan["uv"], scan["texture"], yaw
    )
    landmarks = pixels[scan["landmark_vertices"]]
    occluded = None
    if kinds:
        config = OcclusionConfig(kinds=kinds, count=OCCLUSION.count, coverage=OCCLUSION.coverage)
        occluded = occlude_photo(
            image, np.random.default_rng(seed), landmarks=landmarks, config=config
        )["occluded"]
    return {"clean": image, "occluded": occluded, "landmarks": landmarks}


@functools.lru_cache(maxsize=2)  # a view's clean and occluded samples follow each other
def _view(root: str, name: str, yaw: float, seed: int, kinds: tuple[str, ...]) -> dict:
    return view(load_textured_scan(root, name), yaw, seed, kinds)


def sample_view(sample: Sample) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(the scan, the image, its projected 68 landmarks (68, 2) px) of one of :func:`samples`."""
    data = sample.data
    kinds = tuple(k for k in data["kinds"].split(",") if k)
    seed = int(data["yaw"]) + 100 + 1000 * int(data["index"])
    rendered = _view(data["root"], data["name"], float(data["yaw"]), seed, kinds)
    return load_textured_scan(data["root"], data["name"]), rendered[sample.subset], rendered["landmarks"]  # fmt: skip


def _stats(distances: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(distances.mean()),
        "median": float(np.median(distances)),
        "p90": float(np.percentile(distances, 90)),
    }


def _to_scan_surface(vertices: np.ndarray, scan: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) distance (mm) from each vertex to the scan's surface (not its vertices: a scan of a few
    thousand points would colour its own spacing); NaN beyond ``HEATMAP_COVER_MM`` (not covered)."""
    dist = closest_points_on_mesh(vertices, scan["vertices"], scan["triangles"])[1]
    return np.where(dist <= HEATMAP_COVER_MM, dist, np.nan)


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    data = sample.data
    scan, image, landmarks = sample_view(sample)
    box = np.concatenate([landmarks.min(0), landmarks.max(0)])
    given = {"landmarks": landmarks} if data.get("truth") else {}
    predicted = predict(image, box, **given)
    moved, dist = align_to_scan(
        scan, predicted.vertices, predicted.triangles, predicted.landmarks3d
    )
    save_error_heatmap(
        samples_dir.parent / HEATMAPS / f"{safe_name(sample.id)}.png",
        moved,
        predicted.triangles,
        _to_scan_surface(moved, scan),
        max_mm=HEATMAP_MAX_MM,
        title=f"{sample.id}: mean {dist.mean():.2f} mm",
    )
    np.save(samples_dir / f"{safe_name(sample.id)}.npy", dist.astype(np.float32))
    return {
        "scan": data["name"],
        "yaw": float(data["yaw"]),
        "points": int(len(dist)),
        **_stats(dist),
        "mean_face": _stats(scan["baseline"]),
    }


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    """Per sample its mean / median / 90th percentile (mm); per condition and overall the mean
    over samples of their means (± std); the mean face's, per scan and over scans."""
    del samples_dir
    per_scan = {r["scan"]: r["mean_face"] for r in records}
    return {
        "views": [
            {k: r[k] for k in ("id", "scan", "yaw", "subset", "mean", "median", "p90", "seconds")}
            for r in records
        ],
        "subsets": {
            subset: mean_std([r["mean"] for r in rs])
            for subset, rs in by_subset(records, order=CONDITIONS)
        },
        "mean_face": {
            "scans": per_scan,
            **mean_std([m["mean"] for m in per_scan.values()]),
        },
    }


def table(results: dict[str, Any]) -> str:
    face = results["mean_face"]
    rows = [
        (name, "-", "mean face, no fit", m["mean"], m["median"], m["p90"], None)
        for name, m in face["scans"].items()
    ]
    rows += [
        (v["scan"], f"{v['yaw']:+g}", v["subset"], v["mean"], v["median"], v["p90"], v["seconds"])
        for v in results["views"]
    ]
    rows += [
        ("all", "", f"**{subset}** ({m['n']} views)", m["mean"], None, None, None)
        for subset, m in results["subsets"].items()
    ]
    rows.append(("all", "", f"**mean face** ({face['n']} scans)", face["mean"], None, None, None))
    return markdown(
        ("scan", "yaw", "condition", "mean (mm)", "median (mm)", "90% (mm)", "seconds"),
        rows,
        f"Scan vertices within {RADIUS_MM:.0f} mm of the nose tip to the reconstructed surface, "
        "after inner-51-landmark similarity alignment and ICP with scale (scan scaled to the "
        "model by its landmarks).",
        digits=2,
    )


PROTOCOL = Protocol(
    "scans",
    "textured scans rendered, reconstructed and compared (scan-to-mesh error)",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
)
