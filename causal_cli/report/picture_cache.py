"""Pictures already drawn, kept by what they were drawn from: a repeat run copies them instead of drawing.

A picture's PNG bytes are a pure function of its drawing function's inputs (plain data from
``results.json`` and the CSVs beside it), the drawing code and the rendering stack (matplotlib, Pillow,
NumPy, the matplotlibrc files matplotlib would read). The cache key holds all of them, so a hit writes
the bytes drawing would have written; anything else (inputs that are not plain JSON data, a cache folder
that cannot be read or written) just draws. Matplotlib is not imported on a hit: a repeat run of the same
study (or ``causal report`` of an unchanged folder) skips its import (~0.3 s) and the drawing (~0.1-0.2 s
per picture). graph.png depends only on the graph, so every run with the same graph hits it.

Entries live in the disk cache (:mod:`causal_cli.disk_cache`, namespace ``pictures``), base64 in JSON;
only the :data:`KEEP` most recently used are kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

NAMESPACE = "pictures"
#: most recently used pictures kept (a default run draws 4, of ~30-80 kB each)
KEEP = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the modules whose code draws the pictures (graph.py: the roles that colour graph.png), relative to the
#: package: a change to any of them is a new key
DRAWING_MODULES = ("report/plots.py", "report/figures.py", "report/heterogeneity.py", "graph.py")


def draw(name: str, function: Callable[..., Path | None], args: tuple, path: Path) -> Path | None:
    """``function(*args, path)``, or the bytes it wrote before for the same key -> the path, or None
    when ``function`` drew nothing."""
    from causal_cli import disk_cache

    key = picture_key(name, function, args)
    if key is not None:
        data = _decode(disk_cache.load(NAMESPACE, key, touch=True))
        if data is not None:
            from causal_cli.report.files import atomic_write_bytes

            atomic_write_bytes(Path(path), data)
            return Path(path)
    written = function(*args, path)
    if written is not None and key is not None:
        encoded = base64.b64encode(Path(written).read_bytes()).decode("ascii")
        if disk_cache.store(NAMESPACE, key, encoded):
            disk_cache.prune(NAMESPACE, KEEP)
    return written


def picture_key(name: str, function: Callable, args: tuple) -> dict[str, Any] | None:
    """Everything the picture's bytes depend on; None when the inputs are not plain JSON data."""
    try:
        inputs = json.loads(json.dumps(list(args), allow_nan=True))
    except (TypeError, ValueError):
        return None
    return {
        "picture": name,
        "function": f"{function.__module__}.{function.__qualname__}",
        "inputs": inputs,
        "renderer": renderer(),
        "matplotlibrc": rc_files(),  # not kept per process: they depend on the working folder
        "fonts": font_lists(),
        "rc_in_process": rc_in_process(),
    }


@lru_cache(maxsize=1)
def renderer() -> dict[str, Any]:
    """The drawing code and the libraries that lay out, render and encode (their versions; none imported)."""
    from importlib.metadata import PackageNotFoundError, version

    import causal_cli

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    here = Path(causal_cli.__file__).resolve().parent
    code = hashlib.sha256()
    for module in DRAWING_MODULES:
        code.update((here / module).read_bytes())
    return {
        "causal_cli": causal_cli.__version__,
        "code": code.hexdigest(),
        "matplotlib": installed("matplotlib"),
        "pillow": installed("pillow"),
        "numpy": installed("numpy"),
        "networkx": installed("networkx"),
    }


def rc_files() -> dict[str, str]:
    """sha256 of every matplotlibrc matplotlib could read (``matplotlib_fname``'s candidates, in its order)."""
    found = {}
    for candidate in _rc_candidates():
        try:
            found[candidate] = hashlib.sha256(Path(candidate).read_bytes()).hexdigest()
        except OSError:
            continue
    return found


def font_lists() -> dict[str, list[int]]:
    """Size and time of matplotlib's font list (the fonts it chose from: a font installed since it was
    built can change the glyphs), found as ``matplotlib.get_cachedir`` would, without importing it."""
    folder = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "matplotlib"
    )
    found = {}
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("fontlist-") and n.endswith(".json"))
    except OSError:
        return found
    for name in names:
        try:
            stat = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        found[name] = [stat.st_size, stat.st_mtime_ns]
    return found


def _rc_candidates() -> list[str]:
    home = os.path.expanduser("~")
    candidates = [os.path.join(os.getcwd(), "matplotlibrc")]
    if os.environ.get("MATPLOTLIBRC"):
        rc = os.environ["MATPLOTLIBRC"]
        candidates += [rc, os.path.join(rc, "matplotlibrc")]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    for folder in (os.environ.get("MPLCONFIGDIR"), os.path.join(config, "matplotlib")):
        if folder:
            candidates.append(os.path.join(folder, "matplotlibrc"))
    return candidates


def rc_in_process() -> str | None:
    """The rcParams this process set beyond its matplotlibrc files (a notebook's), when matplotlib is
    imported; None when there are none (the ``backend`` does not change an Agg picture)."""
    matplotlib = sys.modules.get("matplotlib")
    if getattr(matplotlib, "rcParams", None) is None:
        return None

    def settings(params) -> dict[str, Any]:
        # dict's own items: RcParams' lookup of ``backend`` would resolve it (importing pyplot)
        return {k: v for k, v in dict.items(params) if k != "backend"}

    current = settings(matplotlib.rcParams)
    if current == settings(matplotlib.rc_params()):
        return None
    return hashlib.sha256(repr(sorted((k, repr(v)) for k, v in current.items())).encode()).hexdigest()


def _decode(value) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        data = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return data if data.startswith(PNG_SIGNATURE) else None
