"""Training stages: one module per stage, listed in :data:`TASKS` (name -> task class)."""

from occface_jax.train.tasks.mask import MaskTask

TASKS = {"mask": MaskTask}
