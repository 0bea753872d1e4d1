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
                      -m for sweeps, --cfg job to print the config; causal run --help for more)
  list [GROUP]        the options of each config group (graph, dgp, data, estimator, refuters,
                      experiment) and the sweep launchers (launcher)
                      and the checked-in experiments
  show GROUP/NAME     print one config file, e.g. causal show estimator/psm
  summarize SWEEP_DIR the scorecard of a sweep folder (causal run -m): summary.csv, summary.png and a
                      table of bias, RMSE, CI coverage ... per estimator and swept setting
  report RUN_DIR...   redraw the pictures and report.html of finished run folders from their saved files
  power OPTIONS       plan an A/B test: the sample size for a minimum detectable effect (--mde), or the
                      MDE for a sample size (--n), with and without CUPED (--cuped-rho); see causal power -h
  reproduce RUN_DIR   re-run a finished run from its saved config.yaml into a new folder and check that
                      every number matches (refused if its data file changed; --out NEW_DIR)

options:
  --version           print the version
  --debug             (with run) full tracebacks instead of one-line errors
  -sc install=bash    shell completion (bash, zsh, fish): eval "$(causal -sc install=bash)"
  -h, --help          this help

exit codes: 0 ok, 1 the run failed (its results.json says why), 2 refused before anything was written,
130 / 143 stopped by Ctrl-C / SIGTERM; every failure is one line: causal: <kind> error: <message>

examples:
  causal run                                        # the default product-uplift study
  causal run estimator=ipw dgp.confounding=weak
  causal run -m estimator=naive,psm                 # one job per estimator
  causal run 'refuters=[placebo,random_common_cause]' refuters.placebo.num_simulations=50
  causal run experiment=product_uplift
"""

GROUPS = ("graph", "dgp", "data", "estimator", "refuters", "experiment", "ab", "cate")
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
    finally:
        if argv is not None and "causal_cli.task" in sys.modules:  # in-process: the process goes on
            sys.modules["causal_cli.task"].disarm_exit_watchdog()


def _main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] == "--version":
        print(f"causal-cli {__version__}")
        return 0
    if args[0] in ("-sc", "--shell-completion") or args[0].startswith("--shell-completion="):
        return cmd_run(args)  # the completion script Hydra installs calls `causal -sc query=SHELL`
    command, rest = args[0], args[1:]
    handlers = {
        "run": cmd_run,
        "list": cmd_list,
        "show": cmd_show,
        "report": cmd_report,
        "reproduce": cmd_reproduce,
        "summarize": cmd_summarize,
        "power": cmd_power,
    }
    if command not in handlers:
        _error(
            f"unknown command '{command}'; allowed: {', '.join(handlers)} (see causal --help)", kind="usage"
        )
        return 2
    if command == "run" and argv is None:
        from causal_cli.runtime.tuning import fewer_full_collections

        fewer_full_collections()  # this process's own run: imports and composition make no garbage
    code = handlers[command](rest)
    if argv is None:
        # the process ends now: spare its exit a garbage collection over all it imported (0.1-0.7 s)
        import gc

        gc.freeze()
    return code


#: the first words of every failure line: ``causal: <kind> error: <message>`` (or ``causal: interrupted: ...``)
ERROR_LINE = re.compile(r"^(?:[a-z][a-z ]* error|interrupted): ")


def _error(message: str, kind: str = "usage") -> None:
    """One line on stderr, ``causal: <kind> error: <message>`` (``kind`` when the message names none)."""
    line = " ".join(str(message).split())
    if not ERROR_LINE.match(line):
        line = f"{kind} error: {line}"
    print(f"causal: {line}", file=sys.stderr)


def cmd_run(args: list[str]) -> int:
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if debug:
        os.environ["CAUSAL_DEBUG"] = "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    answered = answer_without_running(args)
    if answered is not None:
        return answered
    args = prepare_run_args(args)
    problem, checked = _check_run_args(args) or ray_address_problem(args), None
    if not problem:
        problem, checked = _preflight(args, debug)
    if problem:
        _error(problem, kind="config")
        return 2
    if "--hydra-help" in args:
        return _hydra_help(args)
    return _run_hydra(args, debug, checked)


def _hydra_help(args: list[str]) -> int:
    """Hydra's own help, without the flag ``causal`` refuses (``--experimental-rerun``: see causal reproduce)."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = _run_hydra(args, debug=False)
    lines = buffer.getvalue().splitlines(keepends=True)
    print("".join(ln for ln in lines if not ln.startswith("--experimental-rerun")), end="")
    return code


