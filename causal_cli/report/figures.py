"""Figure set-up shared by every picture (plots, heterogeneity, sweep): size, resolution, atomic PNGs."""

from __future__ import annotations

from pathlib import Path

DPI = 110


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> Path:
    """Render to memory, then write atomically: a crash never leaves a half-written PNG."""
    import io

    from causal_cli.report.files import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def units_suffix(units: str) -> str:
    return f" ({units})" if units else ""
