"""Readers: one function per file format, each turning any file of that format into example types.

- SQuAD v1.1 JSON (XQuAD, TyDi QA GoldP, MLQA, any SQuAD-style file): :func:`read_squad`
- AfriQA gold passages, JSON lines (``question_lang``, ``question_translated``, ``context``,
  ``answer_pivot``): :func:`read_afriqa_gold`
- AfriQA queries, JSON lines (``question``, ``translated_question``): :func:`read_afriqa_queries`
- FLORES-200, one sentence a line, two files aligned line by line: :func:`read_aligned_lines`
- PAWS-X TSV (``id sentence1 sentence2 label``): :func:`read_pawsx_tsv`

Every malformed file raises :class:`EdgeAdaptError` naming the file and the line or field.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from edgeadapt.data.examples import Answer, ParallelPair, QAExample, SentencePairExample
from edgeadapt.errors import EdgeAdaptError

FORMATS = ("squad", "afriqa", "afriqa-queries", "lines", "pawsx")


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeAdaptError(f"data file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise EdgeAdaptError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise EdgeAdaptError(f"cannot read {path}: {exc.strerror}") from None


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EdgeAdaptError(
                f"{path}:{number}: not valid JSON ({exc.msg}); expected one JSON object a line"
            ) from None
        if not isinstance(record, dict):
            raise EdgeAdaptError(f"{path}:{number}: expected a JSON object, found {type(record).__name__}")
        yield number, record


def _field(record: dict, key: str, where: str) -> object:
    if key not in record:
        raise EdgeAdaptError(f"{where}: missing field {key!r} (has {', '.join(sorted(record)) or 'nothing'})")
    return record[key]


def _locate(context: str, text: str, start: int) -> int:
    """The offset of ``text`` in ``context``: ``start`` when right, else the nearest exact or case-blind match.

    Returns -1 when the text does not occur in the context at all (AfriQA's yes/no answers).
    """
    if 0 <= start and context[start : start + len(text)] == text:
        return start
    searches = [(context, text)]
    if len(context.lower()) == len(context) and len(text.lower()) == len(text):  # offsets survive lower()
        searches.append((context.lower(), text.lower()))
    for haystack, needle in searches:
        hits = []
        position = haystack.find(needle)
        while position >= 0 and needle:
            hits.append(position)
            position = haystack.find(needle, position + 1)
        if hits:
            return min(hits, key=lambda hit: abs(hit - start))
    return -1


def _offset(value: object) -> int:
    """An answer offset as the file gives it; -1 (search the text) when it is missing or not a number."""
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1


def _recovered(answers: tuple[Answer, ...], starts: list[int]) -> int:
    """How many answers were moved off their recorded offset to where their text really is."""
    return sum(1 for answer, start in zip(answers, starts, strict=True) if answer.start >= 0 and answer.start != start)


def _answer(context: str, text: str, start: int) -> Answer:
    """An answer at its located offset, its text as the context spells it (a case-blind match may differ)."""
    located = _locate(context, text, start)
    return Answer(text=context[located : located + len(text)] if located >= 0 else text, start=located)


def read_squad(path: str | os.PathLike, lang: str) -> list[QAExample]:
    """Read a SQuAD v1.1-style JSON file (``{"data": [{"paragraphs": [{"context", "qas"}]}]}``)."""
    path = Path(path)
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise EdgeAdaptError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); expected SQuAD JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise EdgeAdaptError(f"{path}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    examples: list[QAExample] = []
    for article_number, article in enumerate(document["data"]):
        where = f"{path}: article {article_number}"
        if not isinstance(article, dict):
            raise EdgeAdaptError(f"{where}: expected an object with 'paragraphs'")
        title = article.get("title", "")
        for paragraph in _field(article, "paragraphs", where):
            context = _field(paragraph, "context", where)
            for qa in _field(paragraph, "qas", where):
                qa_where = f"{where}, question {qa.get('id', '?')}"
                answers, starts = [], []
                for answer in qa.get("answers", []):
                    text = str(_field(answer, "text", qa_where))
                    starts.append(_offset(answer.get("answer_start")))
                    answers.append(_answer(context, text, starts[-1]))
                examples.append(
                    QAExample(
                        id=str(_field(qa, "id", qa_where)),
                        question=str(_field(qa, "question", qa_where)),
                        context=context,
                        answers=tuple(answers),
                        lang=lang,
                        meta={"title": title, "source": str(path), "recovered": _recovered(tuple(answers), starts)},
                    )
                )
    return examples


def afriqa_pivot(path: Path) -> str:
    """The passage language of an AfriQA file from its name (``...afriqa.fon.fr.test.json`` -> fr), else en."""
    match = re.search(r"\.afriqa\.[^.]+\.([a-z]{2,3})\.[^.]+\.json$", path.name)
    return match.group(1) if match else "en"


def read_afriqa_gold(path: str | os.PathLike, lang: str) -> list[QAExample]:
    """Read AfriQA gold passages: target-language question, pivot-language (English) context and span.

    The English question (``question_translated``) becomes ``question_en``; the target-language
    answer (``answer_lang``) goes to ``meta["answer_lang"]``, the passage language (from the file
    name, ``en`` unless it says ``fr``) to ``meta["context_lang"]``. A few upstream offsets are wrong:
    the span is moved to the nearest occurrence of its text (case-blind if need be, the text then
    taken as the context spells it); answers whose text does not occur in the context at all
    (yes/no questions) keep ``start = -1``.
    """
    path = Path(path)
    context_lang = afriqa_pivot(path)
    examples: list[QAExample] = []
    for number, record in _json_lines(path):
        where = f"{path}:{number}"
        context = str(_field(record, "context", where))
        pivot = _field(record, "answer_pivot", where)
        if not isinstance(pivot, dict):
            raise EdgeAdaptError(f"{where}: 'answer_pivot' should be an object with 'text' and 'answer_start' lists")
        texts, starts = _field(pivot, "text", where), _field(pivot, "answer_start", where)
        starts = [_offset(start) for start in starts]
        answers = tuple(_answer(context, str(text), start) for text, start in zip(texts, starts, strict=False))
        examples.append(
            QAExample(
                id=str(_field(record, "id", where)),
                question=str(_field(record, "question_lang", where)),
                context=context,
                answers=answers,
                lang=lang,
                question_en=record.get("question_translated"),
                meta={
                    "title": record.get("title", ""),
                    "answer_lang": record.get("answer_lang"),
                    "context_lang": context_lang,
                    "source": str(path),
                    "recovered": _recovered(answers, starts[: len(answers)]),
                },
            )
        )
    return examples


def read_afriqa_queries(path: str | os.PathLike, lang: str, source_lang: str = "en") -> list[ParallelPair]:
    """Read AfriQA queries as parallel pairs: source = the English ``translated_question``, target = ``question``."""
    path = Path(path)
    pairs = []
    for number, record in _json_lines(path):
        where = f"{path}:{number}"
        target = str(_field(record, "question", where)).strip()
        source = str(_field(record, "translated_question", where)).strip()
        if source and target:
            pairs.append(ParallelPair(source=source, target=target, source_lang=source_lang, target_lang=lang))
    return pairs


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a one-sentence-a-line file, without line ends."""
    return _read_text(Path(path)).splitlines()


def read_aligned_lines(
    source_path: str | os.PathLike, target_path: str | os.PathLike, source_lang: str, target_lang: str
) -> list[ParallelPair]:
    """Pair line i of ``source_path`` with line i of ``target_path`` (FLORES-200); counts must agree."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        raise EdgeAdaptError(
            f"{target_path} has {len(targets)} lines but {source_path} has {len(sources)}: not aligned line by line"
        )
    return [
        ParallelPair(source=s.strip(), target=t.strip(), source_lang=source_lang, target_lang=target_lang)
        for s, t in zip(sources, targets, strict=True)
        if s.strip() and t.strip()
    ]


def read_pawsx_tsv(path: str | os.PathLike, lang: str) -> list[SentencePairExample]:
    """Read a PAWS-X TSV file with a header ``id sentence1 sentence2 label``."""
    path = Path(path)
    rows = list(csv.reader(_read_text(path).splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or [c.strip() for c in rows[0][:4]] != ["id", "sentence1", "sentence2", "label"]:
        raise EdgeAdaptError(f"{path}: not PAWS-X TSV (expected a header 'id<TAB>sentence1<TAB>sentence2<TAB>label')")
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 4 or row[3].strip() not in ("0", "1"):
            raise EdgeAdaptError(f"{path}:{number}: expected 4 tab-separated fields with label 0 or 1")
        examples.append(
            SentencePairExample(id=row[0], sentence1=row[1], sentence2=row[2], label=int(row[3]), lang=lang)
        )
    return examples


def detect_format(path: str | os.PathLike) -> str:
    """Guess a file's format from its content: one of :data:`FORMATS`."""
    path = Path(path)
    if path.suffix == ".tsv":
        return "pawsx"
    head = _read_text(path).lstrip()[:20000]
    if head.startswith("{"):
        first_line = head.splitlines()[0]
        try:
            record = json.loads(first_line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            if "answer_pivot" in record or "question_lang" in record:
                return "afriqa"
            if "translated_question" in record:
                return "afriqa-queries"
            if "data" in record:
                return "squad"
        if '"data"' in head:
            return "squad"
        raise EdgeAdaptError(f"{path}: JSON of an unknown layout; expected SQuAD JSON or AfriQA JSON lines")
    return "lines"
