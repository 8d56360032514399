"""edgeadapt train on the tiny backbone: labels, losses, frozen weights, alignment, resume, synthetic data."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from run_factory import make_source_run
from safetensors.torch import load_file
from test_train_support import ENGLISH_QA, FLORES, YORUBA_QA, write_tiny_data

from edgeadapt.backbones.resolve import weights_fingerprint
from edgeadapt.data.examples import Answer, ParallelPair, QAExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.runtime.spans import best_span
from edgeadapt.training.batches import BatchPlan, EncodedPairs, StageData, align_batch, draw, encode_pairs, task_batch
from edgeadapt.training.bottleneck import bottleneck_layers, remove_bottlenecks
from edgeadapt.training.config import PAPER_ALIGN_WEIGHT, PAPER_SYNTHETIC_RATIO, TrainConfig
from edgeadapt.training.data import prepare_data
from edgeadapt.training.features import featurize
from edgeadapt.training.lexicon import induce_lexicon
from edgeadapt.training.loop import TrainingInterrupted, run_loop
from edgeadapt.training.model import PromptedQAModel, position_offset
from edgeadapt.training.models import build_target_model
from edgeadapt.training.objective import StageObjective
from edgeadapt.training.runs import load_encoder, load_run_model, write_run
from edgeadapt.training.stages import load_tokenizer, total_steps, train, with_data_mix
from edgeadapt.training.synthetic import CodeSwitchGenerator

SMALL = {"batch_size": 4, "max_length": 64, "doc_stride": 16, "prompt_len": 4, "save_every": 0}


def _examples() -> list[QAExample]:
    return [
        QAExample(f"en{i}", question, context, (Answer(answer, context.index(answer)),), "en")
        for i, (context, question, answer) in enumerate(ENGLISH_QA)
    ]


def _pairs(rows=FLORES) -> list[ParallelPair]:
    return [ParallelPair(s, t, "en", "yo") for s, t in rows]


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_data(tmp_path / "data")


def test_labels_point_at_the_answer_tokens(tiny_backbone: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_backbone)).backend_tokenizer
    windows = featurize(_examples(), tokenizer, max_length=24, stride=4, negative_ratio=1.0, seed=0)
    by_id = {e.id: e for e in _examples()}
    answered = [w for w in windows if w.has_answer]
    assert len(answered) >= len(ENGLISH_QA) and len(windows) > len(answered)  # long contexts make several windows
    for w in answered:
        example = by_id[w.example_id]
        begin, end = w.window.context_offsets[w.start][0], w.window.context_offsets[w.end][1]
        assert example.context[begin:end] == example.answers[0].text
    for w in windows:
        if not w.has_answer:
            assert (w.start, w.end) == (0, 0)


def test_prompt_model_learns_the_labelled_tokens_without_shift(tiny_backbone: Path) -> None:
    """Prompt tuning for QA must shift the labels or slice the logits by k: the model slices, labels stay put."""
    tokenizer = load_tokenizer(str(tiny_backbone)).backend_tokenizer
    examples = _examples()[:3]
    windows = featurize(examples, tokenizer, max_length=64, stride=16, negative_ratio=0.0, seed=0)
    torch.manual_seed(0)
    model = PromptedQAModel(load_encoder(str(tiny_backbone)), prompt_len=5, prompt_init=torch.randn(5, 32))
    data = StageData(windows, [], None, 0)
    from edgeadapt.training.batches import task_batch

    batch = task_batch(data.real, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(50):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert out.start_logits.shape == batch["input_ids"].shape  # prompt logits dropped
    assert torch.equal(out.start_logits.argmax(-1), batch["start_positions"])
    assert torch.equal(out.end_logits.argmax(-1), batch["end_positions"])
    for row, (window, example) in enumerate(zip(windows, examples, strict=True)):
        span = best_span(example.context, [window.window], out.start_logits[row : row + 1].numpy(),
                         out.end_logits[row : row + 1].numpy())  # fmt: skip
        assert span.text == example.answers[0].text


def _position_ids_seen(model: PromptedQAModel, input_ids: torch.Tensor) -> torch.Tensor:
    """The position ids the encoder's position-embedding table is read with, in one forward pass."""
    seen: list[torch.Tensor] = []
    table = next(m for m in model.encoder.modules() if hasattr(m, "position_embeddings")).position_embeddings
    hook = table.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        model(input_ids, torch.ones_like(input_ids))
    hook.remove()
    return seen[0].expand(input_ids.shape[0], -1)


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_tail_prompt_positions_leave_the_text_where_the_source_stage_saw_it(family: str) -> None:
    from transformers import AutoConfig, AutoModel

    sizes = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    config = AutoConfig.for_model(family, vocab_size=60, max_position_embeddings=40, pad_token_id=1, **sizes)
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    input_ids = torch.randint(5, 60, (2, 7))
    plain = _position_ids_seen(PromptedQAModel(encoder), input_ids)
    assert plain[0, 0].item() == position_offset(encoder) == (2 if family == "xlm-roberta" else 0)
    prompt = torch.randn(3, 16)
    tail = _position_ids_seen(PromptedQAModel(encoder, 3, prompt, prompt_positions="tail"), input_ids)
    assert torch.equal(tail[:, 3:], plain) and tail[0, :3].tolist() == [37, 38, 39]
    shift = _position_ids_seen(PromptedQAModel(encoder, 3, prompt, prompt_positions="shift"), input_ids)
    assert shift[0].tolist() == list(range(plain[0, 0].item(), plain[0, 0].item() + 10))  # the text moved by k


