"""The ``causal`` command. Start-up imports nothing heavy: Hydra only for ``run``, DoWhy only in a job."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from causal_cli import __version__

USAGE = """\
usage: causal COMMAND [ARGS]

Declarative causal inference: model (graph), identify (DoWhy), estimate, refute, report.

commands:
  run [OVERRIDES]     compose the config from conf/ groups and overrides, run the study, write a
                      timestamped folder under outputs/ (Hydra syntax: estimator=psm dgp.n=5000,
                      -m for sweeps, --cfg job to print the config, --help for Hydra's help)
  list [GROUP]        the options of each config group (graph, dgp, data, estimator, refuters,
                      experiment) and the sweep launchers (launcher)
                      and the checked-in experiments
  show GROUP/NAME     print one config file, e.g. causal show estimator/psm
  summarize SWEEP_DIR the scorecard of a sweep folder (causal run -m): summary.csv, summary.png and a
                      table of bias, RMSE, CI coverage ... per estimator and swept setting
  report RUN_DIR...   redraw the pictures and report.html of finished run folders from their saved files
  reproduce RUN_DIR   re-run a finished run from its saved config.yaml into a new folder and check that
                      every number matches (refused if its data file changed; --out NEW_DIR)

options:
  --version           print the version
  --debug             (with run) full tracebacks instead of one-line errors
  -h, --help          this help

examples:
  causal run                                        # the default product-uplift study
  causal run estimator=psm dgp.confounding=strong
  causal run -m estimator=naive,psm                 # one job per estimator
  causal run 'refuters=[placebo,random_common_cause]' refuters.placebo.num_simulations=50
  causal run experiment=product_uplift
"""

GROUPS = ("graph", "dgp", "data", "estimator", "refuters", "experiment")
#: Hydra launchers for ``causal run -m hydra/launcher=NAME``: (name, plugin module or None, description)
LAUNCHERS = (
    ("basic", None, "the default: jobs one after another in this process"),
    (
        "joblib",
        "hydra_plugins.hydra_joblib_launcher",
        "jobs in parallel local processes (hydra.launcher.n_jobs=4)",
    ),
    (
        "submitit_local",
        "hydra_plugins.hydra_submitit_launcher",
        "each job its own local process, submitit-style",
    ),
    (
        "submitit_slurm",
        "hydra_plugins.hydra_submitit_launcher",
        "jobs on a SLURM cluster (hydra.launcher.partition=...)",
    ),
    ("ray", "hydra_plugins.hydra_ray_launcher", "jobs on a private Ray instance on this machine"),
    (
        "ray_cluster",
        "hydra_plugins.hydra_ray_launcher",
        "jobs on a running Ray cluster (hydra.launcher.ray.init.address=HOST:6379)",
    ),
)


def main(argv: list[str] | None = None) -> int:
    """``causal ARGS``: Ctrl-C (SIGINT) and SIGTERM at any moment end in one line and exit 130 / 143."""
    try:
        with signals_interrupt():
            return _main(argv)
    except KeyboardInterrupt as exc:
        return interrupted_exit(exc)


def _main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] == "--version":
        print(f"causal-cli {__version__}")
        return 0
    command, rest = args[0], args[1:]
    handlers = {
        "run": cmd_run,
        "list": cmd_list,
        "show": cmd_show,
        "report": cmd_report,
        "reproduce": cmd_reproduce,
        "summarize": cmd_summarize,
    }
    if command not in handlers:
        _error(f"unknown command '{command}'; allowed: {', '.join(handlers)} (see causal --help)")
        return 2
    if command == "run" and argv is None:
        # this process's own command line: a helper imports DoWhy on the other core meanwhile
        from causal_cli import prefetch

        prefetch.start(rest)
    code = handlers[command](rest)
    if argv is None:
        # the process ends now: spare its exit a garbage collection over all it imported (0.1-0.7 s)
        import gc

        gc.freeze()
    return code


def _error(message: str) -> None:
    print(f"causal: {message}", file=sys.stderr)


def cmd_run(args: list[str]) -> int:
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if debug:
        os.environ["CAUSAL_DEBUG"] = "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    problem = _check_run_args(args)
    if problem:
        _error(problem)
        return 2
    from causal_cli import app, sweep

    app.JOB_STATUSES.clear()
    app.STOP_REQUESTED.clear()
    app.CLAIMED.clear()
    sweep.LAST_SWEEP_DIR = None
    saved_argv = sys.argv
    sys.argv = ["causal", *args]
    try:
        with signals_interrupt():
            app.hydra_entry()()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt as exc:
        app.mark_interrupted(int(getattr(exc, "signum", 2)))  # folders claimed before their job began
        return interrupted_exit(exc)
    except Exception as exc:  # noqa: BLE001 - rendered as one line
        if debug:
            raise
        _error(hydra_error_line(exc))
        from causal_cli.errors import EXIT_FAILED, EXIT_REFUSED

        return EXIT_FAILED if getattr(exc, "run_dir", None) is not None else EXIT_REFUSED
    finally:
        sys.argv = saved_argv
    failed, jobs = app.JOB_STATUSES.count("failed"), len(app.JOB_STATUSES)
    if (
        sweep.LAST_SWEEP_DIR is not None
    ):  # a multirun: its jobs may have run in other processes (joblib, ray, ...)
        swept, swept_failed = sweep.job_outcomes(sweep.LAST_SWEEP_DIR)
        jobs, failed = max(jobs, swept), max(failed, swept_failed)
    if failed and jobs > 1:
        _error(f"{failed} of {jobs} jobs failed (see status in each results.json)")
    return 1 if failed else 0


class CommandInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM outside a job (composing the config, starting, ending): exit 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def signals_interrupt():
    """SIGINT and SIGTERM raise :class:`CommandInterrupted` (a job installs its own, finer handlers)."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def installed():
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum, frame):
            raise CommandInterrupted(signum)

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    return installed()


