"""Photo in, reconstruction out: detect -> 68 landmarks -> Deng alignment -> fit -> outputs mapped
back onto the original photo. ``reconstruct_file`` writes one folder per image (see ``write_outputs``).

Trained networks plug in here: the occlusion-mask network (N_mask, ``occface reconstruct
--checkpoints``) marks the occluder before the fit; de-occlusion and coefficient regression come
later. Without them the fit alone reconstructs, estimating the occluder itself.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import cv2
import ml_collections
import numpy as np

from occface_jax.faces.align import align_face
from occface_jax.faces.detect import FaceDetector
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.fit import FitResult, Fitter
from occface_jax.io import images as imageio
from occface_jax.io import mesh as export
from occface_jax.io import report
from occface_jax.morphable import MorphableModel
from occface_jax.texture.atlas import bake_fit_texture


@dataclasses.dataclass
class Reconstruction:
    """One face's result. Crop-frame arrays come from the fit; ``*_original`` are on the photo."""

    source: Path
    photo: np.ndarray  # (H, W, 3) float [0, 1], as loaded (maybe downscaled, see ``scale``)
    scale: float
    aligned: Any  # faces.align.AlignedFace
    fit: FitResult
    landmarks_detected: np.ndarray  # (68, 2) photo pixels
    landmarks_model: np.ndarray  # (68, 2) photo pixels, projected from the fitted mesh
    occlusion_original: np.ndarray  # (H, W) float, 1 = occluded face pixel
    render_original: np.ndarray  # (H, W, 3)
    coverage_original: np.ndarray  # (H, W) rendered face coverage on the photo
    fill_region_original: np.ndarray  # (H, W) what de-occlusion repaints (FitResult.fill_region)
    fill_original: np.ndarray  # (H, W, 3) with what (FitResult.fill)
    seconds: float


DETECT_MAX_SIDE = 1600  # photos are downscaled to this for detection; faces stay large enough
CNN_MAX_SIDE = 800  # the CNN detector's memory and time grow fast with the image size