def test_runs_recorded_before_prompt_positions_existed_read_as_shift() -> None:
    assert TrainConfig().prompt_positions == "tail"
    assert TrainConfig.from_json(TrainConfig(lang="sw").to_json()).prompt_positions == "tail"
    legacy = TrainConfig(lang="sw").to_json()
    del legacy["prompt_positions"]
    assert TrainConfig.from_json(legacy).prompt_positions == "shift"


def test_lexicon_and_code_switching_keep_answer_offsets() -> None:
    lexicon = induce_lexicon(_pairs())
    assert lexicon.translate("city") == "ìlú" and lexicon.translate("River") == "odò"
    assert lexicon.translate("Lagos") is None
    generator = CodeSwitchGenerator("yo", _pairs(), question_prob=1.0, context_prob=1.0)
    made = generator.generate(_examples(), 100, seed=3)
    assert made, "no question word could be switched"
    switched_context = 0
    for example in made:
        answer = example.answers[0]
        assert example.context[answer.start : answer.start + len(answer.text)] == answer.text
        assert example.question != example.question_en and example.lang == "yo"
        original = next(e for e in _examples() if example.id.startswith(e.id + "#"))
        switched_context += example.context != original.context
    assert switched_context > 0
    assert generator.generate(_examples(), 100, seed=3) == made  # seeded


def test_draws_are_deterministic_and_cover_the_pool() -> None:
    first = draw(7, seed=1, first=0, count=14)
    assert sorted(first[:7]) == list(range(7)) and sorted(first[7:]) == list(range(7))
    assert draw(7, seed=1, first=5, count=4) == first[5:9]


def _target_setup(tiny_backbone: Path, tiny_data: Path, tmp_path: Path, **overrides):
    source = make_source_run(tiny_backbone, tmp_path / "runs" / "en")
    method = {"synthetic_ratio": PAPER_SYNTHETIC_RATIO, "align_weight": PAPER_ALIGN_WEIGHT}  # every part of the loss
    config = TrainConfig(
        lang="yo", stage="target", backbone=str(tiny_backbone), seed=5, **{**SMALL, **method, **overrides}
    )
    tokenizer = load_tokenizer(str(tiny_backbone))
    prepared = prepare_data(config, tokenizer, str(tiny_data))
    model = build_target_model(str(tiny_backbone), source, config, tokenizer)
    return config, source, prepared, model