def interrupted_exit(exc: BaseException) -> int:
    """One line (unless the job already printed it) and the exit status 128 + signal number."""
    import signal

    signum = int(getattr(exc, "signum", signal.SIGINT))
    if not getattr(exc, "reported", False):
        _error(f"interrupted: stopped by {signal.Signals(signum).name} before a run folder was complete")
    return 128 + signum


def _check_run_args(args: list[str]) -> str | None:
    """Problems Hydra would report as a multi-line usage text, or find only after touching a folder."""
    import contextlib
    import io

    from hydra._internal.utils import get_args_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parsed = get_args_parser().parse_args(args)
    except SystemExit as exc:
        if not exc.code:
            return None  # --version, --help: Hydra prints them
        lines = [ln for ln in stderr.getvalue().splitlines() if ln.strip()]
        detail = lines[-1].split("error:", 1)[-1].strip() if lines else "invalid arguments"
        return f"{detail} (see causal run --help)"
    for override in parsed.overrides:
        if re.search(r"://[^/\s@:]*:[^/\s@]+@", override):  # user:password@ would be saved in .hydra/
            return (
                "config error: an override holds a URL with a password; remove it and name the environment "
                "variable that holds it with data.password_env=NAME (nothing was run or saved)"
            )
    subdir = _unsafe_output_subdir(parsed.overrides) or _oversized_override(parsed.overrides)
    if subdir:
        return subdir
    dashed = next((a for a in args if a.startswith("--exp")), None)
    if dashed and not dashed.startswith("--experimental-rerun"):  # argparse took it for an abbreviation
        return f"'{dashed}' is not an option; pick an experiment with experiment=NAME (no dashes)"
    if parsed.experimental_rerun is not None:
        return "--experimental-rerun is not supported; use causal reproduce RUN_DIR"
    if parsed.multirun:
        return None
    for override in parsed.overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == "hydra.run.dir" and "${" not in value:
            folder = Path(value.strip("'\"")).expanduser()
            if (folder / "results.json").exists():
                return f"hydra.run.dir={folder} already holds a run; choose another folder"
    return None


