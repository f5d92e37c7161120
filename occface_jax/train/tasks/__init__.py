"""Training stages: one module per stage, listed in :data:`TASKS` (name -> task class)."""

from occface_jax.train.tasks.mask import MaskTask
from occface_jax.train.tasks.regressor import RegressorTask

TASKS = {"mask": MaskTask, "regressor": RegressorTask}
