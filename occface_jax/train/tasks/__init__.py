"""Training stages: one module per stage, listed in :data:`TASKS` (name -> task class)."""

from occface_jax.train.tasks.contour import ContourTask
from occface_jax.train.tasks.face_mesh import FaceMeshTask
from occface_jax.train.tasks.mask import MaskTask
from occface_jax.train.tasks.regressor import RegressorTask
from occface_jax.train.tasks.synthesis import SynthesisTask

TASKS = {
    "mask": MaskTask,
    "contour": ContourTask,
    "synthesis": SynthesisTask,
    "regressor": RegressorTask,
    "face_mesh": FaceMeshTask,
}
