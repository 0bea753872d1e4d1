"""Check a ``causal run`` command line before Hydra acts on it.

Hydra instantiates callbacks and configures logging from the composed config before the task
runs, and writes ``.hydra/*.yaml`` before the task can validate anything. So the command line
is composed here first, exactly as Hydra will (same search path, same overrides, same mode),
and refused in one line when it names anything outside :mod:`causal_cli.trust`'s allow-list,
carries a secret, or reads a config file beyond the size bounds. A multirun is composed once
per combination of swept config groups (``experiment=a,b``): those are what can change the
Hydra node of a job (Hydra refuses to sweep its own keys); plain values of every sweep are
checked as written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

from causal_cli import trust
from causal_cli.errors import ConfigError
from causal_cli.task import conf_dir

#: at most this many config files are read in one user config folder
MAX_FILES = 2_000
#: at most this many compositions to check a multirun (one per combination of swept groups)
MAX_COMPOSES = 64


def check(args: list[str], values: bool = True) -> Preflight:
    """Raise ConfigError (or Hydra's own composition error) when the command line may not run.

    Besides the allow-list, every value is validated here (causal_cli.validate) as the job would,
    so a bad value (``dgp.n=-3``) is refused before a run folder exists; in a multirun, each swept
    value (see :func:`validate_sweep`). ``values=False``: the caller validates the values itself
    (the Python API, which adds a graph or a data frame to the composed config first).
    Returns what the composition found, so the launch need not compose again to learn it.
    """
    for arg in args:
        trust.check_override(arg)
    parsed = parse(args)
    if parsed is None:
        return Preflight()
    for override in parsed.overrides:
        key, sep, value = override.partition("=")
        if sep:
            trust.check_value(key.lstrip("+~"), value)
    user_dirs = user_folders(parsed)
    for folder in user_dirs:
        check_folder(folder)
    from causal_cli.composition import Compositions

    compositions = Compositions()
    cfgs = compose_all(parsed, user_dirs, compositions)
    for cfg in cfgs:
        check_cluster_address(cfg, parsed.overrides)
        for folder in search_path_folders(" ".join(str(p) for p in cfg.hydra.get("searchpath") or [])):
            check_folder(folder)
        check_composed(cfg)
    if values:
        validate_sweep(parsed, cfgs)
    return Preflight(
        composed=True, mode=cfgs[0].hydra.get("mode") if cfgs else None, compositions=compositions
    )


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What :func:`check` learnt: whether it composed the config, the ``hydra.mode`` it set (or None),
    and the merged configs it composed, for the launch to start from (:mod:`causal_cli.composition`)."""

    composed: bool = False
    mode: Any = None
    compositions: Any = dataclasses.field(default=None, compare=False, repr=False)


def parse(args: list[str]):
    """Hydra's reading of the command line; None when Hydra prints something instead of running
    (usage errors, which cli._check_run_args renders, --help, --hydra-help, --info, -sc)."""
    from hydra._internal.utils import get_args_parser

    try:
        parsed = get_args_parser().parse_args(args)
    except SystemExit:
        return None
    if parsed.help or parsed.hydra_help or parsed.info or parsed.shell_completion or parsed.cfg:
        return None
    return parsed


def user_folders(parsed) -> list[Path]:
    """The user's config folders: ``--config-dir``, a ``--config-path`` and ``hydra.searchpath`` entries."""
    user_dirs = []
    if parsed.config_dir:
        config_dir = Path(parsed.config_dir).expanduser()
        if config_dir.is_dir() and config_dir.resolve() != conf_dir().resolve():
            check_shadowing(config_dir)
            user_dirs.append(config_dir)
    if parsed.config_path and not str(parsed.config_path).startswith("pkg://"):
        user_dirs.append(Path(parsed.config_path).expanduser())
    for override in parsed.overrides:
        if "searchpath" in override.partition("=")[0]:
            user_dirs += search_path_folders(override.partition("=")[2])
    return user_dirs


#: at most this many swept values are validated before a multirun starts (numeric sweeps count their
#: smallest and largest value only: every range check is an interval); later ones are validated by their job
MAX_VALUE_CHECKS = 32


def validate_sweep(parsed, cfgs: list) -> None:
    """Validate each composed config, and each swept plain value (``dgp.n=100,-3``) applied to the first.

    A value sweep is applied to the composed config with Hydra's own override code, one value at a
    time (the other swept keys at their first value), so a multirun is refused in one line, before
    any job folder exists, when any of its values is invalid.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    groups = set(cfgs[0].hydra.runtime.choices)  # a sweep of a config group was composed by compose_all
    swept = [
        o
        for o in parser.parse_overrides(list(parsed.overrides))
        if o.is_discrete_sweep() and not o.is_hydra_override() and o.key_or_group not in groups
    ]
    values = {o.get_key_element(): _values_to_check(o) for o in swept}
    firsts = [f"{o.get_key_element()}={values[o.get_key_element()][0]}" for o in swept]
    for cfg in cfgs:
        validate_job(cfg, parser.parse_overrides(firsts))
    budget = MAX_VALUE_CHECKS
    for i, override in enumerate(swept):
        for value in values[override.get_key_element()][1:budget]:
            budget -= 1
            line = f"{override.get_key_element()}={value}"
            validate_job(cfgs[0], parser.parse_overrides([*firsts[:i], line, *firsts[i + 1 :]]))


def _values_to_check(override) -> list[str]:
    """The distinct swept values as Hydra strings; for an all-numeric sweep, its first, smallest and largest."""
    values = list(dict.fromkeys(override.sweep_string_iterator()))
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return values
    if len(values) <= 3:
        return values
    ends = [values[0], values[numbers.index(min(numbers))], values[numbers.index(max(numbers))]]
    return list(dict.fromkeys(ends))


def validate_job(cfg, overrides: list) -> None:
    """What the job's own validation would say about ``cfg`` with ``overrides`` applied (Hydra's code)."""
    import copy

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from causal_cli.errors import CausalCliError
    from causal_cli.graph import CausalGraph
    from causal_cli.validate import validate

    job = copy.deepcopy(cfg)
    if overrides:
        ConfigLoaderImpl._apply_overrides_to_config(overrides, job)
    saved = HydraConfig.instance().cfg
    with open_dict(job):
        job.hydra.runtime.output_dir = os.path.abspath(
            "outputs"
        )  # Hydra sets the real one when the job starts
    HydraConfig.instance().set_config(job)  # a value may read ${hydra:...}, as in the job
    try:
        with open_dict(job):
            del job["hydra"]
        CausalGraph.from_config(validate(job).graph)  # the graph checks need no data
    except (CausalCliError, OmegaConfBaseException, HydraException):
        raise
    except Exception:  # noqa: BLE001 - not a refusal: the job meets it again and records it in its folder
        return
    finally:
        HydraConfig.instance().cfg = saved


def search_path_folders(text: str) -> list[Path]:
    """The local folders a ``hydra.searchpath`` value names (``file://DIR`` or a plain path)."""
    import re

    found = re.findall(r"file://([^,\]\[\s'\"]+)", text)
    if not found:
        found = [p for p in re.split(r"[,\[\]\s'\"]+", text) if p and "://" not in p]
    return [Path(p).expanduser() for p in found]


def check_folder(folder: Path) -> None:
    """Every YAML file Hydra could load from a user folder: size, key count, no anchors/aliases."""
    if not folder.is_dir():
        return
    count = 0
    for root, _, names in os.walk(folder, followlinks=False):
        for name in names:
            if name.endswith((".yaml", ".yml")):
                count += 1
                if count > MAX_FILES:
                    raise ConfigError(f"config folder {folder} holds more than {MAX_FILES:,} YAML files")
                trust.check_yaml_file(Path(root) / name)


def check_shadowing(config_dir: Path) -> None:
    """A ``--config-dir`` file with the name of a built-in one would be silently ignored (Hydra
    searches the built-in folder first; ``cli.user_config_first`` swaps the folders so the user's
    wins): where they were not swapped, refuse it instead of running something else."""
    builtin = conf_dir()
    for root, dirs, names in os.walk(config_dir, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.endswith(".yaml"):
                continue
            relative = (Path(root) / name).relative_to(config_dir)
            if (builtin / relative).is_file() and relative.parts[0] != "hydra":
                group = "/".join(relative.parts[:-1]) or "(primary)"
                raise ConfigError(
                    f"--config-dir {config_dir}: {relative} has the name of a built-in config, which "
                    f"Hydra would use instead; rename it (e.g. {group}/my_{relative.stem}.yaml) and "
                    f"select it with {group}=my_{relative.stem}"
                )


def compose_all(parsed, user_dirs: list[Path] = (), compositions=None) -> list:
    """The config(s) Hydra will compose: one for a run; for a multirun, one per combination of the
    swept groups that a user folder provides options for (built-in options are the tool's own, so
    only their first choice is composed)."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = list(parsed.overrides)
    with hydra_session(parsed, compositions) as hydra:
        if not parsed.multirun and not any("," in o.partition("=")[2] for o in overrides):
            return [_compose(hydra, parsed, overrides)]
        parser = OverridesParser.create(config_loader=hydra.config_loader)
        fixed, swept = [], []
        for override in parser.parse_overrides(overrides):
            if not override.is_sweep_override():
                fixed.append(override.input_line)
            elif "." not in override.get_key_element().lstrip("+~") and not override.is_hydra_override():
                key = override.get_key_element()
                choices = [f"{key}={value}" for value in override.sweep_string_iterator()]
                group = key.lstrip("+~").split("@")[0]
                user_group = any((Path(d) / group).is_dir() for d in user_dirs)
                if not user_group:
                    _check_options(hydra, group, choices)
                swept.append(choices if user_group else choices[:1])
        combos = list(itertools.islice(itertools.product(*swept), MAX_COMPOSES + 1))
        if len(combos) > MAX_COMPOSES:
            raise ConfigError(
                f"the sweep combines more than {MAX_COMPOSES} config-group choices; split it into smaller sweeps"
            )
        return [_compose(hydra, parsed, fixed + list(combo)) for combo in combos]


def _check_options(hydra, group: str, choices: list[str]) -> None:
    """Each swept option of a built-in group exists (its values are the tool's own, tested files)."""
    options = hydra.config_loader.get_group_options(group)
    if not options:
        return  # not a group: Hydra reports what it is when the job composes
    for choice in choices:
        option = choice.partition("=")[2]
        if option not in options and option != "null":
            raise ConfigError(f"{group}={option} is not an option; available: {', '.join(options)}")


@contextlib.contextmanager
def hydra_session(parsed, compositions=None):
    """A Hydra instance with the search path ``hydra.main`` builds (Hydra's global state restored after);
    its compositions are kept in ``compositions`` (:mod:`causal_cli.composition`)."""
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli import composition
    from causal_cli.schema import register_configs

    register_configs()
    config_path = parsed.config_path or str(conf_dir())
    if not os.path.isabs(config_path) and not config_path.startswith("pkg://"):
        config_path = os.path.abspath(config_path)
    search_path = create_automatic_config_search_path(None, None, config_path)
    if parsed.config_dir:
        from hydra.core.config_search_path import SearchPathQuery

        search_path.prepend(
            provider="command-line",
            path=f"file://{os.path.abspath(parsed.config_dir)}",
            anchor=SearchPathQuery(provider="schema"),
        )
    saved = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        yield composition.main_hydra("causal", search_path, compositions)
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


def _compose(hydra, parsed, overrides: list[str]):
    """Hydra's own composition, as ``hydra.main`` would do it, without logging or running anything."""
    from hydra.types import RunMode

    return hydra.compose_config(
        config_name=parsed.config_name or "config",
        overrides=list(overrides),
        run_mode=RunMode.RUN,
        from_shell=True,
        with_log_configuration=False,
    )


def check_cluster_address(cfg, overrides) -> None:
    """``refuters.address`` sends the study's data to a Ray cluster and unpickles what comes back: a shared
    config file may not choose it; only the person running the command (an override, or RAY_ADDRESS)."""
    refuters = cfg.get("refuters") if hasattr(cfg, "get") else None
    address = refuters.get("address") if hasattr(refuters, "get") else None
    if address in (None, "") or any(str(o).lstrip("+").startswith("refuters.address=") for o in overrides):
        return
    raise ConfigError(
        f"refuters.address={address!r} is set by a config file; a cluster address may only come from the "
        "command line (refuters.address=...) or the RAY_ADDRESS environment variable"
    )


def check_composed(cfg) -> None:
    """The composed config: its Hydra node and everything else."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)
    trust.check_hydra(raw.pop("hydra", None) or {})
    path = (raw.get("data") or {}).get("path") if isinstance(raw.get("data"), dict) else None
    if isinstance(path, str) and path.strip() and "${" not in path:
        trust.check_data_path(path)
    trust.check_run_config(raw, imports=False)  # the job imports and checks each class before building it


#: config groups selected as a list in config.yaml (``refuters: [placebo, ...]``)
MULTI_SELECT_GROUPS = ("refuters",)


def hydra_deletions(args: list[str]) -> list[str]:
    """Deletions Hydra cannot apply to a multi-select default, in the form it can.

    Hydra 1.3 matches ``~group`` against single-option defaults only ("Could not delete 'refuters'"),
    so ``~refuters`` becomes ``refuters=[]`` (no refuter runs) and ``~refuters=NAME`` becomes
    ``~refuters.NAME`` (the other defaults stay).
    """
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if key.startswith("~") and key[1:] in MULTI_SELECT_GROUPS:
            name = value.strip().strip("'\"")
            arg = f"{key}.{name}" if sep and name else f"{key[1:]}=[]"
        out.append(arg)
    return out
