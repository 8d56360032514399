"""Ablations and stability of the method for one language: train variants with one step budget, score each.

Every variant is a target stage trained by :func:`edgeadapt.training.stages.train` on top of one shared source
run, with settings overridden (no prompt, no alignment, no L2, no synthetic data, prompt length k, lambda,
synthetic ratio); variants whose settings coincide (``lambda0`` and ``no_align``, ``ratio0.4`` and ``full``...)
are trained once. ``--seeds`` trains the full method with each seed and, as the paper's baseline, full
fine-tuning of the whole backbone (``--adapter full``, no prompt) with the same data, losses, step budget and
seeds; the stability score (:mod:`edgeadapt.evaluation.stability`) of both is reported side by side. A finished
variant run with the same settings is reused, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeadapt.bench.machine import describe_machine
from edgeadapt.bench.results import DEFAULT_RESULTS_DIR, SUMMARY_FILE, merge_summary, read_json, write_result
from edgeadapt.errors import EdgeAdaptError

FULL_FINETUNE = {"adapter": "full", "prompt_len": 0}
"""The paper's baseline (variant ``finetune``, and the stability seeds): every encoder weight trained, no prompt."""

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_prompt": {"prompt_len": 0},
    "prompt_shift": {"prompt_positions": "shift"},
    "no_align": {"align_weight": 0.0},
    "no_l2": {"l2_weight": 0.0},
    "no_synthetic": {"synthetic_ratio": 0.0},
    "finetune": FULL_FINETUNE,
    **{f"k{k}": {"prompt_len": k} for k in (5, 10, 20, 50)},
    **{f"lambda{w:g}": {"align_weight": w} for w in (0.0, 0.1, 0.5, 1.0, 2.0)},
    **{f"ratio{r:g}": {"synthetic_ratio": r} for r in (0.0, 0.2, 0.4, 0.6)},
}
SWEEPS = {"prompt_len": "k", "align_weight": "lambda", "synthetic_ratio": "ratio"}
"""Setting -> prefix of the variants that sweep it (each sweep is plotted against F1)."""

DEFAULT_EVAL = {"yo": ["afriqa:yo:test"], "sw": ["afriqa:sw:test", "tydiqa:sw:dev"]}

Step = Callable[[str], None]


