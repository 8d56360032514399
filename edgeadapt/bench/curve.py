"""Learning curves of source stages: F1 on each evaluation set against CPU minutes, from the runs' evals.jsonl.

Several runs (e.g. full fine-tuning and a task LoRA) go into one plot, one line style per run and one colour per
set, so recipes compare at equal CPU time. The JSON keeps every row; summary.json gets ``source_stage.curve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeadapt.errors import EdgeAdaptError


@dataclass(frozen=True)
class RunCurve:
    """One run's evaluation rows and what made them."""

    name: str
    run_dir: str
    source_adapter: str
    compute_dtype: str
    steps: int
    batch_size: int
    kept_step: int | None
    rows: list[dict[str, Any]]
    recipe: dict[str, Any]  # a finished run's settings, data and plan (:func:`_recipe`); empty while training

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run_dir": self.run_dir,
            "source_adapter": self.source_adapter,
            "compute_dtype": self.compute_dtype,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "kept_step": self.kept_step,
            "points": [
                {
                    "step": row["step"],
                    "windows": row["step"] * self.batch_size,
                    "cpu_minutes": row["cpu_minutes"],
                    "train_minutes": row["train_minutes"],
                    "f1": {spec: scores["f1"] for spec, scores in row["scores"].items()},
                    "exact_match": {spec: scores["exact_match"] for spec, scores in row["scores"].items()},
                }
                for row in self.rows
            ],
        }


def read_curve(run_dir: Path, name: str | None = None) -> RunCurve:
    """A finished (or running) source run's curve."""
    from edgeadapt.training.checkpoint import read_checkpoint
    from edgeadapt.training.config import TrainConfig
    from edgeadapt.training.periodic_eval import EVALS_FILE, read_evals
    from edgeadapt.training.runs import RUN_FILE, read_run

    run_dir = Path(run_dir)
    if not (run_dir / EVALS_FILE).is_file():
        raise EdgeAdaptError(f"{run_dir} has no {EVALS_FILE}: train it with --eval-data (the source stage's default)")
    rows = read_evals(run_dir, upto=10**9)
    if (run_dir / RUN_FILE).is_file():
        info = read_run(run_dir)
        config = TrainConfig.from_json(info["config"])
        kept = (info.get("evaluation") or {}).get("kept") or {}
        steps, dtype, kept_step = info["steps"], info.get("compute_dtype", "float32"), kept.get("step")
        recipe = _recipe(info)
    else:  # still training: its checkpoint holds the settings
        checkpoint = read_checkpoint(run_dir)
        if checkpoint is None:
            raise EdgeAdaptError(f"{run_dir} is neither a finished run nor a run in progress")
        config = TrainConfig.from_json(checkpoint.config)
        steps, dtype, kept_step, recipe = config.max_steps or 0, config.precision, None, {}
    return RunCurve(
        name or run_dir.name, str(run_dir), config.source_adapter, dtype, steps, config.batch_size, kept_step, rows,
        recipe,
    )  # fmt: skip


def read_curve_file(path: Path, name: str | None = None, which: str | None = None) -> RunCurve:
    """A run's curve from a curve JSON this command wrote (``source_curve.json``), for plotting a run whose
    directory is gone next to new ones: the run called ``which`` there (default: ``name``, or the file's only
    run), shown as ``name``. Its recipe comes from the summary.json beside the file, where that has it."""
    from edgeadapt.bench.results import read_json

    path = Path(path)
    if not path.is_file():
        raise EdgeAdaptError(f"curve file not found: {path}")
    runs = read_json(path).get("runs") or []
    wanted = which or name
    chosen = [run for run in runs if run.get("name") == wanted] or (runs if len(runs) == 1 and not which else [])
    if not chosen:
        names = ", ".join(str(run.get("name")) for run in runs) or "none"
        raise EdgeAdaptError(f"{path} has no curve called {wanted!r} (it has: {names}): pass NAME=FILE#RUN")
    run = chosen[0]
    rows = [
        {
            "step": point["step"],
            "train_minutes": point["train_minutes"],
            "cpu_minutes": point["cpu_minutes"],
            "scores": {spec: {"f1": f1, "exact_match": point["exact_match"][spec]} for spec, f1 in point["f1"].items()},
        }
        for point in run["points"]
    ]
    recipe = read_json(path.parent / "summary.json").get("source_stage", {}).get("recipe", {}).get(run["name"], {})
    return RunCurve(
        name or run["name"], run["run_dir"], run["source_adapter"], run["compute_dtype"], run["steps"],
        run["batch_size"], run["kept_step"], rows, recipe,
    )  # fmt: skip


