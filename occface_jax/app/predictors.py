"""Trained networks at inference: a checkpoints folder in, predictors the pipeline calls.

A checkpoints folder is the ``--workdir`` of ``occface train``: one sub-folder per stage
(``mask/``, ...), each holding ``config.json`` (the run's config) and ``checkpoints/<step>/``
(orbax, ``occface_jax.io.checkpoints``). :func:`load_stage` rebuilds a stage's models from its config
(builders in ``models/``) and reads the newest weights; every problem (missing folder, no
checkpoint, a config that differs from the one the checkpoint was trained with, weights of another
shape, a truncated or corrupted file) is one clear :class:`~occface_jax.errors.OccfaceError`.
Checkpoints written before the task contract (items ``model``/``optimizer``/``data``) still load.

A checkpoints folder may also be an export folder (``occface export``): its stages are read by
``occface_jax.io.exported`` (no model code) and run through the same predictors. What a stage
exports is its entry of :data:`STAGE_FUNCTIONS`: the inference function of arrays, its weights and
the spec of its inputs and outputs (``app.export`` serialises it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.errors import OccfaceError
from occface_jax.faces import edges
from occface_jax.faces.align import TARGET_SIZE
from occface_jax.fit.deocclusion import deocclude, hole_dilation
from occface_jax.fit.fitter import project_constraints
from occface_jax.io import exported
from occface_jax.io.checkpoints import ModelSpec, load_models
from occface_jax.models.edge_connect import build_edge_generator, complete_contours
from occface_jax.models.pix2pixhd import build_global_generator, composite
from occface_jax.models.resnet import build_resnet
from occface_jax.models.unet import build_unet
from occface_jax.morphable import CoeffLayout, MorphableModel, load_model

#: What inference rebuilds per stage: model name -> (builder in ``models/``, config section). The
#: same specs as the stage's training task (``train/tasks/<stage>.py``), which app/ never imports.
STAGE_MODELS: dict[str, dict[str, ModelSpec]] = {
    "mask": {"unet": (build_unet, "model")},
    "contour": {"generator": (build_edge_generator, "generator")},
    "synthesis": {"generator": (build_global_generator, "generator")},
    "regressor": {"resnet": (build_resnet, "model")},
}
#: The config sections that define a stage's networks (checked against the checkpoint's).
STAGE_ARCHITECTURE: dict[str, tuple[str, ...]] = {
    "mask": ("model",),
    "contour": ("generator",),
    "synthesis": ("generator",),
    "regressor": ("model", "morphable"),
}


def load_stage(
    checkpoints: str | Path, stage: str
) -> tuple[dict[str, nnx.Module], ml_collections.ConfigDict, int]:
    """(models by name, config, step) of ``stage`` trained into ``checkpoints/<stage>/``, the
    models in evaluation mode. The checkpoint's stored config must match ``config.json``'s model
    sections; its files must match their manifest."""
    if stage not in STAGE_MODELS:
        raise OccfaceError(f"no inference for stage {stage!r}; known: {', '.join(STAGE_MODELS)}")
    return load_models(
        Path(checkpoints) / stage, stage, STAGE_MODELS[stage], STAGE_ARCHITECTURE[stage]
    )


def available_stages(checkpoints: str | Path) -> list[str]:
    """The stages of ``STAGE_MODELS`` that ``checkpoints`` holds (a training workdir's
    ``<stage>/config.json`` or an exported ``<stage>/``), in the table's order."""
    root = Path(checkpoints)
    return [
        stage
        for stage in STAGE_MODELS
        if (root / stage / "config.json").is_file() or is_export(root, stage)
    ]


def is_export(checkpoints: str | Path, stage: str) -> bool:
    """Whether ``checkpoints/<stage>`` is an exported stage (``occface export``) rather than a
    training run."""
    return exported.is_export(Path(checkpoints) / stage)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or output of a stage's inference function: ``shape`` with ``"batch"`` for the
    batch dimension, ``units`` in words, ``range`` (low, high) of valid values or None."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    units: str
    range: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True)