@dataclass
class AblationSettings:
    """Which variants, seeds, step budget and evaluation sets."""

    lang: str
    variants: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    max_steps: int = 140
    datasets: list[str] = field(default_factory=list)
    max_examples: int | None = None
    batch_size: int | None = None
    max_length: int | None = None
    doc_stride: int | None = None

    def chosen(self) -> list[str]:
        names = self.variants or list(VARIANTS)
        unknown = [name for name in names if name not in VARIANTS]
        if unknown:
            raise EdgeAdaptError(f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
        if self.max_steps < 1:
            raise EdgeAdaptError("--max-steps must be at least 1")
        return list(dict.fromkeys(names))


def base_config(settings: AblationSettings, backbone: str):
    """The full method's settings for this sweep (the training defaults with the paper's synthetic share and
    alignment weight, the sweep's budget and sizes)."""
    from edgeadapt.training.config import PAPER_ALIGN_WEIGHT, PAPER_SYNTHETIC_RATIO, TrainConfig

    config = TrainConfig(
        lang=settings.lang,
        stage="target",
        backbone=backbone,
        max_steps=settings.max_steps,
        synthetic_ratio=PAPER_SYNTHETIC_RATIO,  # the paper's method: each ablation takes one part away
        align_weight=PAPER_ALIGN_WEIGHT,
    )
    sizes = {"batch_size": settings.batch_size, "max_length": settings.max_length, "doc_stride": settings.doc_stride}
    return replace(config, **{key: value for key, value in sizes.items() if value is not None})


def _key(config) -> str:
    import json

    return json.dumps({k: v for k, v in config.to_json().items() if k != "save_every"}, sort_keys=True)


def plan_runs(settings: AblationSettings, backbone: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(run name -> TrainConfig) of the runs to train, and (variant -> run name) for every variant and seed."""
    base = base_config(settings, backbone)
    configs: dict[str, Any] = {}
    owner: dict[str, str] = {}
    by_key: dict[str, str] = {}
    wanted = [(name, replace(base, **VARIANTS[name])) for name in settings.chosen()]
    wanted += [(f"full_seed{seed}", replace(base, seed=seed)) for seed in settings.seeds]
    wanted += [(f"finetune_seed{seed}", replace(base, seed=seed, **FULL_FINETUNE)) for seed in settings.seeds]
    for name, config in wanted:
        key = _key(config)
        if key not in by_key:
            by_key[key] = name
            configs[name] = config
        owner[name] = by_key[key]
    return configs, owner


def finished_with(run_dir: Path, config) -> bool:
    from edgeadapt.training.config import TrainConfig
    from edgeadapt.training.runs import RUN_FILE, read_run

    if not (run_dir / RUN_FILE).exists():
        return False
    recorded = TrainConfig.from_json(read_run(run_dir).get("config", {})).canonical()
    return not recorded.differences(config.canonical(), ignore=("save_every", "backbone"))


def train_variants(
    configs: dict[str, Any], work: Path, source: Path, data_dir: str | None, step: Step
) -> dict[str, dict[str, Any]]:
    """Train (or reuse) every planned run; name -> {run, trained, seconds, final_losses}."""
    from edgeadapt.training.runs import read_run
    from edgeadapt.training.stages import train

    done: dict[str, dict[str, Any]] = {}
    for index, (name, config) in enumerate(configs.items(), start=1):
        run_dir = work / name
        reused = finished_with(run_dir, config)
        if reused:
            step(f"[{index}/{len(configs)}] {name}: reusing the finished run in {run_dir}")
        else:
            step(f"[{index}/{len(configs)}] {name}: training {config.max_steps} steps")
            train(config, data_dir=data_dir, run_dir=run_dir, source_dir=source)
        info = read_run(run_dir)
        done[name] = {
            "run": str(run_dir),
            "reused": reused,
            "train_seconds": info.get("train_seconds"),
            "final_losses": info.get("final_losses"),
        }
    return done


def _seed_overrides(config, name: str) -> dict[str, Any]:
    """The settings a seed run changes: its seed (and, for full fine-tuning, the baseline's settings)."""
    return {"seed": config.seed, **(FULL_FINETUNE if name.startswith("finetune_seed") else {})}


def _scores_by_run(report) -> dict[str, dict[str, dict[str, float]]]:
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for row in report.rows:
        scores.setdefault(row.run, {})[row.dataset] = {"em": row.em, "f1": row.f1, "count": row.count}
    return scores


def sweep_points(variants: dict[str, dict[str, Any]], setting: str) -> list[tuple[float, str]]:
    """(value, variant) of the variants that sweep ``setting``, sorted by value."""
    prefix = SWEEPS[setting]
    points = [
        (float(VARIANTS[name][setting]), name)
        for name in variants
        if name.startswith(prefix) and setting in VARIANTS.get(name, {}) and name[len(prefix) :][:1].isdigit()
    ]
    return sorted(points)


def plot_sweep(variants: dict[str, dict[str, Any]], setting: str, path: Path, lang: str) -> Path | None:
    """F1 against the swept setting, one line per dataset; None when fewer than two points exist."""
    points = sweep_points(variants, setting)
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeadapt.fileio import atomic_path

    figure, axis = plt.subplots(figsize=(5, 3.5))
    datasets = list(variants[points[0][1]]["scores"])
    for spec in datasets:
        axis.plot([v for v, _ in points], [variants[n]["scores"][spec]["f1"] for _, n in points], "o-", label=spec)
    axis.set_xlabel({"synthetic_ratio": "synthetic share of each batch", "align_weight": "lambda"}.get(setting, "k"))
    axis.set_ylabel("F1")
    axis.set_title(f"{lang}: F1 against {setting}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
    return path


def _sweep_identity(result: dict[str, Any]) -> dict[str, Any]:
    """What must match for two ablation results to share one table: budget, sets, base settings, source, backbone."""
    settings = {key: value for key, value in result.get("settings", {}).items() if key != "seeds"}
    backbone = result.get("backbone", {}).get("fingerprint")
    return {"settings": settings, "source_run": result.get("source_run"), "backbone": backbone}


def _is_seed_run(name: str) -> bool:
    return name.startswith(("full_seed", "finetune_seed"))


def carry_earlier(previous: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Fold into ``result`` what an earlier run of the same sweep measured and this one did not; the names kept.

    Variants are kept when the budget, evaluation sets, base settings, source run and backbone all match; seed runs
    and the stability scores are kept only when this run measured no seeds (they belong to one set of seeds).
    """
    if not previous.get("variants") or _sweep_identity(previous) != _sweep_identity(result):
        return []
    has_seeds = bool(result["settings"]["seeds"])
    fresh = result["variants"]
    carried = [name for name in previous["variants"] if name not in fresh and not (has_seeds and _is_seed_run(name))]
    merged = {**{name: previous["variants"][name] for name in carried}, **result["variants"]}
    order = list(VARIANTS)
    result["variants"] = {
        name: merged[name] for name in sorted(merged, key=lambda n: (order.index(n) if n in order else len(order), n))
    }
    if not has_seeds and previous.get("stability"):
        result["stability"] = previous["stability"]
    if carried:
        result["carried"] = {"variants": carried, "from_command": previous.get("command", "")}
    return carried


def run_ablations(
    settings: AblationSettings,
    *,
    source_run: str = "en",
    backbone: str | None = None,
    out_dir: Path = DEFAULT_RESULTS_DIR,
    work: Path | None = None,
    workdir: str | None = None,
    data_dir: str | None = None,
    command: str = "",
    on_step: Step | None = None,
) -> dict[str, Any]:
    """Train and score every variant; write ``ablations-<lang>.json`` and plots; merge the summary."""
    from edgeadapt import paths
    from edgeadapt.data.languages import normalize_lang
    from edgeadapt.evaluation.runner import evaluate_runs, resolve_run_dir
    from edgeadapt.training.runs import read_run

    step = on_step or (lambda message: None)
    lang = normalize_lang(settings.lang).code
    settings = replace(settings, lang=lang)
    source = resolve_run_dir(source_run, workdir).resolve()
    source_info = read_run(source)
    if source_info["stage"] != "source":
        raise EdgeAdaptError(f"--source-run {source} is a {source_info['stage']} run: give the English source run")
    datasets = settings.datasets or DEFAULT_EVAL.get(lang, [])
    if not datasets:
        raise EdgeAdaptError(f"no default evaluation set for '{lang}': pass --data (e.g. --data xquad:{lang})")
    machine = describe_machine()
    configs, owner = plan_runs(settings, backbone or source_info["backbone"]["path"])
    work_dir = Path(work) if work is not None else paths.workdir(workdir) / "ablations" / lang
    work_dir.mkdir(parents=True, exist_ok=True)
    trained = train_variants(configs, work_dir, source, data_dir, step)
    seed_runs = list(dict.fromkeys(owner[name] for name in owner if name.startswith("full_seed")))
    finetune_runs = list(dict.fromkeys(owner[name] for name in owner if name.startswith("finetune_seed")))
    plain_runs = [name for name in configs if name not in seed_runs + finetune_runs]
    scores: dict[str, dict[str, dict[str, float]]] = {}
    options = {"data_dir": data_dir, "max_examples": settings.max_examples, "show_progress": True}
    if plain_runs:
        step(f"scoring {len(plain_runs)} variant run(s) on {', '.join(datasets)}")
        scores.update(_scores_by_run(evaluate_runs([trained[n]["run"] for n in plain_runs], datasets, **options)))
    stability: dict[str, Any] = {}
    finetune_stability: dict[str, Any] = {}
    for label, names, into in (
        ("method", seed_runs, stability),
        ("full fine-tuning", finetune_runs, finetune_stability),
    ):
        if names:
            step(f"scoring {len(names)} {label} seed run(s) and their stability")
            report = evaluate_runs([trained[n]["run"] for n in names], datasets, **options)
            scores.update(_scores_by_run(report))
            into.update({spec: value.to_dict() for spec, value in report.stability.items()})
    variants = {
        name: {
            "overrides": VARIANTS.get(name, _seed_overrides(configs[owner[name]], name)),
            "same_run_as": owner[name] if owner[name] != name else None,
            **trained[owner[name]],
            "scores": scores[trained[owner[name]]["run"]],
        }
        for name in owner
    }
    result = {
        "benchmark": "ablations",
        "lang": lang,
        "command": command,
        "machine": machine,
        "backbone": source_info["backbone"],
        "source_run": str(source),
        "settings": {
            "max_steps": settings.max_steps,
            "datasets": datasets,
            "max_examples": settings.max_examples,
            "seeds": settings.seeds,
            "base_config": base_config(settings, backbone or source_info["backbone"]["path"]).to_json(),
        },
        "variants": variants,
        "stability": {
            "method": stability or None,
            "full_finetune": finetune_stability or None,
            "seeds": settings.seeds,
            "full_finetune_settings": FULL_FINETUNE,
        },
    }
    carried = carry_earlier(read_json(Path(out_dir) / f"ablations-{lang}.json"), result)
    if carried:
        step(f"kept {len(carried)} variant(s) measured earlier with the same settings: {', '.join(carried)}")
    result["plots"] = {}
    for setting in SWEEPS:
        plotted = plot_sweep(result["variants"], setting, Path(out_dir) / f"ablations-{lang}-{setting}.png", lang)
        if plotted is not None:
            result["plots"][setting] = plotted.name
    write_result(Path(out_dir), f"ablations-{lang}", result)
    summary = read_json(Path(out_dir) / SUMMARY_FILE)
    ablations = summary.get("ablations", {})
    ablations[lang] = {
        name: {spec: s["f1"] for spec, s in v["scores"].items()} for name, v in result["variants"].items()
    }
    overall = summary.get("stability", {})
    overall = {key: dict(overall.get(key) or {}) for key in ("method", "full_finetune")}
    for key in ("method", "full_finetune"):
        measured = result["stability"][key]
        if measured:
            overall[key][lang] = {spec: value["score"] for spec, value in measured.items()}
    merge_summary(Path(out_dir), f"ablations-{lang}", {"ablations": ablations, "stability": overall}, machine)
    return result
