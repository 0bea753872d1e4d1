"""The one place that decides what a config may call, and what it may not carry.

A config is data, shared like code: a colleague's experiment file, a run folder sent for
``causal reproduce``. So a config may choose among registered methods, set plain values and
name classes from an allow-list; it never names an arbitrary callable, and no secret in it
reaches a saved file.

The allow-list: scikit-learn estimator classes (``sklearn.*`` classes that subclass
``BaseEstimator``), plus what the *user* adds, never the config being run:

* the environment variable ``CAUSAL_ALLOW``: comma-separated entries, and
* the file ``$XDG_CONFIG_HOME/causal-cli/allow.txt`` (default ``~/.config/causal-cli/allow.txt``):
  one entry per line, ``#`` comments.

An entry is a dotted class (``xgboost.XGBClassifier``) or a module prefix (``lightgbm``: every
class under it). Hydra callbacks and logging classes are checked against the same entries.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

from causal_cli.errors import ConfigError

ALLOW_ENV = "CAUSAL_ALLOW"
#: keys Hydra's instantiate interprets; a model option may carry none of them except ``_target_``
RESERVED = ("_target_", "_args_", "_partial_", "_convert_", "_recursive_")
#: the tool's own Hydra callbacks (conf/config.yaml)
OWN_CALLBACKS = ("causal_cli.sweep_task.ProgressCallback", "causal_cli.sweep_task.ScorecardCallback")
#: classes a logging config may name: the standard library's handlers, formatters and filters
LOGGING_PREFIXES = ("logging.",)
#: ``ext://`` values a logging config may use (anything else imports a module of the config's choosing)
LOGGING_EXT = ("ext://sys.stdout", "ext://sys.stderr")
#: Hydra plugins are only looked up in these packages (Hydra enforces it too)
PLUGIN_PREFIXES = ("hydra_plugins.", "hydra._internal.core_plugins.")
#: environment variables ``hydra.job.env_set`` may set (thread counts; nothing that changes what runs)
ENV_SET_ALLOWED = re.compile(r"^[A-Z0-9_]*_NUM_THREADS$|^CUDA_VISIBLE_DEVICES$")

DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
SECRET_KEY = re.compile(r"^(.*_)?(password|passwd|pwd|secret|token|api_?key|credentials?)$", re.I)
SECRET_PARAM = re.compile(
    r"[?&;]\s*[^=&;#]*(pass(word|wd)?|pwd|secret|token|api[_-]?key|credential|access[_-]?key)"
    r"[^=&;#]*=\s*[^&;#\s]",
    re.I,
)
ENV_INTERPOLATION = re.compile(r"\$\{\s*oc\.env\s*:")

#: bounds on what a user config file or override may hold (checked before Hydra parses it)
MAX_FILE_BYTES = 1 << 20
MAX_KEYS = 10_000
MAX_OVERRIDE_CHARS = 100_000


def allow_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "causal-cli" / "allow.txt"


def user_entries() -> tuple[str, ...]:
    """What the user allowed beyond scikit-learn: ``$CAUSAL_ALLOW`` and the user's allow.txt."""
    entries = [e.strip() for e in os.environ.get(ALLOW_ENV, "").split(",")]
    path = allow_file()
    try:
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            for line in path.read_text(encoding="utf-8").splitlines():
                entries.append(line.split("#", 1)[0].strip())
    except (OSError, UnicodeDecodeError):
        pass
    return tuple(dict.fromkeys(e for e in entries if e))


def _matches(target: str, entry: str) -> bool:
    return target == entry or target.startswith(entry.rstrip(".") + ".")


def user_allowed(target: str) -> bool:
    return any(_matches(target, entry) for entry in user_entries())


def allowed_text() -> str:
    extra = user_entries()
    added = f", and {', '.join(extra)} (user allow-list)" if extra else ""
    return (
        f"scikit-learn estimator classes (e.g. sklearn.ensemble.GradientBoostingClassifier){added}; "
        f"add others with {ALLOW_ENV}=module.Class or {allow_file()}"
    )


def check_target_name(target: Any, key: str) -> bool:
    """Whether the user allowed ``target`` (else it is a ``sklearn.*`` name); refuse any other name."""
    if not isinstance(target, str) or not DOTTED.match(target):
        raise ConfigError(f"{key}._target_={target!r} is not a dotted class name; allowed: {allowed_text()}")
    by_user = user_allowed(target)
    if not (by_user or target.startswith("sklearn.")):
        raise ConfigError(f"{key}._target_={target} is not allowed; allowed: {allowed_text()}")
    return by_user