class StageFunction:
    """A stage's inference as a pure function of arrays: ``apply(weights, *inputs) -> output``
    (one array or a tuple, as ``outputs``), ``weights`` a flat dict name -> array; ``extra``
    goes into the export manifest as is (e.g. the morphable model's name and digest, the
    ``CoeffLayout``)."""

    apply: Callable[..., Any]
    weights: dict[str, jax.Array]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def flat_weights(model: nnx.Module) -> tuple[dict[str, jax.Array], Callable[[dict], nnx.Module]]:
    """(the model's state as a flat dict of dotted names -> arrays, a function rebuilding the model
    from such a dict; traceable)."""
    graphdef, state = nnx.split(model)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    names = [
        jax.tree_util.keystr(path, simple=True, separator=".").removesuffix(".value")
        for path, _ in leaves
    ]
    weights = dict(zip(names, (leaf for _, leaf in leaves), strict=True))

    def rebuild(flat: dict[str, jax.Array]) -> nnx.Module:
        return nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, [flat[n] for n in names]))

    return weights, rebuild


def crop_spec(size: int) -> TensorSpec:
    """The input every crop network takes: aligned crops at its input size."""
    return TensorSpec(
        "crops",
        ("batch", size, size, 3),
        "float32",
        f"RGB in [0, 1], HWC, an aligned face crop (Deng et al.'s 224 alignment) resized to {size}",
        (0.0, 1.0),
    )


