"""A bilingual word lexicon induced from sentence pairs by co-occurrence (Dice coefficient).

For an English word ``e`` and a target word ``t``: ``dice(e, t) = 2 c(e, t) / (c(e) + c(t))`` where
``c`` counts the sentence pairs holding the word(s). Each English word keeps its best target word
when the pair was seen at least ``min_count`` times and the score reaches ``min_dice``.
No model, no download: FLORES-200 dev (997 pairs) and AfriQA question pairs suffice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from edgeadapt.data.examples import ParallelPair

WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and inner apostrophes; diacritics kept)."""
    return [w.lower() for w in WORD.findall(text)]


@dataclass(frozen=True)
class Lexicon:
    """English word -> (target word, Dice score)."""

    entries: dict[str, tuple[str, float]]

    def translate(self, word: str) -> str | None:
        entry = self.entries.get(word.lower())
        return entry[0] if entry else None

    def __len__(self) -> int:
        return len(self.entries)

    def to_json(self) -> dict[str, list]:
        return {k: [v[0], round(v[1], 4)] for k, v in sorted(self.entries.items())}


def induce_lexicon(pairs: Iterable[ParallelPair], *, min_count: int = 2, min_dice: float = 0.3) -> Lexicon:
    """Best Dice translation of every English word that co-occurs often enough with one target word."""
    source_counts: Counter[str] = Counter()
    target_counts: Counter[str] = Counter()
    joint: Counter[tuple[str, str]] = Counter()
    for pair in pairs:
        source, target = set(words(pair.source)), set(words(pair.target))
        source_counts.update(source)
        target_counts.update(target)
        joint.update((s, t) for s in source for t in target)
    best: dict[str, tuple[str, float]] = {}
    for (s, t), count in joint.items():
        if count < min_count or s.isdigit():
            continue
        dice = 2 * count / (source_counts[s] + target_counts[t])
        if dice >= min_dice and (s not in best or (dice, t) > (best[s][1], best[s][0])):
            best[s] = (t, dice)
    return Lexicon(best)