def prepare_run_args(args: list[str]) -> list[str]:
    """The command line as Hydra needs it: ``-m`` first, data globs expanded, the user's config folder
    first, and ``~refuters`` deletions in a form Hydra can apply (preflight.hydra_deletions)."""
    from causal_cli.preflight import hydra_deletions

    return hydra_deletions(user_config_first(expand_data_globs(multirun_first(args))))


def _run_hydra(args: list[str], debug: bool, checked=None) -> int:
    """Hand the checked command line to the Hydra task; the exit status from how the jobs ended."""
    from causal_cli import task

    task.STOP_REQUESTED.clear()
    task.INTERRUPT_REPORTED.clear()
    task.CLAIMED.clear()
    try:
        with signals_interrupt():
            statuses = task.launch(args, checked=checked)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt as exc:
        task.mark_interrupted(int(getattr(exc, "signum", 2)))  # folders claimed before their job began
        return interrupted_exit(exc)
    except Exception as exc:  # noqa: BLE001 - rendered as one line
        if debug:
            raise
        _error(hydra_error_line(exc))
        from causal_cli.errors import EXIT_FAILED, EXIT_REFUSED

        return EXIT_FAILED if getattr(exc, "run_dir", None) is not None else EXIT_REFUSED
    finally:
        _close_run_logs()
    return _jobs_exit(statuses)


def _close_run_logs() -> None:
    """Hydra leaves its job logging configured: a later job, or anything else this process logs, must not
    write into a finished run's ``run.log`` (conf/hydra/job_logging/causal.yaml)."""
    import contextlib
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and os.path.basename(handler.baseFilename) == "run.log":
            root.removeHandler(handler)
            with contextlib.suppress(OSError):  # a full disk: the run already said what it could not write
                handler.close()


def _jobs_exit(statuses: list[str]) -> int:
    """0 when every job ended ok, else 1."""
    failed, jobs = sum(1 for s in statuses if s != "ok"), len(statuses)
    if failed and jobs > 1:
        _error(f"{failed} of {jobs} jobs failed (see status in each results.json)", kind="run")
    return 1 if failed else 0


def answer_without_running(args: list[str]) -> int | None:
    """``--help`` (our own text, without composing anything) and shell-completion queries; None otherwise."""
    if "-h" in args or "--help" in args:
        print(run_help(), end="")
        return 0
    shell = _completion_query(args)
    if shell is None:
        return None
    words = completions(os.environ.get("COMP_LINE", ""))
    print(("\n" if shell == "fish" else " ").join(words))
    return 0


def _completion_query(args: list[str]) -> str | None:
    """The shell of ``-sc query=SHELL`` (install/uninstall are Hydra's own), else None."""
    for i, arg in enumerate(args):
        if arg in ("-sc", "--shell-completion") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--shell-completion="):
            value = arg.partition("=")[2]
        else:
            continue
        if value.startswith("query="):
            return value.partition("=")[2]
    return None


#: the commands ``causal`` completes in first position
COMMANDS = ("run", "list", "show", "report", "reproduce", "summarize", "power")


