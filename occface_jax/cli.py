"""The ``occface`` command line: one entry point, one subcommand per job.

Exit codes: 0 success, 1 the job failed, 2 usage error (bad arguments; for ``reconstruct`` also an
input path that does not exist, a folder without images or an unusable ``--out``), 130 / 143
stopped by SIGINT / SIGTERM (``reconstruct`` writes the summary of what finished). Errors print as
one line on stderr;
``--debug`` (before or after the subcommand) shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from occface_jax import __version__
from occface_jax.errors import OccfaceError

# Subcommands import their rooms inside the function: `occface --help` and argument errors stay
# instant instead of importing JAX (~3 s) first.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT (143: SIGTERM)


class UsageError(OccfaceError):
    """Arguments that name nothing to work on: exit status 2, one line."""


_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy", "dlib-bin")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    """Versions, the devices JAX sees, and the morphable model that would be used."""
    import jax

    from occface_jax.morphable import find_model, load_model_file
    from occface_jax.paths import cache_dir, shared_dir

    print(f"occface_jax {__version__} (Python {platform.python_version()})")
    print("packages: " + ", ".join(f"{p} {_version(p)}" for p in _PACKAGES))
    devices = jax.devices()
    print(
        f"JAX backend: {jax.default_backend()}, {len(devices)} device(s): "
        + ", ".join(str(d) for d in devices)
    )
    print(f"shared data: {shared_dir() or 'not found'}; cache: {cache_dir(create=False)}")
    try:
        path = find_model(args.model)
    except OccfaceError as err:
        if args.model:  # an explicit path that is not there fails the job
            raise
        print(f"morphable model: none ({err})")
        return EXIT_OK
    model = load_model_file(path)
    print(f"morphable model: {path}")
    print(f"  {model.summary()}")
    if model.albedo_kind == "fallback":
        print("  albedo: fallback (no statistical albedo in this model; see README)")
    return EXIT_OK


def cmd_fetch_model(args: argparse.Namespace) -> int:
    """Download (or convert a local copy of) ICT-FaceKit into the user cache."""
    from occface_jax.morphable import fetch, load_model_file
    from occface_jax.paths import cache_dir

    out = Path(args.out) if args.out else cache_dir() / "models" / "ict_face_default.npz"
    if args.from_dir:
        path = fetch.convert_to_default(Path(args.from_dir), out, progress=not args.quiet)
    else:
        path = fetch.fetch_default_model(
            base_url=args.base_url,
            tree_url=args.tree_url,
            out_path=out,
            keep_sources=args.keep_sources,
            progress=not args.quiet,
        )
    print(f"wrote {path}")
    print(f"  {load_model_file(path).summary()}")
    return EXIT_OK


def _parse_overrides(pairs: Sequence[str], config, source: str = "configs/fit.py") -> None:
    """``occface_jax.config.apply_overrides`` with the arguments in the older order."""
    from occface_jax.config import apply_overrides

    apply_overrides(config, pairs, source)


def _fit_config(args: argparse.Namespace):
    """configs/fit.py (``--config-variant``) with ``--fit-steps`` and the typed ``--set`` applied."""
    from occface_jax.config import apply_overrides, load_config

    config = load_config("fit", args.config_variant)
    if args.fit_steps is not None:
        apply_overrides(config, [f"steps={args.fit_steps}"], "configs/fit.py")
        if args.fit_steps == 0:  # no fitting at all: the mean face, or a regressor's prediction
            apply_overrides(config, ["landmark_steps=0"], "configs/fit.py")
    apply_overrides(config, args.set or [], "configs/fit.py")
    return config


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct every input photo into OUT/NAME/; a bad input is reported and skipped; a rerun
    skips what is done; SIGINT / SIGTERM stop it (exit 130 / 143) with a summary."""
    from occface_jax.app import reconstruct

    shard = reconstruct.parse_shard(args.shard)  # a usage error before the config and JAX
    return reconstruct.run(
        inputs=args.inputs,
        out_dir=Path(args.out),
        model_path=args.model,
        config=_fit_config(args),
        all_faces=args.all_faces,
        checkpoints=args.checkpoints,
        progress=not args.quiet,
        debug=args.debug,
        overwrite=args.overwrite,
        shard=shard,
        batch_size=args.batch_size,
    )


