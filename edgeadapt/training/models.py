"""Build the trainable model of each stage from a backbone (and, for the target stage, the source run).

- source: frozen backbone + task LoRA (peft adapter ``task``) + span head, all but the LoRA and head frozen.
- target: frozen backbone with the source task LoRA merged in + the source span head (frozen: it is
  shared by every language of an export) + language adapter (peft LoRA ``lang``, or bottleneck adapters
  with ``--adapter bottleneck``) + soft prompt.
- target with ``--adapter full`` (the full fine-tuning baseline): the same model with every encoder weight
  trainable and no adapter.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.training.bottleneck import PARAM_PREFIX, BottleneckConfig, add_bottlenecks
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.training.runs import HEAD_FILE, is_frozen_in_task_stage, load_encoder, load_head, source_encoder


def add_adapter(encoder: torch.nn.Module, config: TrainConfig, name: str) -> torch.nn.Module:
    """Freeze ``encoder`` and add a fresh adapter called ``name``: a peft LoRA, or (``--adapter bottleneck``,
    target stage) parallel bottleneck adapters injected in place (:mod:`edgeadapt.training.bottleneck`)."""
    if config.adapter_kind not in ("lora", "bottleneck", "full"):
        raise EdgeAdaptError(f"unknown --adapter {config.adapter!r}: choose lora, bottleneck or full")
    if config.adapter_kind == "full":
        frozen = lowest_layers(encoder, config)
        for param_name, param in encoder.named_parameters():
            # the source stage keeps the vocabulary table (trimming reads it) and the unused pooler as pulled
            pulled = config.stage == "source" and is_frozen_in_task_stage(param_name)
            param.requires_grad_(not pulled and not param_name.startswith(frozen))
        return encoder
    if config.adapter_kind == "bottleneck":
        for param in encoder.parameters():
            param.requires_grad_(False)
        settings = BottleneckConfig(config.bottleneck_size, config.bottleneck_scale, tuple(config.adapter_targets))
        return add_bottlenecks(encoder, settings)
    from peft import LoraConfig, get_peft_model

    for param in encoder.parameters():
        param.requires_grad_(False)
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.alpha,
        target_modules=config.targets,
        lora_dropout=config.lora_dropout,
        bias="none",
    )
    try:
        return get_peft_model(encoder, lora, adapter_name=name)
    except ValueError as exc:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, torch.nn.Linear)})
        raise EdgeAdaptError(
            f"--lora-targets {','.join(config.targets)} match no layer of this backbone; its linear layers: "
            f"{', '.join(names)}"
        ) from exc


def lowest_layers(encoder: torch.nn.Module, config: TrainConfig) -> tuple[str, ...]:
    """Parameter-name prefixes of the transformer layers nearest the embeddings that full fine-tuning keeps as
    pulled (``--freeze-layers``, :meth:`TrainConfig.frozen_layer_count`): blocks of the encoder's ``ModuleList``
    of ``config.num_hidden_layers``, whatever the architecture calls it."""
    layers = getattr(encoder.config, "num_hidden_layers", None)
    count = config.frozen_layer_count(layers or 0)
    if count == 0:
        return ()
    stack = next(
        (
            name
            for name, module in encoder.named_modules()
            if isinstance(module, torch.nn.ModuleList) and len(module) == layers
        ),
        None,
    )
    if stack is None:
        raise EdgeAdaptError("--freeze-layers: cannot find this backbone's stack of transformer layers; drop the flag")
    if count >= layers:
        raise EdgeAdaptError(f"--freeze-layers {count} leaves nothing to train: the backbone has {layers} layers")
    return tuple(f"{stack}.{index}." for index in range(count))


def prompt_init(encoder: torch.nn.Module, tokenizer, config: TrainConfig) -> torch.Tensor:
    """``k`` rows of the word-embedding table: random real vocabulary rows (seeded) or those of a text.

    ``config.prompt_init`` is ``vocab`` or ``text:<some words>`` (the text's tokens, repeated to ``k``).
    """
    table = encoder.get_input_embeddings().weight.detach()
    k = config.prompt_len
    if config.prompt_init == "vocab":
        special = set(tokenizer.all_special_ids)
        limit = min(len(tokenizer), table.shape[0])
        generator = torch.Generator().manual_seed(config.seed)
        candidates = torch.tensor([i for i in range(limit) if i not in special])
        ids = candidates[torch.randperm(len(candidates), generator=generator)[:k]]
    elif config.prompt_init.startswith("text:"):
        text_ids = tokenizer(config.prompt_init[5:], add_special_tokens=False)["input_ids"]
        if not text_ids:
            raise EdgeAdaptError("--prompt-init text: gives no tokens: write some words after 'text:'")
        ids = torch.tensor([text_ids[i % len(text_ids)] for i in range(k)])
    else:
        raise EdgeAdaptError(f"unknown --prompt-init {config.prompt_init!r}: use vocab or text:<words>")
    if len(ids) < k:
        raise EdgeAdaptError(f"--prompt-len {k} exceeds the {len(ids)} usable vocabulary rows")
    return table[ids].clone().float()


def build_source_model(backbone: str, config: TrainConfig) -> PromptedQAModel:
    from edgeadapt.training.runs import TASK_ADAPTER

    torch.manual_seed(config.seed)
    model = PromptedQAModel(add_adapter(load_encoder(backbone), config, TASK_ADAPTER), task=config.task)
    _apply_freeze(model, config)
    return model


def build_target_model(backbone: str, source_run: Path, config: TrainConfig, tokenizer) -> PromptedQAModel:
    from edgeadapt.training.runs import LANG_ADAPTER

    torch.manual_seed(config.seed)
    merged = source_encoder(source_run, backbone)
    init = prompt_init(merged, tokenizer, config) if config.uses_prompt else None
    encoder = add_adapter(merged, config, LANG_ADAPTER)
    prompt_len = config.prompt_len if config.uses_prompt else 0
    model = PromptedQAModel(encoder, prompt_len, init, prompt_positions=config.prompt_positions, task=config.task)
    load_head(model, source_run / HEAD_FILE)
    model.qa_outputs.requires_grad_(False)  # the head is shared by every language of an export
    _apply_freeze(model, config)
    return model


def _apply_freeze(model: PromptedQAModel, config: TrainConfig) -> None:
    for name, param in model.encoder.named_parameters():
        if ("lora_" in name or PARAM_PREFIX in name) and "adapter" in config.freeze:
            param.requires_grad_(False)
    if model.prompt is not None and "prompt" in config.freeze:
        model.prompt.requires_grad_(False)


def trainable_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