def plot_learning_curves(curves: list[RunCurve], path: Path, title: str) -> None:
    """F1 against CPU minutes: one colour per evaluation set, one line style per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeadapt.fileio import atomic_path

    specs = sorted({spec for curve in curves for row in curve.rows for spec in row["scores"]})
    colours = {spec: f"C{i}" for i, spec in enumerate(specs)}
    styles = ["-", "--", ":", "-."]
    fig, axis = plt.subplots(figsize=(8, 4.5))
    for index, curve in enumerate(curves):
        for spec in specs:
            points = [(row["cpu_minutes"], row["scores"][spec]["f1"]) for row in curve.rows if spec in row["scores"]]
            if points:
                axis.plot(*zip(*points, strict=True), styles[index % len(styles)], marker="o", markersize=3,
                          color=colours[spec], label=f"{spec} ({curve.name})")  # fmt: skip
    axis.set_xlabel("CPU minutes of training (evaluation excluded)")
    axis.set_ylabel("F1")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _recipe(info: dict[str, Any]) -> dict[str, Any]:
    """What trained a finished source run: its settings, data, counts and time-budget plan (from its run.json)."""
    from edgeadapt.training.config import TrainConfig

    config = info.get("config", {})
    keys = (
        "source_adapter",
        "lr",
        "batch_size",
        "max_length",
        "doc_stride",
        "precision",
        "length_grouping",
        "time_budget",
        "max_steps",
        "warmup_ratio",
        "l2_weight",
        "eval_data",
        "eval_max_examples",
        "seed",
    )
    return {
        "settings": {key: config.get(key) for key in keys},
        "learning_rate": TrainConfig.from_json(config).learning_rate,
        "compute_dtype": info.get("compute_dtype"),
        "steps": info.get("steps"),
        "train": [entry["spec"] for entry in info.get("data", {}).get("train", [])],
        "counts": info.get("data", {}).get("counts"),
        "time_budget": info.get("time_budget"),
        "kept_step": (info.get("evaluation") or {}).get("kept", {}).get("step"),
    }  # fmt: skip


def _read_any(label: str, where: str) -> RunCurve:
    """A run directory, or ``FILE.json`` / ``FILE.json#RUN`` of an earlier curve."""
    path, _, which = where.partition("#")
    if path.endswith(".json"):
        return read_curve_file(Path(path), label, which or None)
    return read_curve(Path(where), label)


def write_learning_curves(
    runs: list[tuple[str, str | Path]], out_dir: Path, command: str, name: str = "source_curve"
) -> dict[str, Any]:
    """``<name>.json`` and ``<name>.png`` in ``out_dir``; ``source_stage.curve`` in summary.json."""
    from edgeadapt.bench.machine import describe_machine
    from edgeadapt.bench.results import merge_summary, read_json, write_result

    curves = [_read_any(label, str(run_dir)) for label, run_dir in runs]
    machine = describe_machine()
    report = {"command": command, "machine": machine, "runs": [curve.to_dict() for curve in curves]}
    out_dir = Path(out_dir)
    write_result(out_dir, name, report)
    plot_learning_curves(curves, out_dir / f"{name}.png", "source stage: F1 against CPU minutes")
    source_stage = read_json(out_dir / "summary.json").get("source_stage", {})
    source_stage["recipe"] = {curve.name: curve.recipe for curve in curves}
    source_stage["curve"] = {
        "file": f"{name}.json",
        "plot": f"{name}.png",
        "command": command,
        "runs": {
            curve.name: [{"cpu_minutes": p["cpu_minutes"], "step": p["step"], "f1": p["f1"]}
                         for p in curve.to_dict()["points"]]
            for curve in curves
        },
    }  # fmt: skip
    merge_summary(out_dir, "source_curve", {"source_stage": source_stage}, machine)
    return report