def completions(line: str) -> list[str]:
    """What the shell may complete ``line`` (``COMP_LINE``) with: commands, then ``causal run`` overrides.

    The overrides come from Hydra's own completion over our config (groups, keys, options), without the
    internal ``schema/*`` groups.
    """
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        typed = words[1] if len(words) == 2 else ""
        return [c for c in COMMANDS if c.startswith(typed)]
    if words[1] != "run":
        return []
    from hydra._internal.core_plugins.bash_completion import BashCompletion
    from hydra._internal.utils import get_args_parser

    from causal_cli.preflight import hydra_session

    rest = line.split("run", 1)[1].lstrip()
    try:  # the user's --config-dir / --config-path count; a half-typed option does not
        parsed = get_args_parser().parse_args(user_config_first(rest.split()))
    except SystemExit:
        parsed = get_args_parser().parse_args([])
    with hydra_session(parsed) as hydra:
        found = BashCompletion(hydra.config_loader)._query(config_name="config", line=rest)
    return [w for w in found if not w.startswith("schema")]


def run_help() -> str:
    """``causal run --help``: conf/hydra/help/causal.yaml rendered without Hydra (nothing heavy imported)."""
    import textwrap

    import yaml

    folder = _conf_dir()
    spec = yaml.safe_load((folder / "hydra" / "help" / "causal.yaml").read_text(encoding="utf-8"))
    text = spec["template"]
    for key in ("header", "footer", "app_name"):
        text = text.replace(
            "${hydra.help." + key + "}", str(spec[key]).strip("\n") + ("\n" if key == "header" else "")
        )
    groups = []
    for group in sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in ("hydra", "schema")):
        options = ", ".join(sorted(f.stem for f in (folder / group).glob("*.yaml")))
        groups.append(
            textwrap.fill(options, 100, initial_indent=f"  {group + ':':<12}", subsequent_indent=" " * 14)
        )
    return text.replace("$APP_CONFIG_GROUPS", "\n".join(groups))


def _conf_dir() -> Path:
    """app.conf_dir without importing the app (``--help`` stays fast)."""
    here = Path(__file__).resolve().parent
    packaged = here / "_conf"
    return packaged if packaged.is_dir() else here.parent / "conf"


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
            from causal_cli.task import arm_exit_watchdog

            arm_exit_watchdog(signum)
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
    from causal_cli.task import INTERRUPT_REPORTED

    if not getattr(exc, "reported", False) and not INTERRUPT_REPORTED:
        _error(f"interrupted: stopped by {signal.Signals(signum).name} before a run folder was complete")
        INTERRUPT_REPORTED.append(True)
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
        return f"usage error: {detail} (see causal run --help)"
    return _override_problem(parsed.overrides) or _option_problem(args, parsed)


def _override_problem(overrides: list[str]) -> str | None:
    for override in overrides:
        if re.search(r"://[^/\s@:]*:[^/\s@]+@", override):  # user:password@ would be saved in .hydra/
            return (
                "config error: an override holds a URL with a password; remove it and name the environment "
                "variable that holds it with data.password_env=NAME (nothing was run or saved)"
            )
    return _unsafe_output_subdir(overrides) or _oversized_override(overrides)


def _option_problem(args: list[str], parsed) -> str | None:
    dashed = next((a for a in args if a.startswith("--exp")), None)
    if dashed and not dashed.startswith("--experimental-rerun"):  # argparse took it for an abbreviation
        return (
            f"usage error: '{dashed}' is not an option; pick an experiment with experiment=NAME (no dashes)"
        )
    if parsed.experimental_rerun is not None:
        return "usage error: --experimental-rerun is not supported; use causal reproduce RUN_DIR"
    if parsed.multirun:
        return None
    for override in parsed.overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == "hydra.run.dir" and "${" not in value:
            folder = Path(value.strip("'\"")).expanduser()
            if (folder / "results.json").exists():
                return f"config error: hydra.run.dir={folder} already holds a run; choose another folder"
    return None


#: seconds to wait for a Ray cluster's head to accept a connection before refusing the run
RAY_CONNECT_TIMEOUT_S = 10.0


