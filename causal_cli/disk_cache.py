"""A small on-disk cache of plain JSON values, under the user's cache folder.

``CAUSAL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/causal-cli``, else ``~/.cache/causal-cli``. An entry is
a JSON file named by the SHA-256 of its key, holding the key itself and the value: JSON, never pickle,
so a cache file can never run code. Entries are written atomically (a temporary file renamed into
place); an entry that is missing, unreadable, corrupt, or written for another key reads as a miss, and
a cache folder that cannot be written only means nothing is cached. A namespace whose entries are many
and large (pictures) keeps only its most recently used ones (:func:`prune`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    if os.environ.get("CAUSAL_CACHE_DIR"):
        return Path(os.environ["CAUSAL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "causal-cli"


def entry_path(namespace: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()
    return cache_dir() / namespace / f"{digest}.json"


def load(namespace: str, key: dict[str, Any], touch: bool = False) -> Any | None:
    """The value stored for ``key``, or None (a miss) when there is none or it cannot be read.

    ``touch``: mark the entry as just used, so :func:`prune` keeps it."""
    path = entry_path(namespace, key)
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    # compared as canonical text: a NaN in a key (a picture's inputs) equals itself there, not as a float
    if not isinstance(entry, dict) or _canonical(entry.get("key")) != _canonical(key):
        return None
    if touch:
        with contextlib.suppress(OSError):
            os.utime(path)
    return entry.get("value")


def store(namespace: str, key: dict[str, Any], value: Any) -> bool:
    """Write ``value`` for ``key`` atomically; False when the cache folder cannot be written."""
    path = entry_path(namespace, key)
    text = json.dumps({"key": json.loads(_canonical(key)), "value": value}, sort_keys=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def prune(namespace: str, keep: int) -> None:
    """Keep the ``keep`` most recently used entries of ``namespace``; remove the others (best effort)."""
    folder = cache_dir() / namespace
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".tmp-")]
    except OSError:
        return
    if len(names) <= keep:
        return
    used = {}
    for name in names:
        with contextlib.suppress(OSError):
            used[name] = os.stat(folder / name).st_mtime
    for name in sorted(used, key=used.get, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


def _canonical(key: Any) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
