"""Compose once: Hydra's config loader, keeping the merged files of each set of config-group choices.

Hydra composes a config in two parts. First the defaults list and the merge of every file it names:
reading YAML and merging trees, the expensive part, which depends only on the config-group choices
(``estimator=ipw``) and the search path. Then the value overrides (``dgp.seed=3``) and the records of
the ``hydra`` node. A value sweep repeated the first part for every job, twice (Hydra's batch check,
then the launch), and a ``causal run`` repeated the preflight's. :class:`LeanConfigLoader` keeps the
first part's result in a :class:`Compositions` store, by choices, and runs the second part (Hydra's own
code, below) on a copy of it, so each config is the one Hydra composes (tests/test_sweep_compose.py
compares them over a range of command lines). A store lives for one command: the preflight fills it
and hands it to the launch (``preflight.Preflight.compositions``); nothing is kept between commands,
so an edited config file is always read again.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.config_repository import CachingConfigRepository
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

#: merged configs kept per store (one per distinct set of group choices; a sweep over more recomposes)
MAX_TEMPLATES = 64
#: job configs composed by Hydra's batch check and kept for the launch (~160 KB each; the jobs of a larger
#: batch after these are composed again, from the kept merge: ~10 ms of CPU each)
MAX_JOB_CONFIGS = 100


class Compositions:
    """Merged configs by (search path, config name, run mode, group choices): one command's worth."""

    def __init__(self) -> None:
        self.templates: dict[tuple, tuple[Any, Any]] = {}
        #: compositions served from a kept template / composed in full (what the tests and benchmark read)
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, fallback: tuple | None = None):
        found = self.templates.get(key) or (self.templates.get(fallback) if fallback else None)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return found[0], copy.deepcopy(found[1])

    def put(self, key: tuple, defaults_list, cfg) -> None:
        if len(self.templates) < MAX_TEMPLATES:
            self.templates[key] = (defaults_list, copy.deepcopy(cfg))


class LeanConfigLoader(ConfigLoaderImpl):
    """Hydra's ``ConfigLoaderImpl``, composing each set of group choices once (see the module text).

    Also kept for this loader's life: the config repository after the primary config's
    ``hydra.searchpath`` was applied (Hydra copied it for every composition), and each job config
    that Hydra's batch check composed, handed once to the launcher that composes it again.
    """

    def __init__(self, config_search_path, compositions: Compositions | None = None) -> None:
        super().__init__(config_search_path=config_search_path)
        self.compositions = compositions if compositions is not None else Compositions()
        self._delegates: dict[tuple, Any] = {}
        self._job_configs: dict[tuple, Any] = {}

    def __getstate__(self) -> dict:
        """Launcher workers (joblib, Ray) get the loader without what this process kept."""
        state = self.__dict__.copy()
        state.update(compositions=Compositions(), _delegates={}, _job_configs={})
        return state

    def _parse_overrides_and_create_caching_repo(self, config_name, overrides):
        parsed = OverridesParser.create().parse_overrides(overrides=overrides)
        key = (config_name, tuple(o.input_line for o in parsed if o.get_key_element() == "hydra.searchpath"))
        delegate = self._delegates.get(key)
        if delegate is None:
            repo = CachingConfigRepository(self.repository)
            self._process_config_searchpath(config_name, parsed, repo)
            self._delegates[key] = repo.delegate
            return parsed, repo
        repo = CachingConfigRepository.__new__(CachingConfigRepository)
        repo.delegate, repo.cache = delegate, {}
        return parsed, repo

    def load_sweep_config(self, master_config, sweep_overrides):
        """A job config the batch check composed is handed to the launch (once); else Hydra's composition.

        Hydra's ``Sweeper.validate_batch_is_legal`` composes every job of a batch and drops the result,
        then the launcher composes each again: the second composition of the same job of the same sweep
        (same master config object) is the first one's config.
        """
        key = (id(master_config), tuple(sweep_overrides))
        kept = self._job_configs.pop(key, None)
        if kept is not None and kept[0] is master_config:
            return kept[1]
        cfg = super().load_sweep_config(master_config, sweep_overrides)
        if len(self._job_configs) < MAX_JOB_CONFIGS:
            self._job_configs[key] = (master_config, cfg)
        return cfg

    def _load_configuration_impl(
        self,
        config_name,
        overrides,
        run_mode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ):
        self.ensure_main_config_source_available()
        parsed, repo = self._parse_overrides_and_create_caching_repo(config_name, overrides)
        if validate_sweep_overrides:
            self.validate_sweep_overrides_legal(overrides=parsed, run_mode=run_mode, from_shell=from_shell)
        defaults_list, config_overrides, cfg = self._merged(config_name, parsed, repo, run_mode)
        # from here on, Hydra 1.3's ConfigLoaderImpl._load_configuration_impl
        ConfigLoaderImpl._apply_overrides_to_config(config_overrides, cfg)
        return _record(cfg, config_name, parsed, defaults_list, repo)

    def _merged(self, config_name, parsed, repo, run_mode):
        """(defaults list, value overrides, merged config before them): kept, or composed and kept."""
        from hydra._internal.defaults_list import create_defaults_list

        choices, values = _split(parsed, repo)
        sources = tuple((source.provider, source.path) for source in repo.get_sources())
        key = (sources, config_name, run_mode == RunMode.MULTIRUN, tuple(o.input_line for o in choices))
        # a multirun skips config groups left '???'; when a run with the same choices composed, there
        # were none, so its merge is the multirun's too (the preflight's, for a sweep of values)
        found = self.compositions.get(key, fallback=(*key[:2], False, *key[3:]))
        if found is not None:
            return found[0], values, found[1]
        defaults_list = create_defaults_list(
            repo=repo,
            config_name=config_name,
            overrides_list=parsed,
            prepend_hydra=True,
            skip_missing=run_mode == RunMode.MULTIRUN,
        )
        cfg = self._compose_config_from_defaults_list(defaults=defaults_list.defaults, repo=repo)
        OmegaConf.set_struct(cfg, True)
        OmegaConf.set_readonly(cfg.hydra, False)
        if [o.input_line for o in defaults_list.config_overrides] == [o.input_line for o in values]:
            self.compositions.put(
                key, defaults_list, cfg
            )  # else this reading of the overrides is not Hydra's
        return defaults_list, defaults_list.config_overrides, cfg