def hydra_error_line(exc: BaseException) -> str:
    """Hydra's multi-line composition errors, as one line naming the key and what is allowed."""
    from causal_cli.errors import CausalCliError

    if isinstance(exc, CausalCliError):
        return exc.one_line()
    text = str(exc)
    if type(exc).__name__ == "OverrideParseException" or "LexerNoViableAltException" in text:
        override = text.split(":", 1)[-1].strip() if "Exception:" in text else text.strip()
        return (
            f"config error: cannot parse override {' '.join(override.split())!r}; write key=value, and quote "
            "values with spaces or symbols, e.g. 'graph.edges=[\"a -> b\"]'"
        )
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:
        group, _, option = missing.group(1).rpartition("/")
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        if group and options:
            return f"config error: {group}={option} is not an option; available: {', '.join(options)}"
        return f"config error: '{missing.group(1)}' is not a config (see causal list)"
    if text.startswith("Error merging override") and exc.__cause__ is not None:
        cause = str(exc.__cause__)
        cause_key = re.search(r"full_key: (\S+)", cause)
        detail = next((ln.strip() for ln in cause.splitlines() if ln.strip()), "")
        name = cause_key.group(1) if cause_key else text.removeprefix("Error merging override").strip()
        return f"config error: {name}: {' '.join(detail.split())}"
    key = re.search(r"full_key: (\S+)", text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    if key:
        return f"config error: {key.group(1)}: {first}"
    if "Could not override" in text or "Key '" in text:
        detail = " ".join(
            ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Set the")
        )
        return f"config error: {detail}"
    return f"config error: {' '.join(first.split())}"


def _unsafe_output_subdir(overrides: list[str]) -> str | None:
    """``hydra.output_subdir`` may only name a folder inside the run folder (checked again on writing)."""
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+~") == "hydra.output_subdir":
            value = value.strip().strip("'\"")
            parts = Path(value).parts
            if value and value != "null" and (Path(value).is_absolute() or ".." in parts):
                return (
                    f"config error: hydra.output_subdir={value!r} leaves the run folder; allowed: a relative "
                    "folder name without '..', e.g. .hydra (or null for none)"
                )
    return None


def _oversized_override(overrides: list[str]) -> str | None:
    """A list or string beyond the config bounds (schema.MAX_LIST_VALUES, MAX_STRING_CHARS), refused
    before Hydra parses it: a 3,000-value list takes Hydra and OmegaConf minutes to merge."""
    from causal_cli.schema import MAX_LIST_VALUES, MAX_STRING_CHARS

    for override in overrides:
        key, _, value = override.partition("=")
        if len(value) > MAX_STRING_CHARS:
            return (
                f"config error: {key.lstrip('+~')} is given {len(value):,} characters; allowed: at most "
                f"{MAX_STRING_CHARS:,} (put large values in a file)"
            )
        if value.lstrip().startswith("[") and value.count(",") >= MAX_LIST_VALUES:
            return (
                f"config error: {key.lstrip('+~')} is given {value.count(',') + 1:,} values; allowed: at most "
                f"{MAX_LIST_VALUES:,}"
            )
    return None


def _config_files(group: str) -> list[tuple[str, str]]:
    from causal_cli.app import conf_dir

    folder = conf_dir() / group
    out = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.yaml")):
        out.append((path.stem, _describe(path)))
    return out


def _describe(path) -> str:
    """The file's ``description:`` value, else its first comment line."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        match = re.match(r"^(?:description|question):\s*(.+)$", stripped)
        if match:
            return match.group(1).strip().strip("\"'")
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and "@package" not in stripped:
            return stripped.lstrip("# ").strip()
    return ""


def cmd_summarize(args: list[str]) -> int:
    if len(args) != 1 or args[0].startswith("-"):
        _error("usage: causal summarize SWEEP_DIR (a folder written by causal run -m)")
        return 2
    from causal_cli import sweep
    from causal_cli.errors import CausalCliError

    try:
        sweep.summarize(Path(args[0]))
    except CausalCliError as exc:
        _error(exc.one_line())
        return 2
    return 0


def cmd_reproduce(args: list[str]) -> int:
    from causal_cli import reproduce

    return reproduce.main(args)


def cmd_list(args: list[str]) -> int:
    groups = args or [*GROUPS, "launcher"]
    for group in groups:
        if group == "launcher":
            _list_launchers()
            continue
        if group not in GROUPS:
            _error(f"unknown group '{group}'; allowed: {', '.join(GROUPS)}, launcher")
            return 2
        print(f"{group}:")
        for name, description in _config_files(group):
            print(f"  {name:<24} {description}")
        if group == "refuters":
            print("  (select several: 'refuters=[placebo,random_common_cause]'; settings: refuters.n_jobs)")
    return 0


def _list_launchers() -> None:
    from importlib.util import find_spec

    print("launcher:   (causal run -m hydra/launcher=NAME ...)")
    for name, module, description in LAUNCHERS:
        try:
            installed = module is None or find_spec(module) is not None
        except ModuleNotFoundError:
            installed = False
        note = "" if installed else '  [not installed: pip install "causal-cli[distributed]"]'
        print(f"  {name:<24} {description}{note}")


def cmd_report(args: list[str]) -> int:
    """Re-render plots and report.html from each run folder's results.json and CSVs."""
    import json
    from pathlib import Path

    if not args or any(a.startswith("-") for a in args):
        _error("usage: causal report RUN_DIR [RUN_DIR ...] (a folder written by causal run)")
        return 2
    failed = 0
    for arg in args:
        results = Path(arg) / "results.json"
        try:
            payload = json.loads(results.read_text(encoding="utf-8"))
        except FileNotFoundError:
            _error(f"{arg}: no results.json; pass a run folder written by causal run")
            failed += 1
            continue
        except (OSError, ValueError) as exc:
            _error(f"{arg}: cannot read results.json: {exc}")
            failed += 1
            continue
        if payload.get("status") != "ok":
            _error(
                f"{arg}: run status is '{payload.get('status')}'; only finished runs (status ok) have a report"
            )
            failed += 1
            continue
        from causal_cli.report import html

        path, problems = html.render_run_dir(Path(arg), payload)
        for problem in problems:
            _error(f"{arg}: {problem}")
        print(path)
    return 1 if failed else 0


def cmd_show(args: list[str]) -> int:
    from causal_cli.app import conf_dir

    if len(args) != 1 or "/" not in args[0]:
        _error("usage: causal show GROUP/NAME (e.g. causal show estimator/psm)")
        return 2
    group, name = args[0].split("/", 1)
    path = conf_dir() / group / f"{name}.yaml"
    if group not in GROUPS or not path.is_file():
        _error(f"no config '{args[0]}'; see causal list {group if group in GROUPS else ''}".rstrip())
        return 2
    print(path.read_text(encoding="utf-8"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
