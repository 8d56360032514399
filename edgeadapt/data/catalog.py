"""What data is present: every dataset, language and split found in the data directory, with counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgeadapt.data import readers
from edgeadapt.data.languages import find_language
from edgeadapt.data.specs import DATASETS, FLORES_SOURCE, SAMPLES_DATA, DatasetInfo, language_regex, resolve_data_dir
from edgeadapt.errors import EdgeAdaptError


@dataclass(frozen=True)
class CatalogEntry:
    """One file of a known dataset: its spec, where it is, how many examples it holds."""

    dataset: str
    lang: str
    split: str
    path: Path
    count: int | None  # None: the file could not be read (see ``problem``)
    samples: bool  # True: the repository's illustrative samples, not real data
    root: Path
    problem: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.dataset}:{self.lang}:{self.split}"

    @property
    def relative(self) -> str:
        """The file's path inside its data directory."""
        return self.path.relative_to(self.root).as_posix()

    @property
    def language(self) -> str:
        """The language's English name (the dataset's code when edgeadapt does not know it)."""
        language = find_language(self.lang)
        return language.name if language else self.lang


def count_examples(info: DatasetInfo, path: Path, lang: str) -> int:
    """How many examples (QA questions, parallel lines, sentence pairs) a file holds."""
    fmt = info.format
    if fmt == "squad":
        return len(readers.read_squad(path, lang))
    if fmt == "afriqa":
        return len(readers.read_afriqa_gold(path, lang))
    if fmt == "afriqa-queries":
        return len(readers.read_afriqa_queries(path, lang))
    if fmt == "pawsx":
        return len(readers.read_pawsx_tsv(path, lang))
    return sum(1 for line in readers.read_lines(path) if line.strip())


def _scan_root(root: Path, samples: bool) -> list[CatalogEntry]:
    entries = []
    for info in DATASETS.values():
        for split in info.splits:
            regex = language_regex(info, split)
            for path in sorted(root.glob(info.pattern.format(lang=info.fixed_lang or "*", split=split))):
                match = regex.fullmatch(path.relative_to(root).as_posix())
                if info.fixed_lang is not None:  # one language, not named in the path
                    lang = info.fixed_lang
                elif match:
                    lang = match.group("lang")
                else:
                    continue
                try:
                    count: int | None = count_examples(info, path, lang)
                    problem = None
                except EdgeAdaptError as exc:  # list the rest; say what is wrong with this one
                    count, problem = None, str(exc)
                entries.append(CatalogEntry(info.name, lang, split, path, count, samples, root, problem))
    return entries


def scan(data_dir: str | os.PathLike | None = None, include_samples: bool = True) -> list[CatalogEntry]:
    """Every dataset file in the data directory; samples fill in what the data directory lacks."""
    root = resolve_data_dir(data_dir)
    entries = _scan_root(root, samples=False) if root.is_dir() else []
    if include_samples and SAMPLES_DATA.is_dir() and SAMPLES_DATA.resolve() != root.resolve():
        present = {entry.spec for entry in entries}
        entries += [entry for entry in _scan_root(SAMPLES_DATA, samples=True) if entry.spec not in present]
    order = list(DATASETS)
    entries.sort(key=lambda e: (order.index(e.dataset), e.lang != FLORES_SOURCE, e.lang, e.split, e.samples))
    return entries
