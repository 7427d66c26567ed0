"""Learning curves (true episodic return vs environment steps) from ``metrics.csv`` files.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "m.csv").write_text(chr(10).join(["step,true_return", "100,-5", "200,-3", "300,"]))
>>> load_curve(d / "m.csv")
(array([100., 200.]), array([-5., -3.]))
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def load_curve(path: Path, column: str = "true_return") -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of one metrics CSV, rows without a value skipped."""
    steps, vals = [], []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            v = row.get(column, "")
            if v not in ("", None) and row.get("step"):
                steps.append(float(row["step"]))
                vals.append(float(v))
    return np.array(steps), np.array(vals)


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (same length; the first points average what exists)."""
    if window <= 1 or len(y) == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_learning_curves(
    runs: Mapping[str, Path | list[Path]],
    out: Path,
    *,
    title: str = "",
    column: str = "true_return",
    smooth_window: int = 5,
    hlines: Mapping[str, float] | None = None,
) -> Path:
    """One line per label (mean over its runs, band = min..max over seeds); save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, paths in runs.items():
        paths = [paths] if isinstance(paths, Path | str) else paths
        curves = [load_curve(Path(p), column) for p in paths]
        curves = [(s, smooth(v, smooth_window)) for s, v in curves if len(s)]
        if not curves:
            continue
        grid = curves[0][0]
        ys = np.stack([np.interp(grid, s, v) for s, v in curves])
        (line,) = ax.plot(grid, ys.mean(0), label=label)
        if len(curves) > 1:
            ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    for label, y in (hlines or {}).items():
        ax.axhline(y, ls="--", lw=1, color="grey")
        ax.annotate(label, (ax.get_xlim()[0], y), fontsize=8, va="bottom", color="grey")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