def resolve_class(target: Any, key: str) -> type:
    """The allow-listed class ``target`` names; checked by name before anything is imported."""
    by_user = check_target_name(target, key)
    cls = _import_attribute(target, key)
    if not inspect.isclass(cls):
        raise ConfigError(f"{key}._target_={target} is not a class; allowed: {allowed_text()}")
    if not by_user:
        from sklearn.base import BaseEstimator

        if not issubclass(cls, BaseEstimator) or not cls.__module__.startswith("sklearn."):
            raise ConfigError(
                f"{key}._target_={target} is not a scikit-learn estimator class; allowed: {allowed_text()}"
            )
    return cls


def _import_attribute(target: str, key: str):
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        return obj
    raise ConfigError(f"{key}._target_={target} cannot be imported (is its package installed?)")


def plain(value: Any, key: str) -> Any:
    """Numbers, strings, bools, None and lists/dicts of those; nothing Hydra would instantiate."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k in RESERVED:
                raise ConfigError(f"{key}.{k} is not allowed in a model option; allowed: plain values")
            out[k] = plain(v, f"{key}.{k}")
        return out
    raise ConfigError(
        f"{key}={type(value).__name__} is not a plain value; allowed: numbers, strings, booleans, "
        "null, and lists or mappings of those"
    )


def _container(spec: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(spec, (DictConfig, ListConfig)):
        return OmegaConf.to_container(spec, resolve=True)
    return spec


def check_model(spec: Any, key: str, imports: bool = True) -> tuple[type | None, dict[str, Any]] | None:
    """(class, parameters) of a model option ``{_target_: Class, **params}``; None for a built-in name.

    ``imports=False`` checks the name only (the class is then None): no module is imported.
    """
    spec = _container(spec)
    if spec is None or isinstance(spec, str) or hasattr(spec, "fit"):
        return None
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{key}={spec!r} is not a model; allowed: null (built-in) or {{_target_: Class, param: value}}"
        )
    if "_target_" not in spec:
        raise ConfigError(
            f"{key} has no _target_; allowed: {{_target_: Class, param: value}} naming one of "
            f"{allowed_text()}"
        )
    check_target_name(spec["_target_"], key)  # by name first: nothing is imported for a refused one
    for reserved in RESERVED[1:]:
        if reserved in spec:
            raise ConfigError(
                f"{key}.{reserved} is not allowed; a model option holds _target_ and plain values"
            )
    params = plain({k: v for k, v in spec.items() if k != "_target_"}, key)
    if not imports:
        return None, params
    return resolve_class(spec["_target_"], key), params


def build_model(spec: Any, key: str = "model") -> Any:
    """A fresh estimator from an allow-listed model option (an instance given in code is used as is)."""
    if hasattr(spec, "fit"):
        return spec
    checked = check_model(spec, key)
    if checked is None:
        raise ConfigError(f"{key}={spec!r} is not a model option")
    cls, params = checked
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - a bad parameter is a one-line config error
        raise ConfigError(f"cannot build model '{cls.__module__}.{cls.__qualname__}' ({key}): {exc}") from exc


def check_run_config(cfg: Any, imports: bool = True) -> None:
    """Walk a (non-Hydra) config: every ``_target_`` allow-listed, no instantiate keys, no secrets.

    ``imports=False`` (the command line's early check) checks class names without importing them.
    """
    raw = _raw(cfg)
    _walk(raw, "", imports)
    check_interpolation_growth(raw)


#: the longest value interpolation may build (``b: ${a}${a}``, ``c: ${b}${b}``, ... doubles per level)
MAX_RESOLVED_CHARS = 1 << 20
REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}")


def check_interpolation_growth(raw: Any) -> None:
    """Refuse interpolations that would build a value longer than MAX_RESOLVED_CHARS, before resolving.

    The length of a string is its literal text plus the lengths of the keys it references, computed
    bottom-up without building anything (a reference cycle counts as empty; OmegaConf reports it).
    """
    flat: dict[str, Any] = {}
    _flatten(raw, "", flat)
    sizes: dict[str, int] = {}
    for path, node in flat.items():
        if isinstance(node, str) and "${" in node:
            _resolved_size(path, frozenset(), flat, sizes)


def _flatten(node: Any, path: str, flat: dict[str, Any]) -> None:
    flat[path] = node
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, _join(path, key), flat)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _flatten(value, f"{path}[{i}]", flat)


def _resolved_size(path: str, active: frozenset, flat: dict[str, Any], sizes: dict[str, int]) -> int:
    """The length ``path`` resolves to (memoised in ``sizes``); raises past MAX_RESOLVED_CHARS."""
    if path in sizes:
        return sizes[path]
    if path in active or path not in flat:
        return 0
    node, inner = flat[path], active | {path}
    if isinstance(node, str):
        refs = REFERENCE.findall(node)
        total = len(REFERENCE.sub("", node)) + sum(_resolved_size(r, inner, flat, sizes) for r in refs)
    elif isinstance(node, dict):
        total = sum(_resolved_size(_join(path, k), inner, flat, sizes) + len(str(k)) for k in node)
    elif isinstance(node, list):
        total = sum(_resolved_size(f"{path}[{i}]", inner, flat, sizes) for i in range(len(node)))
    else:
        total = len(str(node))
    sizes[path] = min(total, 1 << 62)
    if isinstance(node, str) and sizes[path] > MAX_RESOLVED_CHARS:
        raise ConfigError(
            f"{path} would resolve to about {sizes[path]:,} characters through its interpolations; "
            f"allowed: at most {MAX_RESOLVED_CHARS:,}"
        )
    return sizes[path]


def _raw(cfg: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=False)
    return cfg


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(node: Any, path: str, imports: bool) -> None:
    if isinstance(node, dict):
        if "_target_" in node:
            check_model(_unresolved_ok(node, path), path, imports)
            return
        for key, value in node.items():
            if key in RESERVED or key == "()":
                raise ConfigError(f"{_join(path, key)} is not allowed; a config holds plain values")
            check_value(_join(path, key), value)
            _walk(value, _join(path, key), imports)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_value(f"{path}[{i}]", value)
            _walk(value, f"{path}[{i}]", imports)


def _unresolved_ok(node: dict, path: str) -> dict:
    target = node.get("_target_")
    if isinstance(target, str) and "${" in target:
        raise ConfigError(f"{path}._target_={target!r} is an interpolation; write the class name itself")
    return node


def check_value(key: str, value: Any) -> None:
    """A value that would put a secret into the saved config, or copy one from the environment."""
    if not isinstance(value, str):
        return
    leaf = key.rsplit(".", 1)[-1]
    if ENV_INTERPOLATION.search(value):
        raise ConfigError(
            f"{key} uses ${{oc.env:...}}; an environment value would be saved into the run folder. "
            "Name the variable instead (data.password_env=NAME, data.url_env=NAME)"
        )
    if url_has_password(value):
        raise ConfigError(
            f"{key} holds a URL with a password; remove it and name the environment variable that "
            "holds it with data.password_env=NAME (the config is saved into the run folder)"
        )
    if SECRET_KEY.search(leaf) and not leaf.endswith("_env") and value.strip():
        raise ConfigError(
            f"{key} looks like a secret; a config is saved into the run folder, so name the environment "
            "variable that holds it instead (e.g. data.password_env=NAME)"
        )


def url_has_password(text: str) -> bool:
    """``scheme://user:password@host`` in any spelling, or a password-like query parameter."""
    match = re.search(r"[A-Za-z][A-Za-z0-9+.\-]*://", text)
    if not match:
        return False
    rest = text[match.end() :]
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        if ":" in userinfo and not userinfo.startswith("/"):
            return True
    from urllib.parse import unquote

    return bool(SECRET_PARAM.search(rest) or SECRET_PARAM.search(unquote(rest)))


def check_hydra(hydra: Any) -> None:
    """Hydra callbacks, logging configs, plugins and env_set: only what the tool or the user allowed."""
    hydra = _raw(hydra) or {}
    for name, callback in (hydra.get("callbacks") or {}).items():
        _check_callback(f"hydra.callbacks.{name}", callback)
    for group in ("job_logging", "hydra_logging"):
        _check_logging(hydra.get(group), f"hydra.{group}")
    for plugin in ("launcher", "sweeper"):
        _check_plugin(plugin, hydra.get(plugin) or {})
    _check_env_set(((hydra.get("job") or {}).get("env_set")) or {})


def _check_callback(key: str, callback: Any) -> None:
    if callback is None:
        return
    target = callback.get("_target_") if isinstance(callback, dict) else callback
    if not isinstance(target, str) or not (target in OWN_CALLBACKS or user_allowed(target)):
        raise ConfigError(
            f"{key}._target_={target!r} is not allowed; allowed callbacks: {', '.join(OWN_CALLBACKS)} "
            f"(add others with {ALLOW_ENV}=module.Class or {allow_file()})"
        )
    if isinstance(callback, dict):
        for reserved in RESERVED[1:]:
            if reserved in callback:
                raise ConfigError(f"{key}.{reserved} is not allowed")
        plain({k: v for k, v in callback.items() if k != "_target_"}, key)


def _check_plugin(plugin: str, node: Any) -> None:
    target = node.get("_target_") if isinstance(node, dict) else None
    if target is None:
        return
    if not (isinstance(target, str) and DOTTED.match(target) and target.startswith(PLUGIN_PREFIXES)):
        raise ConfigError(
            f"hydra.{plugin}._target_={target!r} is not allowed; choose one with hydra/{plugin}=NAME"
        )


def _check_env_set(env_set: Any) -> None:
    for name in env_set:
        if not ENV_SET_ALLOWED.match(str(name)):
            raise ConfigError(
                f"hydra.job.env_set.{name} is not allowed; allowed: thread counts (*_NUM_THREADS) "
                "and CUDA_VISIBLE_DEVICES"
            )


def _check_logging(node: Any, path: str) -> None:
    """``()`` factories, ``class`` names and ``ext://`` values of a logging dictConfig."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = _join(path, key)
            if key in ("()", "class", "_target_"):
                if not (
                    isinstance(value, str)
                    and DOTTED.match(value)
                    and (value.startswith(LOGGING_PREFIXES) or user_allowed(value))
                ):
                    raise ConfigError(
                        f"{where}={value!r} is not allowed; a logging config may name standard logging "
                        f"classes (logging.StreamHandler, logging.Formatter, ...) or hydra/job_logging=disabled"
                    )
            elif key == ".":
                raise ConfigError(f"{where} is not allowed in a logging config")
            _check_logging(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_logging(value, f"{path}[{i}]")
    elif isinstance(node, str) and re.match(r"^\s*(ext|cfg)://", node) and node.strip() not in LOGGING_EXT:
        raise ConfigError(f"{path}={node!r} is not allowed; allowed: {', '.join(LOGGING_EXT)}")


#: pseudo file systems whose "files" are the system's state (environment, memory, devices)
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")


def check_data_path(path: str, base_dir: str | None = None, key: str = "data.path") -> None:
    """Refuse a data path that resolves to a system file, device, FIFO or socket (a missing file is
    left to the data source, which says where it looked)."""
    import stat

    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = Path(base_dir or os.getcwd()) / p
    real = Path(os.path.realpath(p))
    if any(real == Path(root) or Path(root) in real.parents for root in SPECIAL_ROOTS):
        raise ConfigError(f"{key}={path} is a system file ({real}); allowed: a regular data file")
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ConfigError(
            f"{key}={path} is not a regular file (a device, FIFO or socket); allowed: a data file"
        )


def check_yaml_file(path: Path, what: str = "config file") -> None:
    """Refuse a file too big, with too many keys, or with YAML anchors/aliases, before Hydra parses it."""
    import yaml

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from exc
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {path} is {size:,} bytes; allowed: at most {MAX_FILE_BYTES:,} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not readable UTF-8 text: {exc}") from exc
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    keys = 0
    try:
        for token in yaml.scan(text, Loader=loader):
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                raise ConfigError(
                    f"{what} {path} uses YAML anchors/aliases (&name, *name); not allowed in config "
                    "files: repeat the value or use ${key} interpolation"
                )
            if isinstance(token, yaml.KeyToken):
                keys += 1
                if keys > MAX_KEYS:
                    raise ConfigError(
                        f"{what} {path} has more than {MAX_KEYS:,} keys; allowed: at most {MAX_KEYS:,}"
                    )
        for _ in yaml.parse(text, Loader=loader):  # the structure, without building anything
            pass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{what} {path} is not valid YAML{where}: {problem}") from exc


def check_override(text: str) -> None:
    if len(text) > MAX_OVERRIDE_CHARS:
        key = text.split("=", 1)[0][:60]
        raise ConfigError(
            f"the override for {key} is {len(text):,} characters; allowed: at most {MAX_OVERRIDE_CHARS:,}"
        )
