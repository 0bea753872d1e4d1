"""Where a result came from: tool and library versions, the command line, the git commit, the data hash.

Everything here is cheap: versions come from installed package metadata (nothing is imported),
the commit is read from ``.git`` files (no ``git`` process), and nothing here ever raises.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from causal_cli import __version__

#: distributions whose versions can change a number in the results
PACKAGES = (
    "causal-cli",
    "dowhy",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "networkx",
    "hydra-core",
    "omegaconf",
    "matplotlib",
    "joblib",
    "rich",
)


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    return dict(_package_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Read once per process (each sweep job asked again: ~10 ms of metadata reads per job); the code a
    process runs is the one it imported, whatever is installed later."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _git_dir(start: Path) -> Path | None:
    """The ``.git`` folder of the checkout holding ``start`` (a ``.git`` file points to a worktree's)."""
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                target = Path(text.partition(":")[2].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _read_ref(git_dir: Path, ref: str) -> str | None:
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and not line.startswith(("#", "^")):
                return sha
    return None


def git_info(start: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "branch", "root"}`` of the checkout the tool runs from, or None (never raises)."""
    try:
        start = Path(start or Path(__file__).resolve().parent)
        git_dir = _git_dir(start)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref:"):
            ref = head.partition(":")[2].strip()
            return {
                "commit": _read_ref(git_dir, ref),
                "branch": ref.rpartition("/")[2],
                "root": str(git_dir.parent),
            }
        return {"commit": head, "branch": None, "root": str(git_dir.parent)}
    except (OSError, UnicodeDecodeError):
        return None


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (quoted so it can be pasted back into a shell)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["causal", "run", *args])


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance block of ``results.json``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return {
        "tool_version": __version__,
        "python": platform.python_version(),
        "packages": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
        "command": command_line(args),
        "argv": ["causal", "run", *args],
        "cwd": os.getcwd(),
        "git": git_info(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


#: rows hashed at a time: each row's hash depends on that row only, so the digest is the one of a single
#: pass, without its whole-column temporaries (~1.2x the columns' size at 10M rows)
HASH_BLOCK_ROWS = 1 << 20


def frame_hash(frame, columns=None) -> str:
    """sha256 of a frame's content (column names, dtypes and values, in row order)."""
    import pandas as pd

    columns = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(frame[c].dtype)] for c in columns]).encode())
    for start in range(0, len(frame) if columns else 0, HASH_BLOCK_ROWS):
        block = frame.iloc[start : start + HASH_BLOCK_ROWS][columns]
        digest.update(pd.util.hash_pandas_object(block, index=False).to_numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def source_files(data_cfg, base_dir: str | None, graph_cfg=None) -> dict[str, str]:
    """``{configured key: absolute path}`` of every local file a data source reads, and the graph's
    ``graph.file`` when ``graph_cfg`` names one."""
    from causal_cli.data.tables import resolve_path

    out: dict[str, str] = {}
    graph_file = graph_cfg.get("file") if hasattr(graph_cfg, "get") else None
    if isinstance(graph_file, str) and graph_file.strip():
        from causal_cli.graph import graph_file_path

        out["graph.file"] = str(Path(graph_file_path(graph_file, base_dir)).resolve())
    if data_cfg is None:
        return out
    path = data_cfg.get("path") if hasattr(data_cfg, "get") else None
    if path:
        out["data.path"] = str(resolve_path(str(path), base_dir))
    url = data_cfg.get("url") if hasattr(data_cfg, "get") else None
    if isinstance(url, str) and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        out["data.url"] = str(resolve_path(url[len("sqlite:///") :], base_dir))
    return out


def source_file_hashes(data_cfg, base_dir: str | None, graph_cfg=None) -> dict[str, dict[str, str]]:
    """``{key: {"path", "sha256"}}`` for the data source's local files (and ``graph.file``) that exist."""
    out = {}
    for key, path in source_files(data_cfg, base_dir, graph_cfg).items():
        if Path(path).is_file():
            out[key] = {"path": path, "sha256": file_hash(path)}
    return out