def ray_address_problem(args: list[str], timeout: float = RAY_CONNECT_TIMEOUT_S) -> str | None:
    """``hydra.launcher.ray.init.address=HOST:PORT`` that nothing answers: one line after ``timeout`` seconds.

    Ray itself retries a wrong address for minutes, printing a line per retry; the head is tried here
    first with a plain TCP connection (``ray://HOST:PORT`` client addresses alike; ``auto``/``local`` skipped).
    """
    import socket

    address = None
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "hydra.launcher.ray.init.address":
            address = value.strip().strip("'\"")
    if not address or address.lower() in ("auto", "local", "null", "none"):
        return None
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    default_port = 10001 if address.startswith("ray://") else 6379
    if not host:
        host, port = hostport, str(default_port)
    try:
        port_number = int(port)
    except ValueError:
        return (
            f"config error: hydra.launcher.ray.init.address={address}: '{port}' is not a port; e.g. HOST:6379"
        )
    try:
        with socket.create_connection((host.strip("[]"), port_number), timeout=timeout):
            return None
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        return (
            f"launcher error: no Ray cluster answers at hydra.launcher.ray.init.address={address} ({reason}"
            f"{f' after {timeout:g} s' if isinstance(exc, TimeoutError) else ''}); start one with "
            "`ray start --head` or fix the address (nothing was run)"
        )


def multirun_first(args: list[str]) -> list[str]:
    """``-m``/``--multirun`` anywhere on the command line, as Hydra's own apps accept it.

    Hydra's parser reads the overrides as one positional list, so ``estimator=a,b -m seed=1`` left
    ``seed=1`` unrecognized; the flag is moved before the overrides (values of ``-cd``/``-cp``/``-cn``/``-c``
    stay with their option).
    """
    takes_value = {"-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name", "-c", "--cfg", "-p"}
    takes_value |= {"--package", "--info", "-i", "--experimental-rerun"}
    flags, rest, previous = [], [], None
    for arg in args:
        if arg in ("-m", "--multirun") and previous not in takes_value:
            flags.append(arg)
        else:
            rest.append(arg)
        previous = arg
    return [*flags[:1], *rest]


def expand_data_globs(args: list[str]) -> list[str]:
    """``data.path='glob(reps/*.csv)'`` in a multirun: one job per matching file (sorted).

    Hydra's own ``glob()`` selects config-group options only; for a file path it is expanded here against
    the folder causal runs from. A pattern that matches nothing is left to fail in one line at load time.
    """
    import glob as globbing

    if "-m" not in args and "--multirun" not in args:
        return args
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        match = re.fullmatch(r"\s*glob\((.*)\)\s*", value) if sep else None
        if match and key.lstrip("+").endswith("data.path"):
            pattern = match.group(1).strip().strip("'\"")
            found = sorted(p for p in globbing.glob(os.path.expanduser(pattern)) if os.path.isfile(p))
            if found:
                arg = f"{key}={','.join(_quoted(p) for p in found)}"
        out.append(arg)
    return out


def _quoted(path: str) -> str:
    """A file path as one Hydra sweep value (quoted when it holds Hydra's special characters)."""
    if re.fullmatch(r"[\w./\-]+", path):
        return path
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def user_config_first(args: list[str]) -> list[str]:
    """``--config-dir DIR``: the user's files win over built-in ones of the same group/name.

    Hydra searches its primary config folder before ``--config-dir``, so a user's
    ``estimator/psm.yaml`` would be silently ignored; the folders swap roles instead (the user's
    becomes the primary folder, the built-in one is searched after it).
    """
    import contextlib
    import io

    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parsed = parser.parse_args(args)
    except SystemExit:
        return args
    if not parsed.config_dir or parsed.config_path:
        return args
    rest, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-cd", "--config-dir"):
            skip = True
        elif not arg.startswith(("--config-dir=", "-cd=")):
            rest.append(arg)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        if parser.parse_args(rest).config_dir:  # a spelling not handled here: leave it to the shadow check
            return args
    from causal_cli.task import conf_dir

    user = os.path.abspath(os.path.expanduser(parsed.config_dir))
    return ["--config-path", user, "--config-dir", str(conf_dir()), *rest]


def _check_trust(args: list[str], debug: bool = False) -> str | None:
    """What the composed config may call and carry (causal_cli.trust), checked before Hydra runs
    callbacks, configures logging or writes a file; a config Hydra cannot compose is reported here."""
    return _preflight(args, debug)[0]


