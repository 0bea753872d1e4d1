"""A small on-disk cache of plain JSON values, under the user's cache folder.

``CAUSAL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/causal-cli``, else ``~/.cache/causal-cli``. An entry is
a JSON file named by the SHA-256 of its key, holding the key itself and the value: JSON, never pickle,
so a cache file can never run code. Entries are written atomically (a temporary file renamed into
place); an entry that is missing, unreadable, corrupt, or written for another key reads as a miss, and
a cache folder that cannot be written only means nothing is cached.
"""

from __future__ import annotations

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


def load(namespace: str, key: dict[str, Any]) -> Any | None:
    """The value stored for ``key``, or None (a miss) when there is none or it cannot be read."""
    try:
        with open(entry_path(namespace, key), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != json.loads(_canonical(key)):
        return None
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


def _canonical(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
