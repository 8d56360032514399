"""What a run leaves for people: the loss curves as a PNG and a short summary of the last steps."""

from __future__ import annotations

from pathlib import Path

from edgeadapt.fileio import atomic_path

CURVES_FILE = "curves.png"
LOSS_PARTS = ("total", "task", "align", "l2")


def recent_means(history: list[dict[str, float]], window: int = 20) -> dict[str, float]:
    """Mean of each loss part over the last ``window`` steps."""
    rows = history[-window:]
    out: dict[str, float] = {}
    for part in LOSS_PARTS:
        values = [r[part] for r in rows if part in r]
        if values:
            out[part] = sum(values) / len(values)
    return out


def plot_curves(history: list[dict[str, float]], path: Path, title: str) -> None:
    """One panel per loss part against the step (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in LOSS_PARTS if any(p in r for r in history)]
    if not parts:
        return
    fig, axes = plt.subplots(1, len(parts), figsize=(4 * len(parts), 3.2), squeeze=False)
    for axis, part in zip(axes[0], parts, strict=True):
        steps = [r["step"] for r in history if part in r]
        axis.plot(steps, [r[part] for r in history if part in r], linewidth=1)
        axis.set_title(part)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
