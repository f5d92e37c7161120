"""The coefficient regressor (the paper's ResNet-50, Deng et al.'s R-Net): an aligned face crop in,
every morphable-model coefficient out, trained weakly supervised through the renderer.

One model (``resnet``, :func:`occface_jax.models.resnet.build_resnet`), one phase. The loss is the
fit's own photometric-stage objective, :func:`occface_jax.fit.objective.fit_objective` (Eq. 15 =
feat 0.2 x Eq. 16 + regu 3.6e-4 x Eq. 17 + phot 1.4 x Eq. 18 with the attention Z and the occlusion
mask + land 1.6e-3 x Eq. 19, weights in ``config.loss.weights``), called on the whole batch at
once: the face region of the morphable model is rendered for every example of the batch
(``morphable.rendering.render`` through the fit's ``FaceRenderer``, batched over the leading axis)
inside the jitted, data-parallel step. No ground-truth coefficient enters the loss.

Data (:meth:`sources`): the data engine's synthetic faces, the last ``data.validation_size`` held
out for evaluation; with ``data.root``, training mixes in (``data.photo_fraction`` of the records,
:class:`~occface_jax.data.inpainting.Mixture`) every face of that folder of real photos
(:class:`~occface_jax.data.regressor.PhotoRecords`: the pipeline's aligned crop, 68 landmarks
annotated beside the photo or detected once by dlib and cached, occluders pasted), whose
coefficients are NaN (no ground truth: the loss never reads ``coeffs``).

Batch (``make_batch``, numpy): ``image`` (B, S, S, 3) the occluded face, RGB in [0, 1], or with
``data.deoccluder`` (a folder holding the trained ``contour/`` and ``synthesis/`` stages) the
de-occluded face I_fina the GANs make of it and its occluder mask, the input the pipeline's
regressor gets when the GANs are present (the photometric term still leaves the repainted pixels
out: the occlusion mask below);
``landmarks`` (B, 68, 2) pixels: a synthetic face's projected landmarks (jaw on the outline, as
a detector marks them) plus Gaussian noise of ``loss.landmark_noise_px`` pixels at 224 (a
detector's error, drawn once per sample index, so a sample keeps its noise across epochs); a
photo's as annotated or detected, without noise; ``occlusion`` (B, S, S) the occluder mask (the
data engine's, or the pasted occluders' on a photo: what N_mask predicts); ``synthetic`` (B,)
1.0 for a synthetic face, 0.0 for a photo (records without the flag are synthetic);
``coeffs`` (B, K) and ``clean_landmarks`` the ground truth, used only by :meth:`evaluate` (which
runs on synthetic faces only; a photo's ``coeffs`` are NaN).
In training each example is moved by a random similarity first (:meth:`augment`, Deng et al.'s
shift, scale and rotation; ``config.augment``), on the device, a new draw every step.
S = ``config.model.input_size`` (records are resized to it) and the renderer's camera is Deng
et al.'s at S (``render.camera.deng_camera``).

Training, evaluation and inference all render the outputs within the fit's bounds
(``fit.fitter.project_constraints``: blendshapes in [0, 1], albedo in [-3, 3]); in training the
squared distance of the raw outputs to those bounds is added (``loss.bound_weight``), since the
clipped outputs get no gradient there. (Rendering the raw outputs instead, a blendshape weight
outside [0, 1] extrapolating linearly, let a weakly supervised network fit landmarks with weights
from -4 to 6 that no clipped face reproduced: 6.2 mm against the mean face's 4.6 mm after 1500
steps, ``experiments/results/regressor.md``.) Evaluation: mean
per-vertex distance (mm, face region, model frame: shape only, no pose) to the ground-truth shape,
for the prediction and for the mean face; landmark error (pixels at S) of the projected landmarks
against the noise-free ones, for the prediction and for the mean face at the default pose; the
loss terms. Images: input | render over it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.data.inpainting import Mixture
from occface_jax.data.pipeline import occlusion_config, source_from_config, split_validation
from occface_jax.data.regressor import PhotoRecords, SyntheticRecords
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.landmarks import point_errors
from occface_jax.faces.affine import apply_affine, invert_affine, random_similarity, warp_affine
from occface_jax.faces.edges import dilation_radius
from occface_jax.fit.deocclusion import deocclude_with_generators, hole_dilation
from occface_jax.fit.fitter import constraint_violation, project_constraints
from occface_jax.fit.objective import (
    FaceRenderer,
    fit_objective,
    hidden_landmark_weights,
    landmark_weights,
)
from occface_jax.io import checkpoints as ckpt
from occface_jax.losses.identity import embed_faces, identity_loss_to_embedding
from occface_jax.losses.recon import LossWeights
from occface_jax.models.face_id import load_face_id_net
from occface_jax.models.resnet import build_resnet
from occface_jax.morphable import CoeffLayout, MorphableModel, contour, geometry
from occface_jax.morphable import load_model as load_morphable
from occface_jax.morphable.model import ARRAY_FIELDS
from occface_jax.morphable.rendering import project_landmarks
from occface_jax.render import camera as cam
from occface_jax.render.antialias import mesh_adjacency
from occface_jax.train.task import Phase, Task, photo_crops

DETECTOR_SIZE = 224  # ``loss.landmark_noise_px`` is in pixels of a 224 crop


class Constant(nnx.Variable):
    """An array a loss reads but never trains (not an ``nnx.Param``, no optimizer state)."""


class MorphableArrays(nnx.Module):
    """A :class:`MorphableModel` as a frozen module, so that its arrays travel into the jitted step
    as arguments (replicated over the mesh) rather than as compile-time constants (folding the
    topology as constants made XLA's compile take minutes, ``fit/fitter.py``)."""

    def __init__(self, model: MorphableModel) -> None:
        self.arrays = nnx.data({k: Constant(jnp.asarray(getattr(model, k))) for k in ARRAY_FIELDS})
        self.static = (model.name, model.exp_kind, model.albedo_kind)

    def model(self) -> MorphableModel:
        """The model (without its UV map: rendering does not use it)."""
        name, exp_kind, albedo_kind = self.static
        arrays = {k: v[...] for k, v in self.arrays.items()}
        return MorphableModel(**arrays, name=name, exp_kind=exp_kind, albedo_kind=albedo_kind)


@dataclasses.dataclass(frozen=True, eq=False)
class BatchIdentityTerm:
    """Eq. 16 for a batch, with the signature ``fit_objective`` gives its identity term: 1 - cos
    between the face-ID descriptors (B, 128) of the photos and of the renders, both chips cut with
    the photos' landmarks (as ``fit.objective.IdentityTerm`` does for one image)."""

    graphdef: Any

    def __call__(
        self, state: Any, embedding: jax.Array, rendered: jax.Array, landmarks: jax.Array
    ) -> jax.Array:
        net = nnx.merge(self.graphdef, state)
        return identity_loss_to_embedding(net, embedding, rendered, landmarks)


class RegressorTask(Task):
    """The regressor stage: one model (``resnet``), one phase (Eq. 15 through the renderer).

    ``model`` (a :class:`MorphableModel`) replaces the one ``config.morphable.path`` names (the
    default model when empty), e.g. a toy model in tests; its face region is what is rendered."""

    name = "regressor"
    models = {"resnet": (build_resnet, "model")}
    architecture = ("model", "morphable")

    def __init__(self, model: MorphableModel | None = None) -> None:
        self._given = model
        self._face: MorphableModel | None = None
        self._deoccluder: tuple[str, Callable[..., np.ndarray]] | None = None

    # -- the morphable model and what depends on it ---------------------------------------------
    def face_model(self, config: ml_collections.ConfigDict) -> MorphableModel:
        """The model that is rendered (its face region when ``morphable.face_only``)."""
        if self._face is None:
            model = self._given
            if model is None:
                model = load_morphable(str(config.morphable.path) or None)
            if bool(config.morphable.face_only):
                model = model.face_only()
            self._face = model
            self._layout = CoeffLayout.for_model(model, light=str(config.morphable.light))
            self._jaw = contour.for_model(model) if bool(config.loss.march_jaw) else None
            self._adjacency = mesh_adjacency(model.triangles)
        size = self._layout.size
        if int(config.model.outputs) != size:
            raise OccfaceError(
                f"model.outputs {int(config.model.outputs)} is not the morphable model's "
                f"{size} coefficients; --set model.outputs={size}"
            )
        return self._face

    def layout(self, config: ml_collections.ConfigDict) -> CoeffLayout:
        self.face_model(config)
        return self._layout

    def renderer(self, config: ml_collections.ConfigDict) -> FaceRenderer:
        self.face_model(config)
        size = int(config.model.input_size)
        return FaceRenderer(
            cam.deng_camera(size), float(config.loss.ambient), self._adjacency, self._jaw
        )

    # -- the contract ---------------------------------------------------------------------------
    def sources(self, config: ml_collections.ConfigDict) -> tuple[Any, Any]:
        """Training: the synthetic faces of ``config.data`` (of the given morphable model when the
        task has one) but the last ``data.validation_size``; with ``data.root``, mixed with every
        face of that folder's photos (:class:`~occface_jax.data.regressor.PhotoRecords`: landmarks
        annotated or detected once, occluders pasted), ``data.photo_fraction`` of the records.
        Evaluation: the held-out synthetic faces (they have ground truth)."""
        data = config.data
        source = source_from_config(data, model=self._given)
        train, held_out = split_validation(source, int(data.validation_size))
        crops, fraction = photo_crops(data)
        if crops is None:
            return train, (held_out if len(held_out) else None)
        size = self.layout(config).size
        photos = PhotoRecords(crops, size, int(data.seed), occlusion_config(data))
        synthetic = SyntheticRecords(train)
        mixed = Mixture([synthetic, photos], [1.0 - fraction, fraction], len(train))
        return mixed, (SyntheticRecords(held_out) if len(held_out) else None)

    def phases(self, config: ml_collections.ConfigDict) -> list[Phase]:
        return [Phase(self.loss, updates="resnet")]

    def frozen(self, config: ml_collections.ConfigDict, upstream: dict) -> dict[str, nnx.Module]:
        out: dict[str, nnx.Module] = {"morphable": MorphableArrays(self.face_model(config))}
        if bool(config.loss.use_identity):
            out["face_id"] = load_face_id_net()
        return out

    def deoccluder(self, config: ml_collections.ConfigDict) -> Any:
        """``(crops (B, S, S, 3), occluders (B, S, S)) -> I_fina (B, S, S, 3)`` with the
        de-occlusion GANs of ``data.deoccluder`` (a training workdir holding trained
        ``contour/`` and ``synthesis/``; loaded once), as the pipeline's de-occlusion computes it
        (``fit.deocclusion.deocclude``: the occluder grown by the synthesis stage's
        ``inpainting.dilation``); None when empty: the network then sees the occluded face."""
        root = str(config.data.get("deoccluder", "") or "")
        if not root:
            return None
        if self._deoccluder is None or self._deoccluder[0] != root:
            self._deoccluder = (root, _load_deoccluder(Path(root)))
        return self._deoccluder[1]

    def make_batch(self, records: dict[str, Any], config: ml_collections.ConfigDict) -> dict:
        size = int(config.model.input_size)
        image = np.asarray(records["occluded"], np.float32)
        mask = np.asarray(records["mask"], np.float32)
        clean = np.asarray(records["landmarks"], np.float32)
        scale = size / image.shape[2]
        if image.shape[1:3] != (size, size):
            image = np.stack([_resize(x, size) for x in image])
            mask = (np.stack([_resize(x, size) for x in mask]) > 0.5).astype(np.float32)
            clean = clean * scale
        deoccluder = self.deoccluder(config)
        if deoccluder is not None and (mask > 0.5).any():  # I_fina: what the pipeline's
            image = deoccluder(image, mask)  # regressor sees with the GANs
        sigma = float(config.loss.landmark_noise_px) * size / DETECTOR_SIZE
        seed = int(config.loss.noise_seed)
        n = image.shape[0]
        # records without the flag (a synthetic source alone) are synthetic
        synthetic = np.asarray(records.get("synthetic", np.ones(n, bool)), bool).reshape(n)
        noise = np.stack(
            [
                np.random.default_rng([seed, int(i)]).normal(0.0, sigma, (68, 2))
                for i in np.asarray(records["index"]).reshape(-1)
            ]
        ).astype(np.float32)
        noise *= synthetic[:, None, None]  # a photo's landmarks already have a detector's error
        return {
            "image": image,
            "landmarks": clean + noise,
            "occlusion": mask,
            "coeffs": np.asarray(records["coeffs"], np.float32),
            "clean_landmarks": clean,
            "synthetic": synthetic.astype(np.float32),
        }

    def predict(self, models: dict, batch: dict, config) -> dict[str, jax.Array]:
        """The coefficient blocks the network predicts for ``batch['image']`` (raw outputs)."""
        return self.layout(config).split(models["resnet"](batch["image"]))

    def objective(
        self, params: dict, frozen: dict, batch: dict, config
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Eq. 15 per example (B,) and its terms, each (B,): the fit's objective over the batch."""
        lc = config.loss
        model = frozen["morphable"].model()
        image, target, occlusion = batch["image"], batch["landmarks"], batch["occlusion"]
        base = jnp.asarray(landmark_weights(float(lc.jaw_landmark_weight)))
        hidden = jax.vmap(hidden_landmark_weights, in_axes=(0, 0, None))
        weights = base * hidden(occlusion, target, float(lc.hidden_landmark_weight))
        identity, identity_inputs = None, None
        if "face_id" in frozen:
            graphdef, state = nnx.split(frozen["face_id"])
            embedding = jax.lax.stop_gradient(embed_faces(frozen["face_id"], image, target))
            identity, identity_inputs = BatchIdentityTerm(graphdef), (state, embedding)
        return fit_objective(
            params,
            model,
            image,
            target,
            weights,
            occlusion,
            identity_inputs,
            renderer=self.renderer(config),
            weights=LossWeights(**{k: float(v) for k, v in lc.weights.items()}),
            robust_scale=float(lc.robust_scale),
            identity=identity,
        )

    def supervised(self, params: dict, frozen: dict, batch: dict, config) -> jax.Array:
        """The optional supervised term (``loss.supervised_weight``, 0 by default: the default
        loss is weak supervision only), per example (B,): the mean squared distance (mm^2) between
        the predicted and the true shape (identity + expression, model frame, every rendered
        vertex); 0 on photos (no ground truth). Pose, albedo and light stay weakly supervised (the
        augmentation moves the pose away from the record's)."""
        model = frozen["morphable"].model()
        has_truth = batch["synthetic"] > 0.5
        truth = self.layout(config).split(jnp.nan_to_num(batch["coeffs"]))
        true_shape = geometry.shape(model, truth["id"], truth["exp"])
        shape = geometry.shape(model, params["id"], params["exp"])
        squared = jnp.mean(jnp.sum((shape - true_shape) ** 2, axis=-1), axis=-1)
        return jnp.where(has_truth, squared, 0.0)

    def augment(self, batch: dict, key: jax.Array, config) -> dict:
        """Deng et al.'s augmentation (``config.augment``): each example's crop, occlusion mask and
        landmarks moved by its own random similarity (rotation, scale, shift about the crop's
        centre; zeros where the crop had no pixels), drawn from the step's ``key``."""
        aug = config.augment
        size = int(config.model.input_size)
        shift = float(aug.shift_px) * size / DETECTOR_SIZE
        keys = jax.random.split(key, batch["image"].shape[0])
        matrices = jax.vmap(
            lambda k: random_similarity(k, size, shift, float(aug.scale), float(aug.rotation_deg))
        )(keys)
        warp = jax.vmap(lambda x, m: warp_affine(x, invert_affine(m), (size, size)))
        occlusion = warp(batch["occlusion"][..., None], matrices)[..., 0]
        moved = {
            "image": warp(batch["image"], matrices),
            "occlusion": (occlusion > 0.5).astype(batch["occlusion"].dtype),
        }
        for name in ("landmarks", "clean_landmarks"):
            moved[name] = apply_affine(matrices, batch[name])
        return {**batch, **moved}

    def loss(
        self, models: dict, frozen: dict, batch: dict, key: jax.Array, config
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        if bool(config.augment.enabled):
            batch = self.augment(batch, key, config)
        params = self.predict(models, batch, config)
        exp_kind = frozen["morphable"].model().exp_kind
        # rendered within the fit's bounds (as evaluated and used); outside them the projection
        # has no gradient, and the penalty (its squared distance to the bounds) pulls back in
        total, terms = self.objective(project_constraints(params, exp_kind), frozen, batch, config)
        violation = constraint_violation(params, exp_kind)
        total = total + float(config.loss.bound_weight) * violation
        terms = {**terms, "bounds": violation}
        weight = float(config.loss.get("supervised_weight", 0.0))
        if weight > 0.0:  # the optional warm start on synthetic ground truth (off by default)
            supervised = self.supervised(params, frozen, batch, config)
            total, terms = total + weight * supervised, {**terms, "supervised": supervised}
        return jnp.mean(total), {k: jnp.mean(v) for k, v in terms.items()}

    def evaluate(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        model = frozen["morphable"].model()
        layout = self.layout(config)
        params = project_constraints(self.predict(models, batch, config), model.exp_kind)
        truth = layout.split(batch["coeffs"])
        true_shape = geometry.shape(model, truth["id"], truth["exp"])
        shape = geometry.shape(model, params["id"], params["exp"])
        mean_face = jnp.broadcast_to(jnp.asarray(model.mean_shape), true_shape.shape)
        renderer = self.renderer(config)
        start = jax.tree.map(jnp.zeros_like, params)  # the mean face at the default pose

        def landmark_error(coeffs: dict) -> jax.Array:
            landmarks = project_landmarks(model, coeffs, renderer.camera, renderer.jaw)
            return jnp.mean(point_errors(landmarks, batch["clean_landmarks"]), axis=-1)

        total, terms = self.objective(params, frozen, batch, config)
        return {
            "vertex_error_mm": jnp.mean(point_errors(shape, true_shape), axis=-1),
            "mean_face_vertex_error_mm": jnp.mean(point_errors(mean_face, true_shape), axis=-1),
            "landmark_error_px": landmark_error(params),
            "mean_face_landmark_error_px": landmark_error(start),
            "loss": total,
            **terms,
        }

    def images(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        model = frozen["morphable"].model()
        params = project_constraints(self.predict(models, batch, config), model.exp_kind)
        rendered = self.renderer(config)(model, params, batch["image"])
        return {"input": batch["image"], "render": jnp.clip(rendered.image, 0.0, 1.0)}


def _load_deoccluder(root: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The jitted I_fina of :meth:`RegressorTask.deoccluder` from the generators trained into
    ``root/contour`` and ``root/synthesis``; a missing stage is one line."""
    from occface_jax.train.tasks.contour import ContourTask
    from occface_jax.train.tasks.synthesis import SynthesisTask

    if not root.is_dir():
        raise OccfaceError(f"data.deoccluder {root}: no such folder")
    generators, configs = [], []
    for task in (ContourTask, SynthesisTask):
        if not (root / task.name / "config.json").is_file():
            raise OccfaceError(
                f"data.deoccluder {root}: no trained {task.name}/ (a training workdir holding "
                "contour/ and synthesis/)"
            )
        spec = {"generator": task.models["generator"]}
        models, stage_config, _ = ckpt.load_models(
            root / task.name, task.name, spec, ("generator",)
        )
        generators.append(nnx.split(models["generator"]))
        configs.append(stage_config)
    contour_size, synthesis_size = (int(c.generator.input_size) for c in configs)
    dilation = hole_dilation(configs[1])
    (contour_graph, contour_state), (synthesis_graph, synthesis_state) = generators

    @functools.partial(jax.jit, static_argnums=4)
    def run(contour_state, synthesis_state, crops, occluders, sizes):
        return deocclude_with_generators(
            nnx.merge(contour_graph, contour_state),
            nnx.merge(synthesis_graph, synthesis_state),
            crops,
            occluders,
            sizes,
        )

    def complete(crops: np.ndarray, occluders: np.ndarray) -> np.ndarray:
        sizes = (contour_size, synthesis_size, dilation_radius(dilation, crops.shape[1]))
        out = run(contour_state, synthesis_state, jnp.asarray(crops), jnp.asarray(occluders), sizes)
        return np.asarray(out, np.float32)

    return complete


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
