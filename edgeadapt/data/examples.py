"""The example types every reader produces, whatever the file format."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """A gold answer: its text and the character offset where it starts in the context."""

    text: str
    start: int


@dataclass(frozen=True)
class QAExample:
    """One extractive question-answering example.

    ``question_en`` is the English version of the question when the dataset has one (AfriQA);
    ``lang`` is the language of the question (the context may be in another, as in AfriQA).
    """

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    lang: str
    question_en: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def located_answers(self) -> tuple[Answer, ...]:
        """The answers found in the context (``start >= 0``): the ones a span head can learn.

        An answer with ``start == -1`` has gold text that does not occur in the context (a few
        AfriQA yes/no answers); it still counts for EM/F1, which compare texts.
        """
        return tuple(answer for answer in self.answers if answer.start >= 0)


@dataclass(frozen=True)
class ParallelPair:
    """A source-language text and its target-language counterpart (FLORES-200, AfriQA queries)."""

    source: str
    target: str
    source_lang: str
    target_lang: str


@dataclass(frozen=True)
class SentencePairExample:
    """A labelled sentence pair (PAWS-X paraphrase identification)."""

    id: str
    sentence1: str
    sentence2: str
    label: int
    lang: str