def _preflight(args: list[str], debug: bool = False):
    """``(problem or None, preflight.Preflight or None)``: the checks of :func:`_check_trust`, and what
    they composed (the launch then need not compose the config once more to learn the run mode)."""
    from causal_cli import preflight

    try:
        return None, preflight.check(args)
    except Exception as exc:  # noqa: BLE001 - rendered as one line
        if debug:
            raise
        return hydra_error_line(exc), None


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
    from causal_cli.task import conf_dir

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
    from causal_cli import api, sweep_task
    from causal_cli.errors import CausalCliError

    try:
        sweep_task.show(api.summarize(Path(args[0])))
    except CausalCliError as exc:
        _error(exc.one_line())
        return 2
    return 0


def cmd_power(args: list[str]) -> int:
    """``causal power``: sample size for an MDE (or the MDE for ``--n``), two-sided z-test, with CUPED's gain."""
    import argparse
    import contextlib
    import io

    parser = argparse.ArgumentParser(
        prog="causal power",
        description="Plan a two-arm A/B test on a mean metric (two-sided z-test).",
        epilog="example: causal power --baseline-mean 50 --sd 30 --mde 1 --cuped-rho 0.65",
    )
    parser.add_argument("--sd", type=float, required=True, help="standard deviation of the metric per unit")
    parser.add_argument("--mde", type=float, help="minimum detectable effect, absolute (metric units)")
    parser.add_argument(
        "--mde-relative", type=float, help="minimum detectable effect as a share of --baseline-mean"
    )
    parser.add_argument(
        "--n", type=int, help="total units available: answer the MDE instead of the sample size"
    )
    parser.add_argument("--baseline-mean", type=float, help="control mean (for relative effects)")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (0.05)")
    parser.add_argument("--power", type=float, default=0.8, help="probability of detecting the MDE (0.8)")
    parser.add_argument("--ratio", type=float, default=0.5, help="share of units in treatment (0.5)")
    parser.add_argument(
        "--cuped-rho", type=float, default=0.0, help="correlation of the pre-period covariate"
    )
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            opts = parser.parse_args(args)
    except SystemExit as exc:
        if exc.code:
            lines = [ln for ln in stderr.getvalue().splitlines() if ln.strip()]
            _error(
                f"{lines[-1].split('error:', 1)[-1].strip() if lines else 'invalid arguments'} (see causal power -h)"
            )
            return 2
        return 0
    from causal_cli.abtest import power
    from causal_cli.errors import CausalCliError, ConfigError

    try:
        if opts.mde_relative is not None:
            if not opts.baseline_mean:
                raise ConfigError("--mde-relative needs --baseline-mean (the control mean it is relative to)")
            opts.mde = opts.mde_relative * opts.baseline_mean
        if (opts.mde is None) == (opts.n is None):
            raise ConfigError("give exactly one of --mde / --mde-relative (sample size) or --n (the MDE)")
        rhos = [0.0, opts.cuped_rho] if opts.cuped_rho else [0.0]
        common = dict(
            sd=opts.sd, alpha=opts.alpha, power=opts.power, ratio=opts.ratio, baseline_mean=opts.baseline_mean
        )
        if opts.n is None:
            answers = [power.sample_size(mde=opts.mde, cuped_rho=rho, **common) for rho in rhos]
        else:
            answers = [
                power.minimum_detectable_effect(n_total=opts.n, cuped_rho=rho, **common) for rho in rhos
            ]
    except CausalCliError as exc:
        _error(exc.one_line())
        return 2
    first = answers[0]
    print(
        f"two-sided z-test, alpha {first.alpha:g}, power {first.power:g}, {100 * first.ratio:g}% in treatment, "
        f"sd {first.sd:g}"
    )
    for a in answers:
        label = (
            f"with CUPED (rho {a.cuped_rho:g}, sd {a.effective_sd:.4g})" if a.cuped_rho else "without CUPED"
        )
        relative = (
            f" ({100 * a.mde_relative:.3g}% of {opts.baseline_mean:g})" if a.mde_relative is not None else ""
        )
        if opts.n is None:
            print(
                f"  {label}: n = {a.n_total:,} units ({a.n_control:,} control + {a.n_treatment:,} treatment) "
                f"to detect {a.mde:.4g}{relative}"
            )
        else:
            print(f"  {label}: MDE = {a.mde:.4g}{relative} with n = {a.n_total:,} units")
    return 0