def cmd_summarize(args: argparse.Namespace) -> int:
    """Merge the summaries of ``occface reconstruct --shard K/N`` runs into one."""
    from occface_jax.app import reconstruct

    return reconstruct.summarize(args.dirs, Path(args.out) if args.out else None)


def cmd_demo(args: argparse.Namespace) -> int:
    """The public-domain astronaut portrait with an occluder pasted over it, reconstructed."""
    from occface_jax.app import reconstruct

    return reconstruct.demo(
        Path(args.out),
        model_path=args.model,
        config=_fit_config(args),
        checkpoints=args.checkpoints,
        progress=not args.quiet,
        debug=args.debug,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train one stage's network from ``configs/<stage>.py``; resumes from WORKDIR's checkpoints.
    Multi-host: every process runs the same command with its ``--process-id`` (or the environment
    variables JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)."""
    from occface_jax.train.distributed import init_distributed

    init_distributed(args.coordinator, args.num_processes, args.process_id)  # before anything else

    from occface_jax.config import load_config
    from occface_jax.train import run_stage

    config = load_config(args.stage, args.config_variant)
    _parse_overrides(args.set or [], config, f"configs/{args.stage}.py")
    for folder in (Path(args.workdir), Path(args.workdir) / args.stage):
        if folder.exists() and not folder.is_dir():
            raise OccfaceError(f"--workdir: {folder} is a file, not a folder; name a folder")
    workdir = Path(args.workdir) / args.stage
    result = run_stage(args.stage, config, workdir, progress=not args.quiet)
    import jax

    if jax.process_index() == 0:
        print(f"trained {args.stage} to step {result.step} in {workdir}")
        if result.evaluation:
            print(
                "  evaluation: " + ", ".join(f"{k} {v:.4g}" for k, v in result.evaluation.items())
            )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Trained stages of WORKDIR to OUT/<stage>/ (jax.export StableHLO + npz weights + manifest)."""
    from occface_jax.app.export import export_stages

    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    folders = export_stages(
        args.workdir,
        args.out,
        stages,
        platforms,
        frontend=not args.no_frontend,
        frontend_size=args.frontend_size,
    )
    for stage, folder in folders.items():
        print(f"exported {stage} to {folder}")
    print(f"  load with jax and numpy only: {Path(args.out) / 'loader.py'}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """One published protocol on a dataset: OUT/results.json, OUT/results.md (resumes)."""
    from occface_jax.eval.protocols import PROTOCOLS
    from occface_jax.eval.protocols.runner import LazyPredictor, evaluate, make_predictor

    protocol = PROTOCOLS[args.protocol]
    options = {}
    for pair in args.option or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    if args.checkpoints is not None and not Path(args.checkpoints).is_dir():
        raise UsageError(f"--checkpoints {args.checkpoints}: no such folder")
    method = f"checkpoints {args.checkpoints}" if args.checkpoints else "fit"
    overrides = ", " + " ".join(args.set) if args.set else ""
    method += f" ({args.config_variant or 'default'} fit config{overrides})"
    config = _fit_config(args)
    given = {pair.partition("=")[0].strip() for pair in args.set or []}
    wanted = protocol.fit_overrides(**options)
    needed = [pair for pair in wanted if pair.partition("=")[0] not in given]
    _parse_overrides(needed, config, "the protocol's fit settings")
    predictor = LazyPredictor(lambda: make_predictor(config, args.checkpoints, args.model))
    if protocol.network is not None:  # scores one trained network, not the reconstruction
        if args.checkpoints is None:
            raise UsageError(f"{protocol.name} scores a trained network: give --checkpoints DIR")
        method = f"checkpoints {args.checkpoints}"
        predictor = LazyPredictor(lambda: protocol.network(args.checkpoints))
    results = evaluate(
        protocol, args.data, args.out, predictor, method, options, args.limit, not args.quiet
    )
    print(f"{results['samples'] - results['failed']} of {results['samples']} samples scored")
    print(f"  {Path(args.out) / 'results.md'}")
    return EXIT_OK


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    from occface_jax.eval.protocols import PROTOCOLS

    p.add_argument("protocol", choices=list(PROTOCOLS), help="which published protocol")
    p.add_argument("--data", required=True, help="dataset root in the protocol's published layout")
    p.add_argument("--out", required=True, help="results folder (an interrupted run resumes)")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--checkpoints",
        help="trained networks: a training --workdir or an `occface export` folder",
    )
    how.add_argument("--fit", action="store_true", help="the fit alone, no networks (default)")
    p.add_argument("--model", help="morphable model path (default: the resolution order)")
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="protocol option, e.g. micc frame_step=25, now split=test (repeatable)",
    )
    p.add_argument("--limit", type=int, help="score only the first N samples")
    _add_fit_tuning(p)


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workdir", default="runs", help="the --workdir of `occface train` (default: ./runs)"
    )
    p.add_argument("--out", required=True, help="export folder (one sub-folder per stage)")
    p.add_argument(
        "--stages", help="comma-separated stages (default: every trained one), e.g. mask"
    )
    p.add_argument(
        "--platforms", default="cpu,cuda", help="jax.export platforms (default: cpu,cuda)"
    )
    p.add_argument(
        "--frontend-size",
        type=int,
        default=224,
        help="crop side of the exported front end (OUT/frontend/, written when two or more of "
        "the stages chain: mask, de-occlusion, regressor; default: 224, the pipeline's crop)",
    )
    p.add_argument(
        "--no-frontend", action="store_true", help="export the stages only, not the front end"
    )


def _add_train(p: argparse.ArgumentParser) -> None:
    from occface_jax.train import STAGES

    p.add_argument("stage", choices=STAGES, help="which network (configs/<stage>.py)")
    p.add_argument(
        "--workdir",
        default="runs",
        help="checkpoints go to WORKDIR/<stage>/ (default: ./runs); an existing run resumes",
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-host: process 0's address (default: $JAX_COORDINATOR_ADDRESS; none: one process)",
    )
    p.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        help="multi-host: processes in all ($JAX_NUM_PROCESSES)",
    )
    p.add_argument(
        "--process-id",
        type=int,
        metavar="I",
        help="multi-host: this process, 0..N-1 ($JAX_PROCESS_ID)",
    )
    _add_config_options(p, "config variant, e.g. 'smoke'", "train.steps=500")


def _add_config_options(p: argparse.ArgumentParser, variant_help: str, example: str) -> None:
    """--config-variant, --set KEY=VALUE (repeatable) and --quiet."""
    p.add_argument("--config-variant", default="", help=variant_help)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_fit_tuning(p: argparse.ArgumentParser) -> None:
    """``--fit-steps`` and the fit config's ``--config-variant`` / ``--set``."""
    p.add_argument(
        "--fit-steps",
        type=int,
        help="photometric fitting steps (configs/fit.py: steps); 0: no fit at all (the "
        "regressor's prediction with --checkpoints)",
    )
    _add_config_options(p, "configs/fit.py variant, e.g. 'fast'", "robust_ratio=3.0")


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="morphable model path (default: the resolution order)")
    p.add_argument(
        "--checkpoints",
        help="folder of trained networks: the --workdir of `occface train` (mask/, ...) "
        "or the --out of `occface export`",
    )
    _add_fit_tuning(p)


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per image)")
    p.add_argument("--all-faces", action="store_true", help="every detected face, not the largest")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo photos whose result is already in OUT (default: skip them)",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="reconstruct only shard K of N (1 <= K <= N) of the inputs; merge with `summarize`",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        metavar="N",
        help="fit N faces at once, of one photo or several (split over the devices; default 1)",
    )
    _add_fit_options(p)


