"""The ``causal`` command. Start-up imports nothing heavy: Hydra only for ``run``, DoWhy only in a job."""

from __future__ import annotations

import os
import re
import sys

from causal_cli import __version__

USAGE = """\
usage: causal COMMAND [ARGS]

Declarative causal inference: model (graph), identify (DoWhy), estimate, refute, report.

commands:
  run [OVERRIDES]     compose the config from conf/ groups and overrides, run the study, write a
                      timestamped folder under outputs/ (Hydra syntax: estimator=psm dgp.n=5000,
                      -m for sweeps, --cfg job to print the config, --help for Hydra's help)
  list [GROUP]        the options of each config group (graph, dgp, data, estimator, refuters)
                      and the checked-in experiments
  show GROUP/NAME     print one config file, e.g. causal show estimator/psm

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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] == "--version":
        print(f"causal-cli {__version__}")
        return 0
    command, rest = args[0], args[1:]
    handlers = {"run": cmd_run, "list": cmd_list, "show": cmd_show}
    if command not in handlers:
        _error(f"unknown command '{command}'; allowed: {', '.join(handlers)} (see causal --help)")
        return 2
    return handlers[command](rest)


def _error(message: str) -> None:
    print(f"causal: {message}", file=sys.stderr)


def cmd_run(args: list[str]) -> int:
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if debug:
        os.environ["CAUSAL_DEBUG"] = "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from causal_cli import app

    app.JOB_STATUSES.clear()
    saved_argv = sys.argv
    sys.argv = ["causal", *args]
    try:
        app.hydra_entry()()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - rendered as one line
        if debug:
            raise
        _error(hydra_error_line(exc))
        return 2
    finally:
        sys.argv = saved_argv
    failed = app.JOB_STATUSES.count("failed")
    if failed and len(app.JOB_STATUSES) > 1:
        _error(f"{failed} of {len(app.JOB_STATUSES)} jobs failed (see status in each results.json)")
    return 1 if failed else 0


def hydra_error_line(exc: BaseException) -> str:
    """Hydra's multi-line composition errors, as one line naming the key and what is allowed."""
    from causal_cli.errors import CausalCliError

    if isinstance(exc, CausalCliError):
        return exc.one_line()
    text = str(exc)
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:
        group, _, option = missing.group(1).rpartition("/")
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        if group and options:
            return f"config error: {group}={option} is not an option; available: {', '.join(options)}"
        return f"config error: '{missing.group(1)}' is not a config (see causal list)"
    key = re.search(r"full_key: (\S+)", text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    if key:
        return f"config error: {key.group(1)}: {first}"
    if "Could not override" in text or "Key '" in text:
        detail = " ".join(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Set the"))
        return f"config error: {detail}"
    return f"config error: {' '.join(first.split())}"


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


def cmd_list(args: list[str]) -> int:
    groups = args or list(GROUPS)
    for group in groups:
        if group not in GROUPS:
            _error(f"unknown group '{group}'; allowed: {', '.join(GROUPS)}")
            return 2
        print(f"{group}:")
        for name, description in _config_files(group):
            print(f"  {name:<24} {description}")
        if group == "refuters":
            print("  (select several: 'refuters=[placebo,random_common_cause]'; settings: refuters.n_jobs)")
    return 0


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
