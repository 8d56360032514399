"""Synthetic target-language QA data, made offline from English QA examples.

Generators are pluggable: register a class with :func:`register_generator` and pick it with
``--synthetic-generator NAME``. The built-in ``code-switch`` generator replaces question words (and,
more sparingly, context words outside the answer) by their target-language translations from a
lexicon induced from the parallel data; answer offsets are recomputed so they stay exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from edgeadapt.data.examples import Answer, ParallelPair, QAExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.training.lexicon import WORD, Lexicon, induce_lexicon


class SyntheticGenerator:
    """Turns English QA examples into target-language (or mixed) QA examples."""

    name = "base"

    def generate(self, examples: list[QAExample], count: int, seed: int) -> list[QAExample]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


GeneratorFactory = Callable[[str, list[ParallelPair]], SyntheticGenerator]
GENERATORS: dict[str, GeneratorFactory] = {}


def register_generator(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    """Class decorator: make a generator available as ``--synthetic-generator NAME``."""

    def decorate(factory: GeneratorFactory) -> GeneratorFactory:
        GENERATORS[name] = factory
        return factory

    return decorate


def make_generator(name: str, lang: str, parallel: list[ParallelPair]) -> SyntheticGenerator:
    if name not in GENERATORS:
        raise EdgeAdaptError(f"unknown synthetic generator {name!r}: choose one of {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](lang, parallel)


def switch_words(text: str, lexicon: Lexicon, prob: float, rng: random.Random, keep: tuple[int, int] | None = None):
    """Replace words of ``text`` with probability ``prob``; return the new text and an offset mapper.

    Words overlapping the character span ``keep`` are never replaced. The mapper turns an offset of
    the old text that lies outside every replaced word into the offset in the new text.
    """
    pieces: list[str] = []
    shifts: list[tuple[int, int]] = []  # (old offset after which, cumulative shift)
    last, shift, replaced = 0, 0, 0
    for match in WORD.finditer(text):
        begin, end = match.span()
        if keep is not None and begin < keep[1] and end > keep[0]:
            continue
        translation = lexicon.translate(match.group())
        if translation is None or rng.random() >= prob:
            continue
        if match.group()[:1].isupper():
            translation = translation[:1].upper() + translation[1:]
        pieces.append(text[last:begin])
        pieces.append(translation)
        last = end
        shift += len(translation) - (end - begin)
        shifts.append((end, shift))
        replaced += 1
    pieces.append(text[last:])

    def new_offset(old: int) -> int:
        moved = 0
        for boundary, cumulative in shifts:
            if boundary <= old:
                moved = cumulative
        return old + moved

    return "".join(pieces), new_offset, replaced


T = TypeVar("T")


def switched_copies(items: list[T], count: int, seed: int, switch: Callable[[T, random.Random], T | None]) -> list[T]:
    """Up to ``count`` results of ``switch`` over a seeded shuffle of ``items`` (those it returns None for are
    skipped): how every code-switch generator draws its copies."""
    rng = random.Random(seed)
    order = list(items)
    rng.shuffle(order)
    made: list[T] = []
    for item in order:
        if len(made) >= count:
            break
        switched = switch(item, rng)
        if switched is not None:
            made.append(switched)
    return made


@register_generator("code-switch")
@dataclass
class CodeSwitchGenerator(SyntheticGenerator):
    """Code-switching with a Dice lexicon induced from the parallel pairs of the target language."""

    lang: str
    parallel: list[ParallelPair]
    question_prob: float = 0.6
    context_prob: float = 0.15
    name: str = "code-switch"

    def __post_init__(self) -> None:
        self.lexicon = induce_lexicon(self.parallel)
        if len(self.lexicon) == 0:
            raise EdgeAdaptError(
                f"no bilingual lexicon could be induced for {self.lang} from {len(self.parallel)} parallel pairs:"
                " give more parallel data with --parallel-data"
            )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "lexicon_size": len(self.lexicon),
            "question_prob": self.question_prob,
            "context_prob": self.context_prob,
        }

    def switch(self, example: QAExample, rng: random.Random) -> QAExample | None:
        """One code-switched copy, or ``None`` when no question word could be replaced."""
        answer = example.answers[0]
        question, _, replaced = switch_words(example.question, self.lexicon, self.question_prob, rng)
        if replaced == 0:
            return None
        span = (answer.start, answer.start + len(answer.text))
        context, new_offset, _ = switch_words(example.context, self.lexicon, self.context_prob, rng, keep=span)
        start = new_offset(answer.start)
        if context[start : start + len(answer.text)] != answer.text:  # cannot happen; guard the invariant
            raise AssertionError(f"answer offset lost while switching {example.id}")
        return replace(
            example,
            id=f"{example.id}#cs-{self.lang}",
            question=question,
            context=context,
            answers=(Answer(answer.text, start),),
            lang=self.lang,
            question_en=example.question,
            meta={**example.meta, "synthetic": self.name},
        )

    def generate(self, examples: list[QAExample], count: int, seed: int) -> list[QAExample]:
        """Up to ``count`` switched examples from a seeded shuffle of ``examples`` (answerable ones only)."""
        answerable = [e for e in examples if e.answers and e.answers[0].start >= 0 and e.answers[0].text]
        return switched_copies(answerable, count, seed, self.switch)