class Reconstructor:
    """Holds the model, detector and config across images (the jitted fit compiles once)."""

    def __init__(
        self,
        model: MorphableModel,
        config: ml_collections.ConfigDict,
        all_faces: bool = False,
        detector_method: str = "hog",
        mask_predictor: Any = None,
    ) -> None:
        """``mask_predictor`` (e.g. :class:`occface_jax.app.predictors.MaskPredictor`), when given,
        predicts each aligned crop's occluder for the fit (which adds its own residual estimate)."""
        self.full_model = model
        self.fit_model = model.face_only()
        self.config = config
        self.fitter = Fitter(self.fit_model, config, full_model=model)
        self.all_faces = all_faces
        self.mask_predictor = mask_predictor
        self.detector = FaceDetector(detector_method, upsample=1)
        self._cnn = None

    def detect(self, photo: np.ndarray) -> list[Any]:
        """Faces (largest first; all with ``all_faces``) with dlib's 68 landmarks, photo pixels.

        dlib's HOG detector first; when it finds nothing (occluders often hide what it looks
        for), dlib's CNN detector on a copy of at most ``CNN_MAX_SIDE`` pixels."""
        try:
            return self._detect_with(self.detector, photo, DETECT_MAX_SIDE)
        except NoFaceFoundError as hog_error:
            if self._cnn is None:
                self._cnn = FaceDetector("cnn", upsample=0)
            try:
                return self._detect_with(self._cnn, photo, CNN_MAX_SIDE)
            except NoFaceFoundError:
                raise NoFaceFoundError(
                    f"no face found (dlib's HOG and CNN detectors) in a {photo.shape[1]}x"
                    f"{photo.shape[0]} image"
                ) from hog_error

    def _detect_with(self, detector: Any, photo: np.ndarray, max_side: int) -> list[Any]:
        if max(photo.shape[:2]) <= max_side:
            return detector.detect(photo, all_faces=self.all_faces)
        scale = max_side / max(photo.shape[:2])  # detection cost grows with the area
        faces = detector.detect(_resize(photo, scale), all_faces=self.all_faces)
        # Landmarks again at full resolution, in the rescaled box.
        return [
            dataclasses.replace(
                f, box=f.box / scale, landmarks=detector.landmarks(photo, f.box / scale)
            )
            for f in faces
        ]

    def reconstruct_face(
        self, source: Path, loaded: imageio.LoadedImage, landmarks: np.ndarray, start: float
    ) -> Reconstruction:
        """Align on 68 ``landmarks`` (photo pixels), fit, and map the results back onto the photo."""
        photo = loaded.pixels
        aligned = align_face(photo, landmarks)
        predicted = self.mask_predictor(aligned.image) if self.mask_predictor else None
        fitted = self.fitter(aligned.image, aligned.landmarks, predicted=predicted)
        shape = photo.shape[:2]
        paste = aligned.paste_back
        return Reconstruction(
            source=Path(source),
            photo=photo,
            scale=loaded.scale,
            aligned=aligned,
            fit=fitted,
            landmarks_detected=np.asarray(landmarks),
            landmarks_model=aligned.to_original(fitted.landmarks),
            occlusion_original=_fit_shape(paste(fitted.occlusion), shape),
            render_original=_fit_shape(paste(fitted.rendered), shape),
            coverage_original=_fit_shape(paste(fitted.face_mask), shape),
            fill_region_original=_fit_shape(paste(fitted.fill_region), shape),
            fill_original=_fit_shape(paste(fitted.fill), shape),
            seconds=time.perf_counter() - start,
        )

    def __call__(self, path: str | Path) -> list[Reconstruction]:
        """Every requested face of the photo at ``path`` (NoFaceFoundError when there is none)."""
        start = time.perf_counter()
        loaded = imageio.load_image(path)
        faces = self.detect(loaded.pixels)
        return [self.reconstruct_face(Path(path), loaded, f.landmarks, start) for f in faces]


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _fit_shape(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(array, np.float32).reshape(shape + np.shape(array)[2:])


def write_mesh_obj(out_dir: Path, rec: Any, model: Any) -> dict[str, Path]:
    """``out_dir/mesh.obj`` of a ``Reconstruction`` of the full ``model``: textured (+
    ``mesh.mtl``, ``texture.png`` baked by ``texture.atlas.bake_fit_texture`` with the photo)
    when the model has UVs, else with vertex colours. Returns {kind: path}."""
    fit, path = rec.fit, Path(out_dir) / "mesh.obj"
    tris = np.asarray(model.triangles)
    if model.uv is None:
        return {"mesh_obj": export.write_obj(path, fit.vertices, tris, fit.vertex_colors)}
    crop_size = int(np.shape(rec.aligned.image)[0])
    texture = bake_fit_texture(model, fit, rec.photo, rec.aligned.inverse, crop_size)
    return export.write_textured_obj(
        path, fit.vertices, tris, model.uv.coords, model.uv.triangles, texture, fit.vertex_colors
    )


def write_outputs(rec: Reconstruction, out_dir: Path, model: MorphableModel) -> dict[str, str]:
    """Write one reconstruction's files into ``out_dir``; returns {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fit = rec.fit
    tris = np.asarray(model.triangles)
    files = {
        **write_mesh_obj(out_dir, rec, model),  # + mesh.mtl, texture.png with UVs
        "mesh_ply": export.write_ply(out_dir / "mesh.ply", fit.vertices, tris, fit.vertex_colors),
        "coeffs": export.write_coefficients(
            out_dir / "coeffs.npz",
            fit.coeffs,
            model_name=np.array(model.name),
            crop_to_photo=rec.aligned.inverse,
            photo_scale=np.float32(rec.scale),
        ),
        "landmarks": export.write_json(
            out_dir / "landmarks.json",
            {
                "convention": "pixels of the original photo, x right, y down, pixel centres at +0.5",
                "model": rec.landmarks_model / rec.scale,
                "detected": rec.landmarks_detected / rec.scale,
            },
        ),
    }
    photo = rec.photo
    coverage = rec.coverage_original[..., None]
    region = rec.fill_region_original[..., None]
    deoccluded = photo * (1 - region) + rec.fill_original * region
    overlay = photo * (1 - 0.7 * coverage) + rec.render_original * 0.7 * coverage
    files["mask"] = imageio.save_image(out_dir / "mask.png", rec.occlusion_original)
    files["deoccluded"] = imageio.save_image(out_dir / "deoccluded.png", deoccluded)
    files["overlay"] = imageio.save_image(out_dir / "overlay.png", overlay)
    files["report"] = report.save_report(out_dir / "report.png", rec, deoccluded, overlay, model)
    return {k: str(v) for k, v in files.items()}
