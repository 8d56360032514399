"""Sentence-pair classification (``--task pawsx``): pairs -> training windows, synthetic pairs, stage data.

A pair is encoded as the tokenizer encodes two sequences (``<s> s1 </s></s> s2 </s>`` for XLM-R), by the same
function as evaluation and the runtime (:func:`edgeadapt.runtime.features.encode_pair`); its label is PAWS-X's
(0 different, 1 paraphrase).

Synthetic pairs (``--synthetic-ratio``) come from the task stage's own training pairs, code-switched into the
language with the Dice lexicon induced from the parallel data (the ``code-switch`` generator of QA): a chosen set
of word types is replaced in *both* sentences alike, so a paraphrase stays a paraphrase and a word-order swap stays
a swap. This makes sense when the task pairs are in English (PAWS-X English train); when they are already in the
language (our German setup) there is little to switch, and ``--synthetic-ratio 0`` is the honest choice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from edgeadapt.data.examples import ParallelPair, SentencePairExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.runtime.features import encode_pair, pad_token_id, windowing_tokenizer
from edgeadapt.training.batches import StageData, encode_pairs
from edgeadapt.training.features import TrainWindow
from edgeadapt.training.lexicon import Lexicon, induce_lexicon, words
from edgeadapt.training.synthetic import switch_words, switched_copies

SWITCH_PROB = 0.3
"""Share of a pair's translatable word types replaced by the code-switch generator."""


def featurize_pairs(examples: list[SentencePairExample], tokenizer, *, max_length: int) -> list[TrainWindow]:
    """One window per labelled pair (a long pair is cut to ``max_length`` tokens, the second sentence first)."""
    windowing = windowing_tokenizer(tokenizer, max_length=max_length, stride=0)
    return [
        TrainWindow(encode_pair(windowing, e.sentence1, e.sentence2), 0, 0, e.id, label=int(e.label)) for e in examples
    ]


@dataclass
class PairCodeSwitch:
    """Code-switched copies of labelled pairs, the same words replaced in both sentences."""

    lang: str
    lexicon: Lexicon
    prob: float = SWITCH_PROB
    name: str = "code-switch-pairs"

    @classmethod
    def from_parallel(cls, lang: str, parallel: list[ParallelPair]) -> PairCodeSwitch:
        lexicon = induce_lexicon(parallel)
        if len(lexicon) == 0:
            raise EdgeAdaptError(
                f"no bilingual lexicon could be induced for {lang} from {len(parallel)} parallel pairs:"
                " give more parallel data with --parallel-data, or --synthetic-ratio 0"
            )
        return cls(lang, lexicon)

    def switch(self, pair: SentencePairExample, rng: random.Random) -> SentencePairExample | None:
        """One switched copy, or None when no word of the pair has a translation."""
        known = sorted({w for w in words(pair.sentence1 + " " + pair.sentence2) if self.lexicon.translate(w)})
        chosen = {w for w in known if rng.random() < self.prob} or ({rng.choice(known)} if known else set())
        if not chosen:
            return None
        subset = Lexicon({w: entry for w, entry in self.lexicon.entries.items() if w in chosen})
        first, _, _ = switch_words(pair.sentence1, subset, 1.0, rng)
        second, _, _ = switch_words(pair.sentence2, subset, 1.0, rng)
        return replace(pair, id=f"{pair.id}#cs-{self.lang}", sentence1=first, sentence2=second, lang=self.lang)

    def generate(self, pairs: list[SentencePairExample], count: int, seed: int) -> list[SentencePairExample]:
        """Up to ``count`` switched pairs from a seeded shuffle of ``pairs``."""
        return switched_copies(pairs, count, seed, self.switch)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "lexicon_size": len(self.lexicon), "word_type_prob": self.prob}


def load_pair_specs(specs: list[str], data_dir: str | None) -> list[SentencePairExample]:
    from edgeadapt.data.specs import load_sentence_pairs

    return [pair for spec in specs for pair in load_sentence_pairs(spec, data_dir)]


