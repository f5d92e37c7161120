"""Two CPU processes (``jax.distributed`` over loopback, gloo collectives) train the GAN to the same
losses, evaluation and weights as one process; only process 0 writes the logs; the evaluation set's
remainder is not dropped."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from flax import nnx
from gan_task import HERE, GanTask, Points, gan_config, subprocess_env

from occface_jax.train import restore_models, train

PROCESS = textwrap.dedent(
    """
    import json, sys
    from occface_jax.train.distributed import init_distributed
    workdir, here, port, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    assert init_distributed(f"127.0.0.1:{port}", 2, pid)
    import jax
    sys.path.insert(0, here)
    from test_multihost import config
    from gan_task import GanTask, Points
    from occface_jax.train import train
    assert jax.process_count() == 2 and jax.device_count() == 2
    r = train(GanTask(), config(), workdir + "/run", Points(), Points(13), progress=False)
    with open(f"{workdir}/result{pid}.json", "w") as f:
        json.dump({"metrics": r.metrics, "evaluation": r.evaluation}, f)
    """
)


def config():
    c = gan_config(steps=6, batch_size=8)
    c.train.update(log_every=2, eval_every=3, eval_batch_size=4)
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
    script = tmp_path / "process.py"
    script.write_text(PROCESS)
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), HERE, port, str(i)],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    one = train(GanTask(), config(), tmp_path / "one", Points(), Points(13), progress=False)
    for pid in range(2):
        two = json.loads((tmp_path / f"result{pid}.json").read_text())
        for k, v in one.metrics.items():
            if k != "examples_per_second":
                np.testing.assert_allclose(two["metrics"][k], v, rtol=1e-5, atol=1e-6, err_msg=k)
        for k, v in one.evaluation.items():
            np.testing.assert_allclose(two["evaluation"][k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    models_two, _ = restore_models(GanTask(), config(), tmp_path / "run")
    models_one, _ = restore_models(GanTask(), config(), tmp_path / "one")
    for a, b in zip(
        jax.tree.leaves(nnx.state(models_one, nnx.Param)),
        jax.tree.leaves(nnx.state(models_two, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    # every one of the 13 evaluation records counted once: the mean of D over all of them
    x = np.stack([Points(13)[i]["x"] for i in range(13)])
    d_real = jax.nn.sigmoid(models_two["discriminator"](x))
    np.testing.assert_allclose(two["evaluation"]["d_real"], float(np.mean(d_real)), rtol=1e-5)
    # logs written once (by process 0): steps 2, 4, 6 and evaluations at 3, 6
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["step"], "eval" in x) for x in lines] == [
        (2, False),
        (3, True),
        (4, False),
        (6, False),
        (6, True),
    ]
    assert len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 1


def test_init_distributed_arguments(monkeypatch):
    from occface_jax.cli import build_parser
    from occface_jax.errors import OccfaceError
    from occface_jax.train.distributed import init_distributed

    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed() is False  # no coordinator: one process, nothing done
    with pytest.raises(OccfaceError, match="without the process count"):
        init_distributed("127.0.0.1:1234")
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(OccfaceError, match=r"process id 2 is not in \[0, 2\)"):
        init_distributed()
    args = build_parser().parse_args(
        [
            "train",
            "mask",
            "--coordinator",
            "10.0.0.1:1234",
            "--num-processes",
            "2",
            "--process-id",
            "1",
        ]
    )
    assert (args.coordinator, args.num_processes, args.process_id) == ("10.0.0.1:1234", 2, 1)