def cmd_reproduce(args: list[str]) -> int:
    """Exit status: 0 every value matches, 1 something differs, 2 the run could not be repeated."""
    from causal_cli import reproduce
    from causal_cli.errors import CausalCliError

    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    out = None
    if "--out" in args:
        i = args.index("--out")
        if i + 1 >= len(args):
            return _fail(reproduce.USAGE)
        out = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1 or args[0].startswith("-"):
        return _fail(reproduce.USAGE)
    try:
        plan = reproduce.prepare(Path(args[0]), Path(out) if out else None)
        print(f"reproducing {plan.run_dir} into {plan.new_dir}", flush=True)
        done = reproduce.execute(plan)
    except reproduce.ComposeError as exc:
        return _fail(hydra_error_line(exc.__cause__ or exc))
    except CausalCliError as exc:
        return _fail(exc.one_line())
    except Exception as exc:  # noqa: BLE001 - a damaged folder is one line, not a traceback
        if debug:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    print(done.render())
    return 0 if done.ok else 1


def _fail(message: str) -> int:
    _error(message.removeprefix("causal: "))
    return 2


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
        for name, description in _config_files(group) + _plugin_entries(group):
            print(f"  {name:<24} {description}")
        if group == "refuters":
            print(
                "  (select several: 'refuters=[placebo,random_common_cause]'; "
                "settings: refuters.n_jobs, refuters.backend, refuters.address)"
            )
    from causal_cli import registry

    for problem in registry.PLUGIN_WARNINGS:  # one line per plugin that was skipped (not an error: exit 0)
        print(f"causal: warning: {' '.join(str(problem).split())}", file=sys.stderr)
    return 0


def _plugin_entries(group: str) -> list[tuple[str, str]]:
    """Methods that installed plugins add to ``group`` (registry entry points); a broken plugin is one warning line."""
    import warnings

    from causal_cli import registry

    key = {"refuters": "refuter"}.get(group, group)
    if key not in registry.ALL:
        return []
    with warnings.catch_warnings():  # cmd_list prints them, one line each
        warnings.simplefilter("ignore", registry.PluginWarning)
        registry.discover()
    return [(name, f"plugin: {dist}") for name, dist in sorted(registry.PLUGINS[key].items())]


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
    if not args or any(a.startswith("-") for a in args):
        _error("usage: causal report RUN_DIR [RUN_DIR ...] (a folder written by causal run)")
        return 2
    from causal_cli import api
    from causal_cli.errors import CausalCliError

    failed = 0
    for arg in args:
        try:
            path, problems = api.report(arg)
        except CausalCliError as exc:
            _error(f"{arg}: {' '.join(str(exc).split())}")
            failed += 1
            continue
        for problem in problems:
            _error(f"{arg}: {problem}")
        print(path)
    return 1 if failed else 0


def cmd_show(args: list[str]) -> int:
    if len(args) != 1 or "/" not in args[0]:
        _error("usage: causal show GROUP/NAME (e.g. causal show estimator/psm)")
        return 2
    group, name = args[0].split("/", 1)
    path = shown_config(group, name)
    if path is None:
        _error(f"no config '{args[0]}'; see causal list {group if group in GROUPS else ''}".rstrip())
        return 2
    print(path.read_text(encoding="utf-8"), end="")
    return 0


def shown_config(group: str, name: str) -> Path | None:
    """The built-in config file GROUP/NAME; None for anything else (``..``, absolute paths, symlinks out)."""
    from causal_cli.task import conf_dir

    if group not in GROUPS or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) or ".." in name:
        return None
    root = conf_dir().resolve()
    path = root / group / f"{name}.yaml"
    real = path.resolve()
    if root not in real.parents or not real.is_file():
        return None
    return real


if __name__ == "__main__":
    sys.exit(main())
