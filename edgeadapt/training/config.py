"""Every setting of a training stage, as one dataclass serialised into ``run.json``.

The defaults are sized so that the no-flag run (English source stage, then Yoruba) finishes in
about 35 minutes on 2 CPU cores with the default backbone (see docs/training.md for the arithmetic).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from edgeadapt.tasks import PAIR_MAX_LENGTH
from edgeadapt.windows import TRAIN_MAX_LENGTH, WindowPolicy, default_stride

SOURCE_LANG = "en"
ADAPTER_KINDS = ("lora", "bottleneck", "full")
SOURCE_ADAPTER_KINDS = ("lora", "full")
FREEZE_CHOICES = ("prompt", "adapter")
PRECISIONS = ("auto", "fp32", "bf16")
"""Training compute precision: ``bf16`` autocasts matrix products to bfloat16 (weights, optimizer state and losses
stay fp32); ``auto`` picks bf16 where the CPU has native bf16 (AMX / AVX-512 BF16) or the GPU supports it."""
PROMPT_POSITIONS = ("tail", "shift")
"""Where the soft prompt sits in the position table: ``tail`` (its last k rows; the text keeps the positions it
has without a prompt, as in the source stage) or ``shift`` (positions 0..k-1, the text moved k places on: the
scheme of runs made before ``prompt_positions`` existed, which their run.json lacks)."""

# per-stage step budgets used when neither --max-steps nor --epochs is given
DEFAULT_SOURCE_STEPS = 220
DEFAULT_TARGET_STEPS = 240
# the source stage's default: a wall-clock budget (steps fitted to the machine's measured speed), so the no-flag
# quickstart takes about as long on any machine
DEFAULT_SOURCE_BUDGET = 30 * 60.0
# the whole no-flag run (source stage, then Yoruba) on 2 cores, for --help: 32.2 minutes measured with the 30-minute
# budget on one AMD EPYC, 30.7 with 25 minutes on a slower one (BENCHMARKS.md section 2), so about 36 there
QUICKSTART_MINUTES = 35

# the source task LoRA is merged into the backbone at export, so it may be wide
SOURCE_LORA_TARGETS = ("query", "key", "value", "dense")
# a language LoRA on the attention output and both FFN projections of every layer ("output.dense" is also the
# suffix of "attention.output.dense"; the pooler's "dense", which QA never runs, is left out): 1.8 MB a language at
# rank 8, and +5 F1 (AfriQA yo) / +11.6 (TyDi sw dev) over LoRA on query/value (BENCHMARKS.md 3c)
TARGET_LORA_TARGETS = ("intermediate.dense", "output.dense")

# --adapter bottleneck (language adapter only): the FFN output projection of every layer (BERT / XLM-R names,
# `*` = one name component), r = 16, output scale s = 4 (He et al. 2022's scaled parallel adapter)
BOTTLENECK_TARGETS = ("layer.*.output.dense",)
BOTTLENECK_SIZE = 16
BOTTLENECK_SCALE = 4.0

# the paper's synthetic share of a target batch and alignment weight lambda (arXiv 2507.00601): the defaults
# where a language has no task data of its own (TrainConfig.with_data_mix)
PAPER_SYNTHETIC_RATIO = 0.4
PAPER_ALIGN_WEIGHT = 0.5

# learning rates: the source stage learns QA from scratch; the target stage adjusts a working model
SOURCE_LR = 3e-3
TARGET_LR = 1e-3
# --adapter full (the full fine-tuning baseline): every encoder weight moves, so the usual BERT-size rate
FULL_FINETUNE_LR = 5e-5
# source stage with --adapter full: the transformer layers learn QA (embeddings frozen). Measured at the quickstart's
# 373 steps (BENCHMARKS.md section 2, TyDi en / sw dev while training): 8e-5 54.1 / 60.5 F1, 1.6e-4 60.6 / 65.1,
# 3e-4 62.7 / 67.1, 5e-4 58.9 / 66.8; a small, 384-wide encoder with 4 of 12 layers frozen takes a far higher rate
# than BERT-base
SOURCE_FULL_LR = 3e-4
# the fully fine-tuned source stage keeps the lowest third of the transformer layers as pulled (4 of e5-small's 12):
# no gradient flows through them, a step takes about 3/4 of the time, and in the same time budget it scores higher
# (BENCHMARKS.md section 2); a model of fewer than 3 layers trains them all
SOURCE_FROZEN_SHARE = 3


@dataclass
class TrainConfig:
    """The settings of one stage. ``stage`` is ``source`` for English, ``target`` for any other language."""

    lang: str = "yo"
    stage: str = "target"
    task: str = "qa"
    backbone: str | None = None
    train_data: list[str] = field(default_factory=list)
    leave_out: list[str] = field(default_factory=list)  # source stage: languages whose QA data it must not train on
    parallel_data: list[str] = field(default_factory=list)
    prompt_len: int = 16
    prompt_init: str = "vocab"
    prompt_positions: str = "tail"
    lora_rank: int = 8
    lora_alpha: int | None = None
    lora_targets: list[str] | None = None
    lora_dropout: float = 0.0
    adapter: str = "lora"
    source_adapter: str = "full"
    bottleneck_size: int = BOTTLENECK_SIZE
    bottleneck_scale: float = BOTTLENECK_SCALE
    bottleneck_targets: list[str] | None = None
    align_weight: float | None = None  # None: see with_data_mix
    l2_weight: float = 0.001
    synthetic_ratio: float | None = None  # None: see with_data_mix
    synthetic_generator: str = "code-switch"
    freeze: list[str] = field(default_factory=list)
    frozen_layers: int | None = None  # full fine-tuning: the lowest N layers stay as pulled (see frozen_layer_count)
    max_steps: int | None = None
    epochs: float | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    batch_size: int = 16
    align_batch_size: int = 8
    align_max_length: int = 64
    max_length: int | None = None  # None: TRAIN_MAX_LENGTH (256) for QA, PAIR_MAX_LENGTH (128) for pairs
    doc_stride: int | None = None  # None: edgeadapt.windows.default_stride(max_length), 96 at 256
    negative_window_ratio: float = 0.1
    max_train_examples: int | None = None
    max_synthetic_examples: int = 2000
    seed: int = 13
    save_every: int = 50
    precision: str = "auto"
    length_grouping: bool = True
    time_budget: float | None = None  # seconds; sizes max_steps from the measured step speed
    eval_data: list[str] = field(default_factory=list)
    eval_every: int | None = None
    eval_max_examples: int | None = 300

    def __post_init__(self) -> None:
        if self.max_length is None:  # sentence pairs are short: 128 tokens; QA windows 256
            self.max_length = TRAIN_MAX_LENGTH if self.task == "qa" else PAIR_MAX_LENGTH
        if self.doc_stride is None:  # one rule for every window length, so a default never clashes with --max-length
            self.doc_stride = default_stride(self.max_length)

    @property
    def windows(self) -> WindowPolicy:
        """The training window policy (checked: a bad pair raises a one-line error)."""
        return WindowPolicy.resolve(self.max_length, self.doc_stride, default_length=TRAIN_MAX_LENGTH)

    @property
    def alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_rank

    @property
    def targets(self) -> list[str]:
        """The modules the LoRA adapts: ``lora_targets``, else the stage's default."""
        if self.lora_targets:
            return list(self.lora_targets)
        return list(SOURCE_LORA_TARGETS if self.stage == "source" else TARGET_LORA_TARGETS)

    @property
    def adapter_kind(self) -> str:
        """The adapter this stage trains: the source stage trains a task LoRA or (``full``) its transformer layers."""
        if self.stage == "source":
            return self.source_adapter
        return self.adapter

    @property
    def adapter_targets(self) -> list[str]:
        """The target patterns of the adapter this stage trains (LoRA or bottleneck)."""
        if self.adapter_kind == "bottleneck":
            return list(self.bottleneck_targets or BOTTLENECK_TARGETS)
        if self.adapter_kind == "full":
            return ["*"]
        return self.targets

    @property
    def learning_rate(self) -> float:
        """``lr``, else the stage's default."""
        if self.lr is not None:
            return self.lr
        if self.adapter_kind == "full":
            return SOURCE_FULL_LR if self.stage == "source" else FULL_FINETUNE_LR
        return SOURCE_LR if self.stage == "source" else TARGET_LR

    def frozen_layer_count(self, layers: int) -> int:
        """``frozen_layers``, else the default for a backbone of ``layers`` transformer layers: the lowest third
        when the source stage fine-tunes the layers, none otherwise."""
        if self.frozen_layers is not None:
            return self.frozen_layers
        return layers // SOURCE_FROZEN_SHARE if self.stage == "source" and self.adapter_kind == "full" else 0

    @property
    def default_steps(self) -> int:
        """The stage's step budget when neither ``max_steps`` nor ``epochs`` is set."""
        return DEFAULT_SOURCE_STEPS if self.stage == "source" else DEFAULT_TARGET_STEPS

    def canonical(self) -> TrainConfig:
        """This config with what cannot change the run written out: the default step budget (``max_steps=None``
        and DEFAULT_TARGET_STEPS train alike) and, without a prompt, the prompt positions."""
        config = self
        if config.max_steps is None and config.epochs is None and config.time_budget is None:
            config = replace(config, max_steps=config.default_steps)
        if not config.uses_prompt:
            config = replace(config, prompt_positions="tail")
        return config

    def with_data_mix(self, has_task_data: bool) -> TrainConfig:
        """``synthetic_ratio`` and ``align_weight`` where left unset (None), given whether the stage has real task
        data in its language. A QA language with QA data of its own trains on it alone (0 and 0: measured better
        on Swahili, +2.7 / +4.9 F1, and half the step time; BENCHMARKS.md 3c); one without trains on synthetic
        data with the alignment loss (the paper's setting, PAPER_SYNTHETIC_RATIO / PAPER_ALIGN_WEIGHT), as does
        every language of the sentence-pair task (measured there with them). The source stage uses neither."""
        paper = self.stage == "target" and (self.task != "qa" or not has_task_data)
        ratio = PAPER_SYNTHETIC_RATIO if paper else 0.0
        weight = PAPER_ALIGN_WEIGHT if paper else 0.0
        return replace(
            self,
            synthetic_ratio=ratio if self.synthetic_ratio is None else self.synthetic_ratio,
            align_weight=weight if self.align_weight is None else self.align_weight,
        )

    def with_default_budget(self) -> TrainConfig:
        """A source stage given no --max-steps, --epochs or --time-budget gets the default time budget."""
        if self.stage == "source" and self.max_steps is None and self.epochs is None and self.time_budget is None:
            return replace(self, time_budget=DEFAULT_SOURCE_BUDGET)
        return self

    @property
    def uses_prompt(self) -> bool:
        return self.stage == "target" and self.prompt_len > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if data and "prompt_positions" not in data:
            known["prompt_positions"] = "shift"  # recorded before the setting existed: the text was shifted
        if data and "source_adapter" not in data:
            known["source_adapter"] = "lora"  # recorded before the setting existed: the source stage was a LoRA
        if data and "frozen_layers" not in data:
            known["frozen_layers"] = 0  # recorded before the setting existed: full fine-tuning trained every layer
        return cls(**known)

    def differences(
        self, other: TrainConfig, ignore: tuple[str, ...] = ("save_every", "eval_every", "eval_max_examples")
    ) -> list[str]:
        """Names of the settings that differ from ``other`` (``ignore``: those that may change on resume)."""
        mine, theirs = self.to_json(), other.to_json()
        return [k for k in mine if k not in ignore and mine[k] != theirs.get(k)]
