"""Run directories with random adapter weights on a real backbone, for the edge benchmark before training ends.

Latency, switch time, disk and memory depend on shapes, not on trained values: these runs have the shapes the
trainer's language stage produces by default (each language: LoRA r=8 on its default targets, the attention
output and both FFN projections, + a 16-vector soft prompt; the source: a task LoRA r=8 on query,key,value,dense
merged into the backbone, + span head) and small random values. Accuracy figures need trained runs.

    python benchmarks/random_runs.py --out /tmp/random-runs --lang yo --lang sw
    edgeadapt bench edge --runs /tmp/random-runs/yo --runs /tmp/random-runs/sw --repeats 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgeadapt.backbones.resolve import resolve_backbone, weights_fingerprint
from edgeadapt.training.config import TARGET_LORA_TARGETS
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.training.runs import LANG_ADAPTER, TASK_ADAPTER, load_encoder, write_run


def _random_lora(encoder, name: str, targets: list[str], rank: int, seed: int, scale: float):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0)
    model = get_peft_model(encoder, config, adapter_name=name)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if f"lora_A.{name}" in param_name or f"lora_B.{name}" in param_name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return model


def make_runs(backbone: str, out: Path, langs: list[str], rank: int, prompt_len: int) -> None:
    identity = {"path": backbone, "fingerprint": weights_fingerprint(backbone)}
    targets = ["query", "key", "value", "dense"]
    source = PromptedQAModel(_random_lora(load_encoder(backbone), TASK_ADAPTER, targets, rank, 0, 0.02))
    torch.nn.init.normal_(source.qa_outputs.weight, std=0.05)
    adapter = {"kind": "lora", "rank": rank, "alpha": 2 * rank, "targets": targets}
    info = {"stage": "source", "lang": "en", "backbone": identity, "adapter": adapter, "random_weights": True}
    write_run(source, out / "en", info)
    for index, lang in enumerate(langs, start=1):
        from peft import PeftModel

        merged = PeftModel.from_pretrained(
            load_encoder(backbone), str(out / "en" / "task_adapter"), adapter_name=TASK_ADAPTER
        ).merge_and_unload()
        table = merged.get_input_embeddings().weight.detach()
        rows = torch.randint(5, table.shape[0], (prompt_len,), generator=torch.Generator().manual_seed(index))
        model = PromptedQAModel(
            _random_lora(merged, LANG_ADAPTER, list(TARGET_LORA_TARGETS), rank, index, 0.02),
            prompt_len=prompt_len,
            prompt_init=table[rows].clone(),
        )
        adapter = {"kind": "lora", "rank": rank, "alpha": 2 * rank, "targets": list(TARGET_LORA_TARGETS)}
        info = {
            "stage": "target",
            "lang": lang,
            "source_run": str((out / "en").resolve()),
            "backbone": identity,
            "adapter": adapter,
            "random_weights": True,
        }
        write_run(model, out / lang, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None, help="backbone (default: multilingual-e5-small)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lang", action="append", default=[], help="target language; repeat (default: yo sw)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=16)
    args = parser.parse_args()
    make_runs(resolve_backbone(args.backbone), args.out, args.lang or ["yo", "sw"], args.rank, args.prompt_len)
    print(f"random-weight runs written to {args.out}")


if __name__ == "__main__":
    main()