def _add_summarize(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dirs", nargs="+", metavar="DIR", help="output folders (or summary files) of the shards"
    )
    p.add_argument("--out", help="merged summary file (default: the first DIR's summary.json)")


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="occface_demo", help="output folder (default: ./occface_demo)")
    _add_fit_options(p)


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="morphable model path (default: the resolution order)")


def _add_fetch_model(p: argparse.ArgumentParser) -> None:
    from occface_jax.morphable import fetch

    p.add_argument("--from-dir", help="convert a local ICT-FaceKit FaceXModel folder, no download")
    p.add_argument("--out", help="output npz (default: <cache>/models/ict_face_default.npz)")
    p.add_argument("--keep-sources", action="store_true", help="keep the downloaded OBJ files")
    p.add_argument("--base-url", default=fetch.RAW_URL, help=argparse.SUPPRESS)
    p.add_argument("--tree-url", default=fetch.TREE_URL, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


#: name -> (help, argument adder, runner). Later stages add their subcommands here.
COMMANDS: dict[str, tuple[str, Callable, Callable[[argparse.Namespace], int]]] = {
    "info": ("versions, JAX devices and the morphable model found", _add_info, cmd_info),
    "fetch-model": (
        "download and convert the default morphable model",
        _add_fetch_model,
        cmd_fetch_model,
    ),
    "reconstruct": ("photos in, textured 3D faces out", _add_reconstruct, cmd_reconstruct),
    "summarize": (
        "merge the summaries of `reconstruct --shard` runs",
        _add_summarize,
        cmd_summarize,
    ),
    "demo": ("reconstruct an occluded public-domain portrait", _add_demo, cmd_demo),
    "train": ("train a network of the system (checkpoints resume)", _add_train, cmd_train),
    "export": (
        "trained networks to StableHLO + weights for use elsewhere",
        _add_export,
        cmd_export,
    ),
    "evaluate": ("a published benchmark protocol on a dataset", _add_evaluate, cmd_evaluate),
}


def _add_debug(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--debug", action="store_true", default=default, help="full tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """``occface`` and its subcommands (:data:`COMMANDS`); ``--debug`` is accepted by each."""
    parser = argparse.ArgumentParser(
        prog="occface", description="3D face reconstruction from one possibly occluded photo."
    )
    parser.add_argument("--version", action="version", version=f"occface_jax {__version__}")
    _add_debug(parser, False)
    # After the subcommand too; SUPPRESS, so that a subcommand without it keeps the top-level value
    # (argparse copies a subparser's defaults over the main parser's).
    after_command = argparse.ArgumentParser(add_help=False)
    _add_debug(after_command, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[after_command])
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def enable_compilation_cache() -> None:
    """Keep compiled XLA programs (those taking over 1 s to compile, or
    ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``) in ``<cache>/xla``, so later runs, and later
    processes, start fast. Process-wide; never fails."""
    try:
        import jax

        from occface_jax.paths import cache_dir

        jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # else JAX reads it
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except Exception:  # noqa: BLE001 - a cache is an optimisation, never a failure
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("occface: error: a COMMAND is required", file=sys.stderr)
        return EXIT_USAGE
    enable_compilation_cache()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("occface: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # one clear line unless --debug
        if args.debug:
            raise
        message = str(err) if isinstance(err, OccfaceError) else f"{type(err).__name__}: {err}"
        first_line = (message.strip().splitlines() or [repr(err)])[0]
        print(f"occface {args.command}: error: {first_line}", file=sys.stderr)
        # An error may carry its own status (app.reconstruct.InputError: 2, a usage problem).
        return (
            EXIT_USAGE if isinstance(err, UsageError) else getattr(err, "exit_status", EXIT_FAILURE)
        )


if __name__ == "__main__":
    sys.exit(main())