def mask_function(
    models: dict[str, nnx.Module], config: ml_collections.ConfigDict
) -> StageFunction:
    """N_mask: aligned crops at the network's input size -> occluder probabilities."""
    weights, rebuild = flat_weights(models["unet"])
    size = int(config.model.input_size)

    def apply(flat: dict[str, jax.Array], crops: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(rebuild(flat)(crops))

    crops = crop_spec(size)
    probability = TensorSpec(
        "occluder_probability",
        ("batch", size, size),
        "float32",
        "probability that the pixel is an occluder over the face (> 0.5: occluded)",
        (0.0, 1.0),
    )
    return StageFunction(apply, weights, (crops,), (probability,))


def mask_probabilities(
    apply: Callable[..., jax.Array], weights: Any, crops: jax.Array, input_size: int
) -> jax.Array:
    """Occluder probabilities (B, S, S) of aligned crops (B, S, S, 3) through N_mask's ``apply``
    (:func:`mask_function`'s or the exported one): the crops resized to the network's input
    (bilinear, antialiased), the map back to S (bilinear)."""
    b, side = crops.shape[0], crops.shape[1]
    small = jax.image.resize(crops, (b, input_size, input_size, 3), "linear", antialias=True)
    return jax.image.resize(apply(weights, small), (b, side, side), "linear")


def morphable_manifest(model: Any, layout: Any = None) -> dict[str, Any]:
    """What an export manifest records of the morphable model a stage's outputs refer to: name,
    sizes and a SHA-256 over every array field (shape, dtype and bytes, in field order), and the
    ``CoeffLayout``'s blocks when given. For a stage's ``StageFunction.extra["morphable_model"]``."""
    digest = hashlib.sha256()
    for name, value in model.arrays().items():
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    out: dict[str, Any] = {
        "name": str(model.name),
        "sha256": digest.hexdigest(),
        "n_vertices": int(model.n_vertices),
        "n_id": int(model.n_id),
        "n_exp": int(model.n_exp),
        "n_tex": int(model.n_tex),
        "exp_kind": str(model.exp_kind),
    }
    if layout is not None:
        out["coeff_layout"] = {
            "blocks": [[n, int(k)] for n, k in layout.blocks],
            "light": layout.light,
            "pose": layout.pose,
        }
    return out


def regressor_stage_function(
    net: nnx.Module, input_size: int, layout: CoeffLayout, exp_kind: str, extra: dict | None = None
) -> StageFunction:
    """The coefficient regressor: aligned crops at its input size -> flat coefficient vectors in
    ``layout``, inside the fit's bounds (``fit.fitter.project_constraints``)."""
    weights, rebuild = flat_weights(net)

    def apply(flat: dict[str, jax.Array], crops: jax.Array) -> jax.Array:
        coeffs = layout.split(rebuild(flat)(crops))
        return layout.join(project_constraints(coeffs, exp_kind))

    size = int(input_size)
    crops = crop_spec(size)
    blocks = ", ".join(f"{name} {n}" for name, n in layout.blocks)
    coefficients = TensorSpec(
        "coefficients",
        ("batch", layout.size),
        "float32",
        f"morphable-model coefficients, blocks in order ({blocks}); angles in radians, "
        "translation in decimetres of Deng et al.'s camera; see coeff_layout",
    )
    return StageFunction(apply, weights, (crops,), (coefficients,), dict(extra or {}))


def regressor_function(
    models: dict[str, nnx.Module], config: ml_collections.ConfigDict
) -> StageFunction:
    """The regressor stage for export, with the morphable model its config names (the default
    when ``morphable.path`` is empty) in the manifest."""
    section = config.get("morphable", {})
    model = load_model(str(section.get("path", "")) or None)
    if bool(section.get("face_only", True)):
        model = model.face_only()
    layout = CoeffLayout.for_model(model, light=str(section.get("light", "rgb")))
    size = int(config.model.input_size)
    extra = {"morphable_model": morphable_manifest(model, layout)}
    return regressor_stage_function(models["resnet"], size, layout, model.exp_kind, extra)


def hole_spec(size: int) -> TensorSpec:
    return TensorSpec(
        "hole", ("batch", size, size), "float32", "1 = pixel to repaint (the occluder)", (0.0, 1.0)
    )


def complete_contour_spec(size: int) -> TensorSpec:
    """C_fina: the contour stage's output, the synthesis stage's input."""
    units = "C_fina: the input contours outside the hole, N_cont's contour probability inside"
    return TensorSpec("contour_complete", ("batch", size, size), "float32", units, (0.0, 1.0))


def contour_function(
    models: dict[str, nnx.Module], config: ml_collections.ConfigDict
) -> StageFunction:
    """N_cont: (gray crop, its Canny contours, hole) -> C_fina, the contours outside the hole and
    N_cont's contour probabilities inside it."""
    weights, rebuild = flat_weights(models["generator"])
    size = int(config.generator.input_size)

    def apply(flat: dict, gray: jax.Array, contour: jax.Array, hole: jax.Array) -> jax.Array:
        return complete_contours(rebuild(flat), gray, contour, hole)

    gray = TensorSpec(
        "gray", ("batch", size, size), "float32", "BT.601 luma of the aligned crop", (0.0, 1.0)
    )
    edges = TensorSpec(
        "contour",
        ("batch", size, size),
        "float32",
        "Canny edges (sigma 1.8, scikit-image thresholds 0.1 / 0.2) of the gray crop, {0, 1}",
        (0.0, 1.0),
    )
    out = complete_contour_spec(size)
    return StageFunction(apply, weights, (gray, edges, hole_spec(size)), (out,))


def synthesis_function(
    models: dict[str, nnx.Module], config: ml_collections.ConfigDict
) -> StageFunction:
    """N_syn: (crop, C_fina, hole) -> the complete face: the crop outside the hole, the
    synthesised face inside it."""
    weights, rebuild = flat_weights(models["generator"])
    size = int(config.generator.input_size)

    def apply(flat: dict, crops: jax.Array, contour: jax.Array, hole: jax.Array) -> jax.Array:
        return composite(rebuild(flat)(crops, contour, hole), crops, hole)

    edges = complete_contour_spec(size)
    out = TensorSpec(
        "complete_face",
        ("batch", size, size, 3),
        "float32",
        "RGB in [0, 1]: the crop outside the hole, the synthesised face inside",
        (0.0, 1.0),
    )
    return StageFunction(apply, weights, (crop_spec(size), edges, hole_spec(size)), (out,))


#: What a stage exports and how its predictor runs it: stage -> (models, config) -> StageFunction.
STAGE_FUNCTIONS: dict[str, Callable[[dict, ml_collections.ConfigDict], StageFunction]] = {
    "mask": mask_function,
    "contour": contour_function,
    "synthesis": synthesis_function,
    "regressor": regressor_function,
}


#: The exported reconstruction front end's name (``occface export`` writes ``OUT/frontend/``).
FRONTEND = "frontend"


def frontend_members(stages: Iterable[str]) -> list[str]:
    """The stages the front end chains, of ``stages``: ``mask``; ``contour`` and ``synthesis``
    when the mask, contour and synthesis stages are all there (the hole needs N_mask); the
    ``regressor``. In the order they run."""
    have = set(stages)
    members = ["mask"] if "mask" in have else []
    if {"mask", "contour", "synthesis"} <= have:
        members += ["contour", "synthesis"]
    return members + (["regressor"] if "regressor" in have else [])


def stage_input_size(stage: str, config: Any) -> int:
    """The crop side a stage's network takes (its config's ``model`` or ``generator`` section)."""
    section = "generator" if stage in ("contour", "synthesis") else "model"
    return int(config[section]["input_size"])


def frontend_function(
    functions: dict[str, StageFunction], configs: dict[str, Any], size: int = TARGET_SIZE
) -> StageFunction:
    """The whole reconstruction front end as one function of arrays: aligned crops (B, S, S, 3)
    -> the outputs of whichever stages ``functions`` holds (:func:`frontend_members`), chained as
    the predictors chain them: N_mask as :class:`MaskPredictor` (no flip averaging) ->
    :func:`deocclude` as :class:`DeocclusionPredictor` -> the regressor as
    :class:`RegressorPredictor` on the complete face (on the crop without de-occlusion).

    ``functions`` / ``configs``: stage -> its :data:`STAGE_FUNCTIONS` entry / config; ``size``
    S the crop side (the pipeline's 224). Weights: one flat dict, ``<stage>.<name>``. Outputs, in
    this order, those of the members present: ``occluder_probability`` (B, S, S), ``hole``
    (B, S, S), ``contour_complete`` (B, S, S), ``complete_face`` (B, S, S, 3), ``coefficients``
    (B, K). The pipeline re-detects landmarks on the complete face and re-aligns before the
    regressor; this function cannot (no photo), so its coefficients are those of the crop frame."""
    members = [s for s in frontend_members(functions) if s in functions]
    if not members:
        raise OccfaceError("the front end needs at least one of the mask and regressor stages")
    size = int(size)
    weights = {f"{s}.{k}": v for s in members for k, v in functions[s].weights.items()}
    inputs = {s: stage_input_size(s, configs[s]) for s in members}
    radius = 0
    if "synthesis" in members:
        dilation = float(configs["synthesis"].get("inpainting", {}).get("dilation", 0.0))
        radius = edges.dilation_radius(dilation, size)

    def apply(flat: dict[str, jax.Array], crops: jax.Array) -> tuple[jax.Array, ...]:
        w = {
            s: {k[len(s) + 1 :]: v for k, v in flat.items() if k.startswith(s + ".")}
            for s in members
        }
        outputs: list[jax.Array] = []
        image = crops
        if "mask" in members:
            probability = mask_probabilities(
                functions["mask"].apply, w["mask"], crops, inputs["mask"]
            )
            outputs.append(probability)
        if "synthesis" in members:
            image, contour, hole = deocclude(
                functions["contour"].apply,
                w["contour"],
                functions["synthesis"].apply,
                w["synthesis"],
                crops,
                probability,
                (inputs["contour"], inputs["synthesis"], radius),
            )
            outputs += [hole, contour, image]
        if "regressor" in members:
            n = inputs["regressor"]
            small = jax.image.resize(image, (image.shape[0], n, n, 3), "linear", antialias=True)
            outputs.append(functions["regressor"].apply(w["regressor"], small))
        return tuple(outputs)

    specs: list[TensorSpec] = []
    if "mask" in members:
        specs.append(dataclasses.replace(functions["mask"].outputs[0], shape=("batch", size, size)))
    if "synthesis" in members:
        hole = TensorSpec(
            "hole",
            ("batch", size, size),
            "float32",
            f"1 = repainted: occluder probability > 0.5 grown by a disc of {radius} px",
            (0.0, 1.0),
        )
        contour = TensorSpec(
            "contour_complete",
            ("batch", size, size),
            "float32",
            "C_fina resized to the crop (Canny edges outside the hole, N_cont's contour "
            "probability inside); a crop without a hole: the Canny edges of its luma",
            (0.0, 1.0),
        )
        face = dataclasses.replace(
            functions["synthesis"].outputs[0], shape=("batch", size, size, 3)
        )
        specs += [hole, contour, face]
    if "regressor" in members:
        coefficients = functions["regressor"].outputs[0]
        units = coefficients.units + (
            "; predicted from complete_face" if "synthesis" in members else ""
        )
        specs.append(dataclasses.replace(coefficients, units=units))
    extra = dict(functions["regressor"].extra) if "regressor" in members else {}
    return StageFunction(apply, weights, (crop_spec(size),), tuple(specs), extra)


@dataclasses.dataclass(frozen=True)
class AppliedStage:
    """A trained stage ready to run: ``apply(weights, *inputs)``, its config (a dict) and the
    training step of its weights."""

    weights: Any
    apply: Callable[..., Any]
    config: dict[str, Any]
    step: int


def stage_apply(checkpoints: str | Path, stage: str) -> AppliedStage:
    """A trained stage from a training workdir (its :data:`STAGE_FUNCTIONS` entry) or an export
    folder (the exported function: the same computation)."""
    if is_export(checkpoints, stage):
        loaded = exported.load_exported(checkpoints, stage)
        manifest = loaded.manifest
        config = dict(manifest["config"])
        return AppliedStage(loaded.weights, loaded.exported.call, config, int(manifest["step"]))
    models, config, step = load_stage(checkpoints, stage)
    function = STAGE_FUNCTIONS[stage](models, config)
    return AppliedStage(function.weights, function.apply, config.to_dict(), int(step))


class MaskPredictor:
    """N_mask on aligned crops: ``predictor(crop (S, S, 3) in [0, 1]) -> (S, S)`` occluder
    probability. The crop is resized to the network's input size and the map back to S x S. With
    ``flip_average`` the probabilities of the crop and of its mirror image (mirrored back) are
    averaged (the network was trained with random flips); on synthetic fits it made no reliable
    difference (``experiments/results/synthetic_fit.md``), so it is off by default."""

    def __init__(
        self,
        model: nnx.Module | exported.ExportedStage,
        input_size: int,
        flip_average: bool = False,
    ) -> None:
        """``model``: the U-Net, or the exported mask stage (``io.exported``)."""
        self.input_size = int(input_size)
        if isinstance(model, exported.ExportedStage):
            weights, probabilities = model.weights, model.exported.call
        else:
            sizes = ml_collections.ConfigDict({"model": {"input_size": self.input_size}})
            function = mask_function({"unet": model}, sizes)
            weights, probabilities = function.weights, function.apply

        def run(weights: Any, crop: jax.Array) -> jax.Array:
            if flip_average:
                both = mask_probabilities(
                    probabilities, weights, jnp.stack([crop, crop[:, ::-1]]), self.input_size
                )
                return 0.5 * (both[0] + both[1][:, ::-1])
            return mask_probabilities(probabilities, weights, crop[None], self.input_size)[0]

        self._weights = weights
        self._run = jax.jit(run)

    @classmethod
    def from_checkpoints(cls, checkpoints: str | Path, flip_average: bool = False) -> MaskPredictor:
        """From a training workdir or an export folder (``occface export``)."""
        if is_export(checkpoints, "mask"):
            stage = exported.load_exported(checkpoints, "mask")
            return cls(stage, int(stage.manifest["config"]["model"]["input_size"]), flip_average)
        models, config, _ = load_stage(checkpoints, "mask")
        return cls(models["unet"], int(config.model.input_size), flip_average)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3:
            raise ValueError(f"the mask network takes an (S, S, 3) RGB crop, got {crop.shape}")
        return np.asarray(self._run(self._weights, jnp.asarray(crop)))


class RegressorPredictor:
    """The coefficient regressor on aligned crops: ``predictor(crop (S, S, 3) in [0, 1]) ->``
    coefficient blocks (numpy, ``CoeffLayout.split`` keys) of ``model``, in the crop's Deng
    camera (the crop is resized to the network's input; the camera scales with the size, so the
    coefficients hold for any S). The fit's bounds apply (``fit.fitter.project_constraints``:
    blendshape weights in [0, 1], albedo in [-3, 3]). ``model`` must have the layout the network
    was trained for (one clear error otherwise)."""

    def __init__(
        self,
        net: nnx.Module | exported.ExportedStage,
        input_size: int,
        model: MorphableModel,
        light: str = "rgb",
    ) -> None:
        """``net``: the ResNet, or the exported regressor stage (``io.exported``)."""
        self.input_size = int(input_size)
        self.layout = CoeffLayout.for_model(model, light=light)
        if isinstance(net, exported.ExportedStage):
            outputs = int(net.manifest["outputs"][0]["shape"][-1])
            weights, apply = net.weights, net.exported.call
        else:  # the function is only traced on the first call, after the check below
            outputs = int(net.head.kernel.shape[-1])
            function = regressor_stage_function(net, input_size, self.layout, model.exp_kind)
            weights, apply = function.weights, function.apply
        if outputs != self.layout.size:
            raise OccfaceError(
                f"the regressor predicts {outputs} coefficients, the morphable model "
                f"{model.name!r} has {self.layout.size}: trained for another model"
            )

        def run(weights: Any, crop: jax.Array) -> dict[str, jax.Array]:
            size = (self.input_size, self.input_size, 3)
            small = jax.image.resize(crop, size, "linear", antialias=True)
            return self.layout.split(apply(weights, small[None])[0])

        self._state = weights
        self._run = jax.jit(run)

    @classmethod
    def from_checkpoints(cls, checkpoints: str | Path, model: MorphableModel) -> RegressorPredictor:
        """From a training workdir or an export folder (``occface export``)."""
        if is_export(checkpoints, "regressor"):
            stage = exported.load_exported(checkpoints, "regressor")
            config = stage.manifest["config"]
            light = str(config.get("morphable", {}).get("light", "rgb"))
            return cls(stage, int(config["model"]["input_size"]), model, light)
        models, config, _ = load_stage(checkpoints, "regressor")
        light = str(config.get("morphable", {}).get("light", "rgb"))
        return cls(models["resnet"], int(config.model.input_size), model, light)

    def __call__(self, crop: np.ndarray) -> dict[str, np.ndarray]:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3:
            raise ValueError(f"the regressor takes an (S, S, 3) RGB crop, got {crop.shape}")
        return {k: np.asarray(v) for k, v in self._run(self._state, jnp.asarray(crop)).items()}


@dataclasses.dataclass(frozen=True)
class Deoccluded:
    """The de-occlusion of one aligned crop (S x S): ``image`` (S, S, 3) the complete face (the
    crop outside ``hole``), ``contour`` (S, S) C_fina, ``hole`` (S, S) {0, 1} what was repainted
    (the mask network's occluder, dilated)."""

    image: np.ndarray
    contour: np.ndarray
    hole: np.ndarray

    def on_photo(self, photo: np.ndarray, aligned: Any) -> tuple[np.ndarray, ...]:
        """(I_fina: ``photo`` (H, W, 3) with the synthesis inside the hole, the hole (H, W) and
        C_fina (H, W)), the crop-frame arrays warped onto the photo by ``aligned``
        (``faces.align.AlignedFace``; bilinear, so the hole is soft at its edge)."""
        shape = photo.shape[:2]

        def warp(x: np.ndarray) -> np.ndarray:
            return np.asarray(aligned.paste_back(x), np.float32).reshape(shape + x.shape[2:])

        hole = warp(self.hole)
        synthesis = photo * (1.0 - hole[..., None]) + warp(self.image) * hole[..., None]
        return synthesis.astype(np.float32), hole, warp(self.contour)


class DeocclusionPredictor:
    """N_cont then N_syn on an aligned crop and its occluder mask (the paper's §3.2):
    ``predictor(crop (S, S, 3) in [0, 1], occluder (S, S) in [0, 1]) -> Deoccluded``.

    The occluder (> 0.5) is dilated as the training holes were (``inpainting.dilation`` of the
    synthesis stage's config, a fraction of the side); then :func:`deocclude`: N_cont at its
    input size on the gray crop and its Canny contours (``faces.edges.canny``, the JAX twin of
    the training data's ``data.contour.canny_contour``), N_syn at its own on the crop and C_fina;
    the synthesis is resized to S and replaces the crop inside the hole only. The exported front
    end (:func:`frontend_function`) runs the same function."""

    def __init__(self, contour: AppliedStage, synthesis: AppliedStage) -> None:
        """``contour``, ``synthesis``: the two trained stages (:func:`stage_apply`)."""
        self.stages = {"contour": contour, "synthesis": synthesis}
        self.contour_size = int(contour.config["generator"]["input_size"])
        self.synthesis_size = int(synthesis.config["generator"]["input_size"])
        self.dilation = hole_dilation(synthesis.config)
        self._deocclude = jax.jit(
            functools.partial(deocclude, contour.apply), static_argnums=(1, 5)
        )
        self._c_fina = jax.jit(
            lambda w, gray, hole: contour.apply(w, gray, edges.canny(gray), hole)
        )
        self._canny = jax.jit(edges.canny_rgb)

    @classmethod
    def from_checkpoints(cls, checkpoints: str | Path) -> DeocclusionPredictor:
        """From a training workdir or an export folder holding ``contour/`` and ``synthesis/``."""
        return cls(stage_apply(checkpoints, "contour"), stage_apply(checkpoints, "synthesis"))

    def radius(self, side: int) -> int:
        """The hole's dilation in whole pixels for crops of ``side`` px."""
        return edges.dilation_radius(self.dilation, side)

    def hole(self, occluder: np.ndarray) -> np.ndarray:
        """The hole (S, S) float32 {0, 1}: occluder > 0.5 grown as the training holes were (a
        disc of ``dilation`` x S pixels, ``data.inpainting.dilate``'s)."""
        occluder = jnp.asarray(occluder, jnp.float32)
        return np.asarray(edges.dilate_disk(occluder, self.radius(max(occluder.shape))))

    def __call__(self, crop: np.ndarray, occluder: np.ndarray) -> Deoccluded:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3 or np.shape(occluder) != crop.shape[:2]:
            raise ValueError(
                f"de-occlusion takes an (S, S, 3) crop and an (S, S) mask, got {crop.shape} "
                f"and {np.shape(occluder)}"
            )
        hole = self.hole(occluder)
        if not hole.any():  # nothing to repaint: the networks need not run
            return Deoccluded(crop, np.asarray(self._canny(crop)), hole)
        sizes = (self.contour_size, self.synthesis_size, self.radius(crop.shape[0]))
        image, contour, hole = self._deocclude(
            self.stages["contour"].weights,
            self.stages["synthesis"].apply,
            self.stages["synthesis"].weights,
            jnp.asarray(crop)[None],
            jnp.asarray(occluder, jnp.float32)[None],
            sizes,
        )
        return Deoccluded(np.asarray(image[0]), np.asarray(contour[0]), np.asarray(hole[0]))

    def complete_contours(self, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """C_fina (C, C) at N_cont's input size C of a crop (S, S, 3) and its (grown) hole (S, S):
        the Canny contours of the gray crop resized to C outside the hole, N_cont's contour
        probabilities inside (as :func:`deocclude` computes it)."""
        size = self.contour_size
        gray = edges.luma(edges.resize_square(jnp.asarray(crop, jnp.float32), size, True))
        small_hole = edges.resize_hole(jnp.asarray(hole, jnp.float32), size)
        contour = self._c_fina(self.stages["contour"].weights, gray[None], small_hole[None])
        return np.asarray(contour)[0]


def resize_square(x: np.ndarray, size: int) -> np.ndarray:
    """An (S, S[, C]) array at (size, size[, C]): by area when shrinking, bilinear when growing
    (host numpy, OpenCV; ``faces.edges.resize_square`` is its JAX twin)."""
    x = np.asarray(x, np.float32)
    if x.shape[0] == size:
        return x
    interpolation = cv2.INTER_AREA if x.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(x, (size, size), interpolation=interpolation)


def resize_hole(hole: np.ndarray, size: int) -> np.ndarray:
    """A hole at another size; any covered pixel stays in the hole."""
    return (resize_square(hole, size) > 0.0).astype(np.float32)


@dataclasses.dataclass
class Networks:
    """The trained networks a checkpoints folder gives the pipeline (None: not trained)."""

    mask_predictor: MaskPredictor | None = None
    regressor: RegressorPredictor | None = None
    deoccluder: DeocclusionPredictor | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Reconstructor`` (``mask_predictor``, ...)."""
        return dict(vars(self))


def networks_from_checkpoints(checkpoints: str | Path | None, model: MorphableModel) -> Networks:
    """Every stage ``checkpoints`` holds (training workdir or export folder), as the predictors
    ``app.pipeline.Reconstructor`` takes; ``model`` is the full morphable model (the regressor is
    checked against its face region's layout). De-occlusion needs the contour and the synthesis
    stage, and the mask stage to find the hole: without one of them it is left out (warning)."""
    if checkpoints is None:
        return Networks()
    stages = available_stages(checkpoints)
    if not stages:
        raise OccfaceError(
            f"checkpoints {checkpoints}: no trained stage in it "
            f"(expected {', '.join(f'{s}/' for s in STAGE_MODELS)})"
        )
    networks = Networks()
    if "mask" in stages:
        networks.mask_predictor = MaskPredictor.from_checkpoints(checkpoints)
    if "regressor" in stages:
        networks.regressor = RegressorPredictor.from_checkpoints(checkpoints, model.face_only())
    gan = [s for s in ("contour", "synthesis") if s in stages]
    if gan:
        missing = [s for s in ("mask", "contour", "synthesis") if s not in stages]
        if missing:
            warnings.warn(
                f"--checkpoints {checkpoints}: de-occlusion needs the mask, contour and synthesis "
                f"stages; {', '.join(missing)} missing, so it is left out",
                stacklevel=2,
            )
        else:
            networks.deoccluder = DeocclusionPredictor.from_checkpoints(checkpoints)
    return networks
