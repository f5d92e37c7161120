"""Multi-host start-up: ``jax.distributed.initialize`` from arguments or the usual environment
variables, before anything else touches JAX's backends."""

from __future__ import annotations

import os

import jax

from occface_jax.errors import OccfaceError


def init_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Join a multi-process run when a coordinator is given (argument or ``JAX_COORDINATOR_ADDRESS``,
    with ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``); False (nothing done) otherwise. CPU processes
    talk through gloo collectives."""
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not coordinator:
        return False
    if num_processes is None and "JAX_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAX_PROCESS_ID"])
    if num_processes is None or process_id is None:
        raise OccfaceError(
            f"coordinator {coordinator} given without the process count and this process's id "
            "(--num-processes N --process-id I, or JAX_NUM_PROCESSES / JAX_PROCESS_ID)"
        )
    if not 0 <= process_id < num_processes:
        raise OccfaceError(f"process id {process_id} is not in [0, {num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    return True