def default_pair_data(stage: str, lang: str, data_dir: str | None) -> list[str]:
    """PAWS-X train of the language (the task stage: English) when present; else nothing (pass --train-data)."""
    from edgeadapt.data.specs import find_data_file

    code = "en" if stage == "source" else lang
    return [f"pawsx:{code}:train"] if find_data_file(f"pawsx/{code}/train.tsv", data_dir, warn=False) else []


def prepare_pair_data(config, tokenizer, data_dir: str | None, *, source_specs: list[str] | None = None):
    """Load and encode a pair-classification stage's data: labelled pairs, synthetic pairs (target stage, from the
    task stage's pairs ``source_specs``) and parallel pairs for the alignment loss."""
    from edgeadapt.training.data import (
        PreparedData,
        load_parallel_specs,
        parallel_specs,
        spec_provenance,
        subsample,
    )

    backend = tokenizer.backend_tokenizer
    specs = list(config.train_data) or default_pair_data(config.stage, config.lang, data_dir)
    config = config.with_data_mix(bool(specs))
    where = data_dir or "the data directory"
    if not specs and config.stage == "source":
        raise EdgeAdaptError(
            f"the {config.task} task stage has no sentence-pair training data in {where} (no PAWS-X English train):"
            f" train it first with `edgeadapt train --lang en --task {config.task} --train-data SPEC`, e.g."
            " pawsx:de:dev[:1000] or pawsx:/path/train.tsv"
        )
    if not specs and config.synthetic_ratio <= 0:
        raise EdgeAdaptError(
            f"no sentence-pair training data for {config.lang} in {where} and --synthetic-ratio 0: pass --train-data,"
            f" e.g. pawsx:{config.lang}:dev[1000:] or pawsx:/path/train.tsv"
        )
    examples = subsample(load_pair_specs(specs, data_dir), config.max_train_examples, config.seed)
    real = featurize_pairs(examples, backend, max_length=config.max_length)
    provenance: dict[str, Any] = {"train": [spec_provenance(s, data_dir) for s in specs]}
    synthetic: list[TrainWindow] = []
    pairs = None
    if config.stage == "target":
        pspecs = parallel_specs(config, data_dir)
        provenance["parallel"] = [spec_provenance(s, data_dir) for s in pspecs]
        parallel = load_parallel_specs(pspecs, data_dir)
        if not parallel and (config.synthetic_ratio > 0 or config.align_weight > 0):
            raise EdgeAdaptError(
                f"no English-{config.lang} parallel data in {where}: pass --parallel-data SPEC"
                f" (e.g. flores200:{config.lang}:dev), or --synthetic-ratio 0 --align-weight 0"
            )
        if config.synthetic_ratio > 0:
            generator = PairCodeSwitch.from_parallel(config.lang, parallel)
            made = generator.generate(load_pair_specs(source_specs or [], data_dir), config.max_synthetic_examples,
                                      config.seed)  # fmt: skip
            synthetic = featurize_pairs(made, backend, max_length=config.max_length)
            provenance["synthetic"] = {**generator.describe(), "source": list(source_specs or []), "pairs": len(made)}
        if parallel and config.align_weight > 0:
            pairs = encode_pairs(backend, parallel, config.align_max_length)
    if not real and not synthetic:
        raise EdgeAdaptError(f"no usable sentence pair for {config.lang}: check --train-data")
    provenance["counts"] = {
        "examples": len(examples),
        "real_windows": len(real),
        "synthetic_windows": len(synthetic),
        "align_pairs": 0 if pairs is None else len(pairs),
        "labels": {str(label): sum(1 for e in examples if e.label == label) for label in (0, 1)},
    }
    data = StageData(real, synthetic, pairs, pad_token_id(backend), group_lengths=config.length_grouping,
                     pad_limit=config.max_length)  # fmt: skip
    return PreparedData(data, provenance, None)