def _split(parsed, repo) -> tuple[list, list]:
    """(config-group choices, value overrides), as Hydra's ``defaults_list.Overrides`` tells them apart."""
    choices, values = [], []
    for override in parsed:
        if override.is_sweep_override():
            continue
        if isinstance(override.value(), dict) or not repo.group_exists(override.key_or_group):
            values.append(override)
        else:
            choices.append(override)
    return choices, values


def _record(cfg, config_name, parsed, defaults_list, repo):
    """The ``hydra`` node's records of the composition (Hydra 1.3's code, unchanged)."""
    from hydra import __version__, version
    from hydra.conf import ConfigSourceInfo
    from hydra.core.utils import JobRuntime

    app_overrides = []
    for override in parsed:
        if override.is_hydra_override():
            cfg.hydra.overrides.hydra.append(override.input_line)
        else:
            cfg.hydra.overrides.task.append(override.input_line)
            app_overrides.append(override)
    with open_dict(cfg.hydra):
        cfg.hydra.runtime.choices.update(defaults_list.overrides.known_choices)
        for key in cfg.hydra.job.env_copy:
            cfg.hydra.job.env_set[key] = os.environ[key]
    cfg.hydra.runtime.version = __version__
    cfg.hydra.runtime.version_base = version.getbase()
    cfg.hydra.runtime.cwd = os.getcwd()
    cfg.hydra.runtime.config_sources = [
        ConfigSourceInfo(path=x.path, schema=x.scheme(), provider=x.provider) for x in repo.get_sources()
    ]
    if "name" not in cfg.hydra.job:
        cfg.hydra.job.name = JobRuntime().get("name")
    cfg.hydra.job.override_dirname = get_overrides_dirname(
        overrides=app_overrides,
        kv_sep=cfg.hydra.job.config.override_dirname.kv_sep,
        item_sep=cfg.hydra.job.config.override_dirname.item_sep,
        exclude_keys=cfg.hydra.job.config.override_dirname.exclude_keys,
    )
    cfg.hydra.job.config_name = config_name
    return cfg


def main_hydra(task_name: str, search_path, compositions: Compositions | None = None):
    """``Hydra.create_main_hydra2`` with a :class:`LeanConfigLoader` (registered as the global Hydra)."""
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    hydra = Hydra(task_name=task_name, config_loader=LeanConfigLoader(search_path, compositions))
    GlobalHydra.instance().initialize(hydra)
    return hydra