def test_target_stage_losses_frozen_weights_and_l2_start(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    config, _, prepared, model = _target_setup(tiny_backbone, tiny_data, tmp_path, lr=1e-2)
    assert prepared.data.real and prepared.data.synthetic and len(prepared.data.pairs) == len(FLORES) + len(YORUBA_QA)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "prompt" in trainable and all("lora_" in n for n in trainable - {"prompt"})
    assert "qa_outputs.weight" in frozen  # the shared head stays frozen
    result = run_loop(StageObjective(model, 0.5, 0.01), prepared.data, config, tmp_path / "run", 6)
    rows = result.history
    assert len(rows) == 6
    for row in rows:
        for part in ("task", "align", "l2", "total"):
            assert math.isfinite(row[part])
    assert rows[0]["l2"] == 0.0 and rows[-1]["l2"] > 0.0
    assert rows[0]["total"] == pytest.approx(rows[0]["task"] + 0.5 * rows[0]["align"])
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name


def _distance(model: PromptedQAModel, pairs: EncodedPairs) -> float:
    batch = align_batch(pairs, list(range(len(pairs))), 0)
    with torch.no_grad():
        source = model.pooled_features(batch["source_ids"], batch["source_mask"])
        target = model.pooled_features(batch["target_ids"], batch["target_mask"])
    return float((source - target).pow(2).sum(-1).mean())


def test_alignment_distance_falls_on_held_out_pairs(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    train_pairs = tmp_path / "pairs"
    train_pairs.mkdir()
    (train_pairs / "eng_Latn.dev").write_text("\n".join(s for s, _ in FLORES[:9]) + "\n", encoding="utf-8")
    (train_pairs / "yor_Latn.dev").write_text("\n".join(t for _, t in FLORES[:9]) + "\n", encoding="utf-8")
    overrides = {"align_weight": 2.0, "lr": 1e-2, "max_steps": 15, "align_batch_size": 4}
    config, source, prepared, model = _target_setup(
        tiny_backbone, tiny_data, tmp_path, parallel_data=[f"flores200:{train_pairs / 'yor_Latn.dev'}"], **overrides
    )
    held_out = encode_pairs(load_tokenizer(str(tiny_backbone)).backend_tokenizer, _pairs(FLORES[9:]), 64)
    before = _distance(model.eval(), held_out)
    results = train(replace(config, backbone=str(tiny_backbone)), workdir=str(tmp_path), data_dir=str(tiny_data))
    after = _distance(load_run_model(results[-1].run_dir), held_out)
    assert after < 0.8 * before


def test_resume_gives_the_uninterrupted_result(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    make_source_run(tiny_backbone, tmp_path / "runs" / "en")
    config = TrainConfig(lang="yo", backbone=str(tiny_backbone), max_steps=6, **{**SMALL, "save_every": 2})
    args = {"workdir": str(tmp_path), "data_dir": str(tiny_data)}
    whole = train(config, run_dir=tmp_path / "whole", **args)[-1].run_dir

    def stop_at_3(step: int, losses: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(config, run_dir=tmp_path / "cut", on_step=stop_at_3, **args)
    assert not (tmp_path / "cut" / "run.json").exists()
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["step"] == 3
    cut = train(config, run_dir=tmp_path / "cut", resume=True, **args)[-1].run_dir
    for file in ("lang_adapter/adapter_model.safetensors", "soft_prompt.safetensors"):
        a, b = load_file(str(whole / file)), load_file(str(cut / file))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (file, key)
    lora_b = [v for k, v in load_file(str(whole / "lang_adapter/adapter_model.safetensors")).items() if "lora_B" in k]
    assert lora_b and all(bool(v.abs().sum() > 0) for v in lora_b)  # it trained: the comparison means something
    rows_whole = (whole / "metrics.jsonl").read_text().splitlines()
    rows_cut = (cut / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["total"] for r in rows_whole] == [json.loads(r)["total"] for r in rows_cut]
    assert not (cut / "checkpoint").exists()


def test_language_without_qa_data_trains_on_synthetic_data_only(tiny_backbone: Path, tiny_data: Path) -> None:
    flores = tiny_data / "flores200" / "dev" / "yor_Latn.dev"
    config = TrainConfig(lang="ha", stage="target", parallel_data=[f"flores200:{flores}"], seed=2, **SMALL)
    prepared = prepare_data(config, load_tokenizer(str(tiny_backbone)), str(tiny_data))
    assert prepared.data.real == [] and prepared.data.synthetic
    assert all(w.example_id.endswith("#cs-ha") for w in prepared.data.synthetic)
    assert BatchPlan.make(4, 0.4, 0, len(prepared.data.synthetic), 2) == BatchPlan(0, 4, 2)
    assert total_steps(replace(config, epochs=2.0), 0, 10) == 5
    mixed = replace(config, epochs=1.0, synthetic_ratio=0.4)
    assert total_steps(mixed, 10, 10) == 5  # 10 real windows, 2 real + 2 synthetic rows a batch


def test_default_mix_follows_the_languages_own_qa_data(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    """Unset --synthetic-ratio / --align-weight: a language with QA data of its own trains on it alone (no
    synthetic windows, no alignment pairs); one without trains on synthetic data with the alignment loss, as the
    paper does; explicit values always win; the source stage uses neither."""
    tokenizer = load_tokenizer(str(tiny_backbone))
    flores = tiny_data / "flores200" / "dev" / "yor_Latn.dev"
    own = with_data_mix(TrainConfig(lang="yo", stage="target", **SMALL), str(tiny_data))
    assert (own.synthetic_ratio, own.align_weight) == (0.0, 0.0)
    prepared = prepare_data(TrainConfig(lang="yo", stage="target", **SMALL), tokenizer, str(tiny_data))
    assert prepared.data.real and not prepared.data.synthetic and prepared.data.pairs is None
    none = TrainConfig(lang="ha", stage="target", parallel_data=[f"flores200:{flores}"], **SMALL)
    resolved = with_data_mix(none, str(tiny_data))
    assert (resolved.synthetic_ratio, resolved.align_weight) == (PAPER_SYNTHETIC_RATIO, PAPER_ALIGN_WEIGHT)
    prepared = prepare_data(none, tokenizer, str(tiny_data))
    assert not prepared.data.real and prepared.data.synthetic and prepared.data.pairs is not None
    chosen = with_data_mix(TrainConfig(lang="yo", stage="target", synthetic_ratio=0.2, **SMALL), str(tiny_data))
    assert (chosen.synthetic_ratio, chosen.align_weight) == (0.2, 0.0)
    source = with_data_mix(TrainConfig(lang="en", stage="source", **SMALL), str(tiny_data))
    assert (source.synthetic_ratio, source.align_weight) == (0.0, 0.0)
    pawsx = TrainConfig(lang="yo", stage="target", task="pawsx").with_data_mix(True)
    assert (pawsx.synthetic_ratio, pawsx.align_weight) == (PAPER_SYNTHETIC_RATIO, PAPER_ALIGN_WEIGHT)


def test_freeze_choices(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    _, _, _, model = _target_setup(tiny_backbone, tiny_data, tmp_path, freeze=["prompt"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and "prompt" not in trainable and all("lora_" in n for n in trainable)
    _, _, prepared, model = _target_setup(tiny_backbone, tiny_data, tmp_path / "b", freeze=["prompt", "adapter"])
    with pytest.raises(EdgeAdaptError, match="nothing to train"):
        run_loop(StageObjective(model, 0.1, 0.0), prepared.data, TrainConfig(**SMALL), tmp_path / "run", 1)


def test_bottleneck_stage_trains_saves_and_loads_back(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    """--adapter bottleneck: W_up = 0 at the start (L2 = 0, same logits as no adapter), only the prompt and the
    bottleneck matrices train, losses stay finite, and the run directory rebuilds the very same model."""
    overrides = {"adapter": "bottleneck", "bottleneck_size": 5, "lr": 1e-2}
    config, source, prepared, model = _target_setup(tiny_backbone, tiny_data, tmp_path, **overrides)
    layers = bottleneck_layers(model.encoder)
    assert sorted(layers) == ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]  # not attention.output
    assert all(tuple(layer.bottleneck_down.weight.shape) == (5, 64) for layer in layers.values())
    assert all(not layer.bottleneck_up.weight.any() for layer in layers.values())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "prompt" in trainable and len(trainable) == 5 and all("bottleneck_" in n for n in trainable - {"prompt"})
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    batch = task_batch(prepared.data.real[:2], 0)
    plain = remove_bottlenecks(copy.deepcopy(model).encoder)
    with torch.no_grad():
        first = model.eval().hidden_states(batch["input_ids"], batch["attention_mask"])
        inputs = model._inputs_with_prompt(batch["input_ids"], batch["attention_mask"], None)
        assert torch.equal(first, plain(**inputs).last_hidden_state[:, model.prompt_len :])  # starts at the source

    rows = run_loop(StageObjective(model, 0.5, 0.01), prepared.data, config, tmp_path / "run", 5).history
    assert all(math.isfinite(row[part]) for row in rows for part in ("task", "align", "l2", "total"))
    assert rows[0]["l2"] == 0.0 and rows[-1]["l2"] > 0.0
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    assert all(layer.bottleneck_up.weight.any() for layer in layers.values())  # it trained

    identity = {"path": str(tiny_backbone), "fingerprint": weights_fingerprint(str(tiny_backbone))}
    info = {"stage": "target", "lang": "yo", "source_run": str(source.resolve()), "backbone": identity}
    write_run(model, tmp_path / "run", info)
    saved = json.loads((tmp_path / "run" / "lang_adapter" / "adapter_config.json").read_text())
    assert saved["kind"] == "bottleneck" and saved["size"] == 5 and saved["activation"] == "relu"
    loaded = load_run_model(tmp_path / "run")
    model.eval()
    with torch.no_grad():
        expected = model(batch["input_ids"], batch["attention_mask"]).start_logits
        got = loaded(batch["input_ids"], batch["attention_mask"]).start_logits
    assert torch.equal(expected, got)

    frozen_config = replace(config, freeze=["adapter"])
    frozen_adapter = build_target_model(str(tiny_backbone), source, frozen_config, load_tokenizer(str(tiny_backbone)))
    assert {n for n, p in frozen_adapter.named_parameters() if p.requires_grad} == {"prompt"}


def test_bottleneck_checkpoint_resumes_to_the_uninterrupted_result(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """Checkpoints hold the bottleneck matrices by name: stop at step 2, resume, same adapter as 4 straight steps."""
    config, source, prepared, _ = _target_setup(
        tiny_backbone, tiny_data, tmp_path, adapter="bottleneck", bottleneck_size=3, save_every=2, lr=1e-2
    )
    tokenizer = load_tokenizer(str(tiny_backbone))

    def fresh() -> StageObjective:
        return StageObjective(build_target_model(str(tiny_backbone), source, config, tokenizer), 0.5, 0.01)

    def stop_at_2(step: int, losses: dict) -> None:
        if step == 2:
            raise KeyboardInterrupt

    whole = fresh()
    run_loop(whole, prepared.data, config, tmp_path / "whole", 4)
    with pytest.raises(TrainingInterrupted):
        run_loop(fresh(), prepared.data, config, tmp_path / "cut", 4, on_step=stop_at_2)
    resumed = fresh()
    run_loop(resumed, prepared.data, config, tmp_path / "cut", 4, resume=True)
    a = {n: p for n, p in whole.model.named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed.model.named_parameters() if p.requires_grad}
    assert a.keys() == b.keys() and any("bottleneck_up" in n for n in a)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert all(p.any() for n, p in a.items() if "bottleneck_up" in n)  # it trained: the comparison means something
