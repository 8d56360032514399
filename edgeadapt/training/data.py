"""Gather and tokenise a stage's data: task windows, synthetic windows and parallel pairs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeadapt.data.examples import ParallelPair, QAExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import sha256_file
from edgeadapt.runtime.features import pad_token_id
from edgeadapt.training.batches import StageData, encode_pairs
from edgeadapt.training.config import SOURCE_LANG, TrainConfig
from edgeadapt.training.features import featurize
from edgeadapt.training.synthetic import make_generator


@dataclass
class PreparedData:
    data: StageData
    provenance: dict[str, Any] = field(default_factory=dict)
    lexicon: dict | None = None


def spec_provenance(spec: str, data_dir: str | None) -> dict[str, str]:
    """The file a spec reads and its sha256."""
    from edgeadapt.data.specs import parse_spec, spec_file

    parsed = parse_spec(spec, data_dir)
    path = spec_file(parsed, data_dir)
    record = {"spec": spec, "path": str(Path(path).resolve()), "sha256": sha256_file(path)}
    english = Path(path).with_name("eng_Latn" + "".join(Path(path).suffixes))  # FLORES: the English side
    if (parsed.format or parsed.name) in ("lines", "flores200") and english.is_file() and english != Path(path):
        record |= {"english_path": str(english.resolve()), "english_sha256": sha256_file(english)}
    return record


def subsample(examples: list, limit: int | None, seed: int) -> list:
    if limit is None or len(examples) <= limit:
        return examples
    return random.Random(seed).sample(examples, limit)


def load_qa_specs(specs: list[str], data_dir: str | None) -> list[QAExample]:
    from edgeadapt.data.specs import load_qa

    return [example for spec in specs for example in load_qa(spec, data_dir)]


def load_parallel_specs(specs: list[str], data_dir: str | None) -> list[ParallelPair]:
    from edgeadapt.data.specs import load_parallel

    return [pair for spec in specs for pair in load_parallel(spec, data_dir)]


def task_specs(config: TrainConfig, data_dir: str | None) -> list[str]:
    """``--train-data``, else the stage's default: for the source stage every QA training split in the data
    directory (:func:`~edgeadapt.data.specs.source_task_data`) but those of the ``--leave-out`` languages, for a
    language its own QA training data."""
    from edgeadapt.data.languages import normalize_lang
    from edgeadapt.data.specs import default_task_data, source_task_data

    if config.stage != "source":
        return list(config.train_data) or default_task_data(config.lang, data_dir)
    specs = list(config.train_data) or source_task_data(data_dir)
    if not config.leave_out:
        return specs
    left_out = {normalize_lang(lang).code for lang in config.leave_out}
    return [spec for spec in specs if spec_language(spec, data_dir) not in left_out]


def spec_language(spec: str, data_dir: str | None) -> str | None:
    """The ISO code of the language ``spec`` reads (``afriqa:yor:train`` -> ``yo``); None where the spec names no
    language edgeadapt knows (a bare file, a dataset's own naming)."""
    from edgeadapt.data.languages import find_language
    from edgeadapt.data.specs import parse_spec

    parsed = parse_spec(spec, data_dir)
    language = find_language(parsed.lang) if parsed.lang else None
    return language.code if language else None


def parallel_specs(config: TrainConfig, data_dir: str | None) -> list[str]:
    from edgeadapt.data.specs import default_parallel_data

    return list(config.parallel_data) or default_parallel_data(config.lang, data_dir)


def prepare_data(config: TrainConfig, tokenizer, data_dir: str | None) -> PreparedData:
    """Load, sample and tokenise everything the stage trains on, and record where it came from."""
    backend = tokenizer.backend_tokenizer
    window_args = {"max_length": config.max_length, "stride": config.doc_stride}
    specs = task_specs(config, data_dir)
    config = config.with_data_mix(bool(specs))  # unset synthetic share / alignment weight: by the data found
    where = data_dir or "the data directory"
    if config.stage == "source" and not specs and config.leave_out:
        raise EdgeAdaptError(
            "every QA training split for the source stage is in a --leave-out language"
            f" ({', '.join(config.leave_out)}): leave out fewer languages or pass --train-data SPEC"
        )
    if config.stage == "source" and not specs:
        raise EdgeAdaptError(f"no QA training data in {where}: run `edgeadapt data fetch` or pass --train-data SPEC")
    examples = subsample(load_qa_specs(specs, data_dir), config.max_train_examples, config.seed)
    real = featurize(examples, backend, **window_args, negative_ratio=config.negative_window_ratio, seed=config.seed)
    provenance: dict[str, Any] = {"train": [spec_provenance(s, data_dir) for s in specs]}
    synthetic, pairs, lexicon = [], None, None
    if config.stage == "target":
        pspecs = parallel_specs(config, data_dir)
        provenance["parallel"] = [spec_provenance(s, data_dir) for s in pspecs]
        parallel = load_parallel_specs(pspecs, data_dir)
        needs_synthetic = config.synthetic_ratio > 0 or not real
        if not parallel and (needs_synthetic or config.align_weight > 0):
            raise EdgeAdaptError(
                f"no English-{config.lang} parallel data in {where}: pass --parallel-data SPEC"
                f" (e.g. flores200:{config.lang}:dev) or run `edgeadapt data fetch`"
            )
        if not real and config.synthetic_ratio <= 0:
            raise EdgeAdaptError(
                f"no {config.lang} QA training data and --synthetic-ratio 0: pass --train-data or a ratio above 0"
            )
        if needs_synthetic:
            synthetic, info = _synthetic(config, parallel, backend, window_args, data_dir)
            provenance["synthetic"] = info
            lexicon = info.pop("lexicon")
        if parallel and config.align_weight > 0:
            pairs = encode_pairs(backend, parallel, config.align_max_length)
    if not real and not synthetic:
        raise EdgeAdaptError(f"no usable training example for {config.lang} (no answer found in any context)")
    counts = {"examples": len(examples), "real_windows": len(real), "synthetic_windows": len(synthetic)}
    counts |= {
        "offsets_recovered": sum(int(e.meta.get("recovered", 0)) for e in examples),
        "examples_without_span": sum(1 for e in examples if not e.located_answers),
    }
    provenance["counts"] = {**counts, "align_pairs": 0 if pairs is None else len(pairs)}
    data = StageData(
        real, synthetic, pairs, pad_token_id(backend), group_lengths=config.length_grouping, pad_limit=config.max_length
    )
    return PreparedData(data, provenance, lexicon)


def _synthetic(config: TrainConfig, parallel: list[ParallelPair], backend, window_args: dict, data_dir: str | None):
    from edgeadapt.data.specs import default_task_data

    source_specs = default_task_data(SOURCE_LANG, data_dir)
    english = load_qa_specs(source_specs, data_dir)
    if not english:
        raise EdgeAdaptError(f"synthetic data needs English QA examples; none found in {data_dir or 'the data dir'}")
    generator = make_generator(config.synthetic_generator, config.lang, parallel)
    made = generator.generate(english, config.max_synthetic_examples, config.seed)
    windows = featurize(made, backend, **window_args, negative_ratio=config.negative_window_ratio, seed=config.seed + 1)
    info = {
        **generator.describe(),
        "source": [spec_provenance(s, data_dir) for s in source_specs],
        "examples": len(made),
        "lexicon": getattr(generator, "lexicon", None),
    }
    return windows, info
