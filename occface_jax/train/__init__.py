"""Training: one loop for every stage (``loop``), the contract a stage fills in (``task``) and one
task per stage (``tasks/``: ``mask``, ...)."""

from occface_jax.train.loop import TrainResult, make_mesh, restore_models, train
from occface_jax.train.task import Optimizer, Phase, Task, optimizer_from_config
from occface_jax.train.tasks import TASKS

STAGES = tuple(TASKS)


def get_task(stage: str):
    """The :class:`~occface_jax.train.loop.Task` of a stage name."""
    if stage not in TASKS:
        raise ValueError(f"unknown training stage {stage!r}; known: {', '.join(STAGES)}")
    return TASKS[stage]()


def run_stage(stage: str, config, workdir, *, stop_at: int | None = None, progress: bool = True):
    """Train ``stage`` from its config in ``workdir``, on the task's sources (``Task.sources``: by
    default ``config.data``'s, the last ``config.data.validation_size`` records held out for
    evaluation)."""
    task = get_task(stage)
    train_source, eval_source = task.sources(config)
    return train(
        task,
        config,
        workdir,
        train_source,
        eval_source,
        stop_at=stop_at,
        progress=progress,
    )


__all__ = [
    "STAGES",
    "TASKS",
    "Optimizer",
    "Phase",
    "Task",
    "TrainResult",
    "get_task",
    "make_mesh",
    "optimizer_from_config",
    "restore_models",
    "run_stage",
    "train",
]
