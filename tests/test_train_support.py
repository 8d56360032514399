"""Support for the training tests (no tests here): a tiny data directory laid out like shared/data."""

from __future__ import annotations

import json
from pathlib import Path

ENGLISH_QA = [
    (
        "Lagos is the largest city in Nigeria and one of the largest in Africa.",
        "What is the largest city in Nigeria?",
        "Lagos",
    ),
    (
        "The river Niger flows through Nigeria and Mali to the Atlantic Ocean.",
        "Where does the river Niger flow to?",
        "the Atlantic Ocean",
    ),
    (
        "Nairobi is the capital of Kenya; Swahili is spoken across East Africa.",
        "What is the capital of Kenya?",
        "Nairobi",
    ),
    ("The novel was written by Chinua Achebe in 1958.", "Who wrote the novel?", "Chinua Achebe"),
    ("The university was founded in 1948 in Ibadan.", "When was the university founded?", "1948"),
    ("Berlin is the capital of Germany. The Rhine flows through Germany.", "What is the capital of Germany?", "Berlin"),
    (
        "Swahili is spoken across East Africa and Nairobi is in Kenya.",
        "Which language is spoken across East Africa?",
        "Swahili",
    ),
    ("The university in Ibadan was founded in 1948 by the country.", "Which city has the university?", "Ibadan"),
]

YORUBA_QA = [
    (
        "Lagos is the largest city in Nigeria.",
        "Ki ni ìlú tó tóbi jù lọ ní Nàìjíríà?",
        "What is the largest city in Nigeria?",
        "Lagos",
    ),
    ("The novel was written by Chinua Achebe in 1958.", "Ta ni ó kọ ìwé náà?", "Who wrote the novel?", "Chinua Achebe"),
    (
        "The river Niger flows through Nigeria and Mali.",
        "Odò wo ni ó ń ṣàn gba Nàìjíríà?",
        "Which river flows through Nigeria?",
        "Niger",
    ),
    (
        "The university was founded in 1948 in Ibadan.",
        "Ní ọdún wo ni wọ́n dá yunifásítì náà?",
        "When was the university founded?",
        "1948",
    ),
]

FLORES = [
    ("Who wrote the novel?", "Ta ni ó kọ ìwé náà?"),
    ("The novel was written by Chinua Achebe in 1958.", "Chinua Achebe ni ó kọ ìwé náà ní ọdún 1958."),
    ("Lagos is the largest city.", "Èkó ni ìlú tó tóbi jù lọ."),
    ("The river flows through Nigeria.", "Odò ń ṣàn gba orílẹ̀-èdè Nàìjíríà kọjá."),
    ("Who is the largest city?", "Ta ni ìlú tó tóbi jù lọ?"),
    ("The city in Nigeria.", "Ìlú ní Nàìjíríà."),
    ("Who wrote the book in 1958?", "Ta ni ó kọ ìwé ní ọdún 1958?"),
    ("The largest river in Nigeria.", "Odò tó tóbi jù lọ ní Nàìjíríà."),
    ("What is the city?", "Ki ni ìlú náà?"),
    ("What is the river?", "Ki ni odò náà?"),
    ("What year was it written?", "Ọdún wo ni wọ́n kọ ọ́?"),
    ("Who wrote it?", "Ta ni ó kọ ọ́?"),
]


def _squad(rows: list[tuple[str, str, str]], prefix: str) -> dict:
    paragraphs = []
    for i, (context, question, answer) in enumerate(rows):
        qa = {
            "id": f"{prefix}{i}",
            "question": question,
            "answers": [{"text": answer, "answer_start": context.index(answer)}],
        }
        paragraphs.append({"context": context, "qas": [qa]})
    return {"version": "1.1", "data": [{"title": "tiny", "paragraphs": paragraphs}]}


def write_tiny_data(root: Path) -> Path:
    """Write the tiny data directory under ``root`` and return it."""
    english = root / "tydiqa" / "english"
    english.mkdir(parents=True)
    (english / "english_tydiqa_train.json").write_text(json.dumps(_squad(ENGLISH_QA, "en")), encoding="utf-8")
    yor = root / "afriqa" / "yor"
    yor.mkdir(parents=True)
    lines = []
    for i, (context, question, question_en, answer) in enumerate(YORUBA_QA):
        record = {
            "id": str(i),
            "context": context,
            "question_lang": question,
            "question_translated": question_en,
            "answer_pivot": {"answer_start": [context.index(answer)], "text": [answer]},
            "answer_lang": answer,
            "title": "tiny",
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    (yor / "gold_span_passages.afriqa.yor.en.train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    queries = root / "afriqa" / "queries" / "yor"
    queries.mkdir(parents=True)
    rows = [{"id": i, "question": q, "translated_question": q_en} for i, (_, q, q_en, _) in enumerate(YORUBA_QA)]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (queries / "queries.afriqa.yor.en.train.json").write_text(text, encoding="utf-8")
    flores = root / "flores200" / "dev"
    flores.mkdir(parents=True)
    (flores / "eng_Latn.dev").write_text("\n".join(s for s, _ in FLORES) + "\n", encoding="utf-8")
    (flores / "yor_Latn.dev").write_text("\n".join(t for _, t in FLORES) + "\n", encoding="utf-8")
    return root


def tiny_pawsx_rows() -> list[tuple[str, str, int]]:
    """Sentence pairs in the tiny vocabulary: a paraphrase (1) keeps the words of a sentence with two of them
    swapped; a non-paraphrase (0) pairs two different sentences."""
    from tiny import CORPUS

    sentences = [s for s in CORPUS[:10] if len(s.split()) > 4]
    rows = []
    for i, sentence in enumerate(sentences):
        words = sentence.split()
        swapped = words[:]
        swapped[1], swapped[2] = swapped[2], swapped[1]
        rows.append((sentence, " ".join(swapped), 1))
        rows.append((sentence, sentences[(i + 3) % len(sentences)], 0))
    return rows


def write_tiny_pawsx(root: Path, lang: str, split: str = "dev") -> Path:
    """Write ``pawsx/<lang>/<split>.tsv`` (PAWS-X's TSV with header) under ``root`` and return the file."""
    folder = root / "pawsx" / lang
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id\tsentence1\tsentence2\tlabel"]
    lines += [f"{i}\t{a}\t{b}\t{label}" for i, (a, b, label) in enumerate(tiny_pawsx_rows(), start=1)]
    path = folder / f"{split}.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
