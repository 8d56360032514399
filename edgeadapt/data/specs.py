"""Dataset specs: ``name:lang:split`` strings that name a file in the data directory, and their loaders.

=================  ===========================  ========================  ==============  =============
name               lang (any code is mapped)    splits                    default split   gives
=================  ===========================  ========================  ==============  =============
``xquad``          ISO 639-1 (``de``)           test                      test            QAExample
``tydiqa``         English name (``swahili``)   train, dev                dev             QAExample
``afriqa``         AfriQA code (``yor``)        train, dev, test          test            QAExample
``afriqa-queries`` AfriQA code (``yor``)        train, dev, test          train           ParallelPair
``flores200``      FLORES code (``yor_Latn``)   dev, devtest              dev             ParallelPair
``pawsx``          ISO 639-1 (``de``)           train, dev, test          dev             SentencePair
``squad``          en only                      train, dev                dev             QAExample
``drcd``           zh only (Traditional)        dev, test                 dev             QAExample
``cmrc2018``       zh only (Simplified)         trial, dev                dev             QAExample
``arcd``           ar only                      train, test               test            QAExample
``covidqa``        en only                      train (the whole file)    train           QAExample
=================  ===========================  ========================  ==============  =============

Datasets of one language (``fixed_lang``) have no language in their paths. The source (task) stage trains by
default on :func:`source_task_data`: every QA dataset's training splits that are present, in every language.

The language part takes any code :func:`normalize_lang` knows (``yo``, ``yor``, ``yoruba``) and
maps it to the dataset's own naming, so ``tydiqa:sw:dev`` is ``tydiqa:swahili:dev``. Any file of
a known format can be named by path: ``squad:/data/mlqa.de.json``, ``afriqa:/x/gold.hau.test.json``,
``flores200:/x/hau_Latn.dev`` (paired with ``eng_Latn.dev`` beside it), ``pawsx:/x/dev.tsv``,
``file:/x/any.json`` (format detected from the content). Append ``@LANG`` to a path to set the
language (``file:/x/q.json@ha``); otherwise it is guessed from the file name. A ``[first:stop]`` suffix keeps
a range of examples in file order (``pawsx:de:dev[:1000]`` trains, ``pawsx:de:dev[1000:]`` holds out the rest).

Files missing from the data directory but present in the repository's ``samples/data`` are read
from there with one warning: the samples are illustrative, written for this project.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from edgeadapt import paths
from edgeadapt.data import readers
from edgeadapt.data.examples import ParallelPair, QAExample, SentencePairExample
from edgeadapt.data.languages import find_language, is_language_code, normalize_lang
from edgeadapt.data.sources import UPSTREAMS
from edgeadapt.errors import EdgeAdaptError

SAMPLES_DATA = Path(__file__).resolve().parents[2] / "samples" / "data"
"""The repository's illustrative sample data (absent from a wheel install)."""

PATH_FORMATS = {"squad": "squad", "file": None, "afriqa": "afriqa", "afriqa-queries": "afriqa-queries"}
PATH_FORMATS |= {"flores200": "lines", "lines": "lines", "pawsx": "pawsx", "xquad": "squad", "tydiqa": "squad"}


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset's files lie in the data directory and how to read them."""

    name: str
    kind: str  # "qa", "parallel" or "pairs"
    format: str  # a readers.FORMATS entry
    naming: str  # the Language field holding this dataset's code for a language
    splits: tuple[str, ...]
    default_split: str
    pattern: str  # relative glob with {lang} and {split}
    description: str
    fixed_lang: str | None = None  # the one language (ISO 639-1) of a dataset whose paths name none
    train_splits: tuple[str, ...] = ("train",)  # the splits that are training material (none for evaluation sets)

    def relative(self, lang: str, split: str) -> str:
        return self.pattern.format(lang=lang, split=split)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "xquad", "qa", "squad", "iso1", ("test",), "test", "xquad/xquad.{lang}.json", "XQuAD (evaluation only)",
            train_splits=(),
        ),
        DatasetInfo(
            "tydiqa",
            "qa",
            "squad",
            "tydiqa",
            ("train", "dev"),
            "dev",
            "tydiqa/{lang}/{lang}_tydiqa_{split}.json",
            "TyDi QA GoldP",
        ),
        DatasetInfo(
            "afriqa",
            "qa",
            "afriqa",
            "afriqa",
            ("train", "dev", "test"),
            "test",
            "afriqa/{lang}/gold_span_passages.afriqa.{lang}.*.{split}.json",
            "AfriQA gold passages (question in the language, English passage)",
        ),
        DatasetInfo(
            "afriqa-queries",
            "parallel",
            "afriqa-queries",
            "afriqa",
            ("train", "dev", "test"),
            "train",
            "afriqa/queries/{lang}/queries.afriqa.{lang}.*.{split}.json",
            "AfriQA questions with human English translations",
        ),
        DatasetInfo(
            "flores200",
            "parallel",
            "lines",
            "flores",
            ("dev", "devtest"),
            "dev",
            "flores200/{split}/{lang}.{split}",
            "FLORES-200 sentences, parallel with eng_Latn",
        ),
        DatasetInfo(
            "pawsx", "pairs", "pawsx", "iso1", ("train", "dev", "test"), "dev", "pawsx/{lang}/{split}.tsv", "PAWS-X"
        ),
        DatasetInfo(
            "squad", "qa", "squad", "iso1", ("train", "dev"), "dev", "squad/{split}-v1.1.json", "SQuAD v1.1",
            fixed_lang="en",
        ),
        DatasetInfo(
            "drcd", "qa", "squad", "iso1", ("dev", "test"), "dev", "drcd/DRCD_{split}.json",
            "DRCD, Traditional Chinese (no training file here: dev is training material, test is kept for scoring)",
            fixed_lang="zh", train_splits=("dev",),
        ),
        DatasetInfo(
            "cmrc2018", "qa", "squad", "iso1", ("trial", "dev"), "dev", "cmrc2018/cmrc2018_{split}.json",
            "CMRC 2018, Simplified Chinese (no training file here: trial and dev are training material)",
            fixed_lang="zh", train_splits=("trial", "dev"),
        ),
        DatasetInfo(
            "arcd", "qa", "squad", "iso1", ("train", "test"), "test", "arcd/arcd-{split}.json",
            "ARCD, Arabic reading comprehension", fixed_lang="ar",
        ),
        DatasetInfo(
            "covidqa", "qa", "squad", "iso1", ("train",), "train", "covidqa/covidQA_*.json",
            "COVID-QA, English scientific passages (one file, no official split: training material)",
            fixed_lang="en",
        ),
    )
}  # fmt: skip
FLORES_SOURCE = "eng_Latn"
KNOWN_SPLITS = ("train", "dev", "devtest", "test", "validation")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed spec: dataset ``name``, ``lang`` in the dataset's own naming, ``split``.

    ``path`` is set for specs that name a file directly (``squad:/x/file.json``); ``format`` is
    then the reader to use (``None``: detect from the content).
    """

    name: str
    lang: str
    split: str
    path: Path | None = None
    format: str | None = None
    rows: tuple[int | None, int | None] | None = None
    """``[first:stop]`` suffix of the spec: only those examples, in file order (None: all)."""

    def __str__(self) -> str:
        suffix = "" if self.rows is None else f"[{_bound(self.rows[0])}:{_bound(self.rows[1])}]"
        if self.path is not None:
            return f"{self.name}:{self.path}@{self.lang}{suffix}"
        return f"{self.name}:{self.lang}:{self.split}{suffix}"

    def take(self, items: list) -> list:
        """The examples the spec's row range selects (all without one)."""
        return items if self.rows is None else items[self.rows[0] : self.rows[1]]


def _bound(value: int | None) -> str:
    return "" if value is None else str(value)


ROW_RANGE = re.compile(r"\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\]$")


def _split_rows(spec: str) -> tuple[str, tuple[int | None, int | None] | None]:
    """``pawsx:de:dev[:1000]`` -> (``pawsx:de:dev``, (None, 1000)); a spec without a range -> (spec, None)."""
    match = ROW_RANGE.search(spec)
    if match is None:
        if spec.endswith("]") and "[" in spec:
            raise EdgeAdaptError(f"bad row range in {spec!r}: write [first:stop] with whole numbers, e.g. [:1000]")
        return spec, None
    first, stop = (int(group) if group else None for group in match.groups())
    return spec[: match.start()].rstrip(), (first, stop)


# ----------------------------------------------------------------------------- data directory


_warned_samples: set[str] = set()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir``, else ``$EDGEADAPT_DATA``, else ``<cache>/data``."""
    return paths.data_dir(data_dir)


def _data_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    roots = [resolve_data_dir(data_dir)]
    if SAMPLES_DATA.is_dir() and SAMPLES_DATA.resolve() != roots[0].resolve():
        roots.append(SAMPLES_DATA)
    return roots


def _glob_one(root: Path, relative: str) -> Path | None:
    if "*" not in relative:
        candidate = root / relative
        return candidate if candidate.is_file() else None
    hits = sorted(root.glob(relative))
    # AfriQA pivots to English for most languages: prefer .en. where several pivots exist
    hits.sort(key=lambda p: ".en." not in p.name)
    return hits[0] if hits else None


def find_data_file(relative: str, data_dir: str | os.PathLike | None = None, *, warn: bool = True) -> Path | None:
    """The file at ``relative`` (a glob allowed) in the data directory, else in the samples (with one warning)."""
    roots = _data_roots(data_dir)
    for root in roots:
        found = _glob_one(root, relative)
        if found is None:
            continue
        if root == SAMPLES_DATA and root != roots[0] and warn:
            _warn_samples(roots[0])
        return found
    return None


def _warn_samples(data_root: Path) -> None:
    if "once" in _warned_samples:
        return
    _warned_samples.add("once")
    print(
        f"warning: data not found in {data_root}; using the repository's samples/data, which is illustrative"
        " sample data written for this project, not a real dataset (set --data-dir or EDGEADAPT_DATA,"
        " or run `edgeadapt data fetch`)",
        file=sys.stderr,
    )


def available_languages(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The languages of dataset ``name`` present in the data directory or the samples (dataset naming)."""
    info = _dataset(name)
    if info.fixed_lang is not None:
        present = any(find_data_file(info.relative(info.fixed_lang, s), data_dir, warn=False) for s in info.splits)
        return [info.fixed_lang] if present else []
    found: set[str] = set()
    for root in _data_roots(data_dir):
        for split in info.splits:
            regex = language_regex(info, split)
            for path in root.glob(info.pattern.format(lang="*", split=split)):
                match = regex.fullmatch(path.relative_to(root).as_posix())
                if match:
                    found.add(match.group("lang"))
    if name == "flores200":
        found.discard(FLORES_SOURCE)
    return sorted(found)


def language_regex(info: DatasetInfo, split: str) -> re.Pattern[str]:
    """A regex matching the dataset's relative paths for ``split``, capturing the language."""
    literal_parts = info.pattern.format(lang="\0", split=split).split("\0")
    escaped = [re.escape(part).replace("\\*", "[^/]*") for part in literal_parts]
    return re.compile(
        escaped[0] + "".join(f"(?P=lang){p}" if i else f"(?P<lang>[^/]+?){p}" for i, p in enumerate(escaped[1:]))
    )


def available_splits(name: str, lang: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The splits of ``name`` in language ``lang`` (dataset naming) that exist, in the dataset's order."""
    info = _dataset(name)
    return [split for split in info.splits if find_data_file(info.relative(lang, split), data_dir, warn=False)]


# ----------------------------------------------------------------------------- parsing


def _dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise EdgeAdaptError(
            f"unknown dataset {name!r}; available: {', '.join(DATASETS)} (or a file: squad:PATH, file:PATH)"
        )
    return DATASETS[name]


def _looks_like_path(text: str) -> bool:
    return (
        "/" in text
        or os.sep in text
        or Path(text).suffix in {".json", ".jsonl", ".tsv", ".txt"}
        or Path(text).is_file()
    )


def _lang_from_filename(path: Path) -> str:
    """The language a file name mentions (``xquad.de.json``, ``pawsx/de/dev.tsv``), preferring non-English."""
    tokens = [token for token in path.name.replace("_", ".").replace("-", ".").split(".") if token]
    tokens.append(path.parent.name)
    for token in tokens:
        if is_language_code(token) and token.lower() not in {"en", "eng", "english"}:
            return token
    return next((token for token in tokens if token.lower() in {"en", "eng", "english"}), "und")


def _path_spec(name: str, rest: str) -> DatasetSpec:
    lang = None
    if "@" in rest and not Path(rest).exists():
        rest, lang = rest.rsplit("@", 1)
    path = Path(rest).expanduser()
    if not path.is_file():
        raise EdgeAdaptError(f"data file not found: {path} (from spec '{name}:{rest}')")
    fmt = PATH_FORMATS[name] or readers.detect_format(path)
    tokens = path.name.replace("_", ".").replace("-", ".").split(".")
    split = next((token for token in tokens if token in KNOWN_SPLITS), "file")
    if lang is None:
        lang = _lang_from_filename(path)
        if fmt == "lines" and path.name.split(".")[0].startswith(f"{lang}_"):
            lang = path.name.split(".")[0]  # FLORES naming, e.g. yor_Latn
    return DatasetSpec(name=name, lang=lang, split=split, path=path, format=fmt)


def dataset_lang(info: DatasetInfo, code: str, data_dir: str | os.PathLike | None = None) -> str:
    """``code`` in dataset ``info``'s naming; raw codes already present in the data are kept as they are."""
    if info.fixed_lang is not None:
        language = find_language(code)
        if language is None or language.iso1 != info.fixed_lang:
            raise EdgeAdaptError(f"{info.name} has no language {code!r}; it is {info.fixed_lang} only")
        return info.fixed_lang
    if code in available_languages(info.name, data_dir):
        return code
    language = find_language(code)
    mapped = getattr(language, info.naming) if language else None
    if mapped is None:
        choices = ", ".join(available_languages(info.name, data_dir)) or "none in the data directory"
        raise EdgeAdaptError(f"{info.name} has no language {code!r}; available: {choices}")
    return mapped


def parse_spec(spec: str, data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """Parse ``name:lang[:split]`` (or ``name:PATH[@lang]``, or a bare file path) into a :class:`DatasetSpec`; a
    ``[first:stop]`` suffix keeps only those examples (``pawsx:de:dev[:1000]``, ``pawsx:de:dev[1000:]``)."""
    spec, rows = _split_rows(str(spec).strip())
    if rows is not None:
        return replace(parse_spec(spec, data_dir), rows=rows)
    name, sep, rest = spec.partition(":")
    if not sep:
        if _looks_like_path(spec) and Path(spec).is_file():
            return _path_spec("file", spec)
        raise EdgeAdaptError(f"bad dataset spec {spec!r}: write name:lang[:split], e.g. xquad:de, afriqa:yo:test")
    name = name.strip().lower()
    if name in PATH_FORMATS and _looks_like_path(rest):
        return _path_spec(name, rest)
    info = _dataset(name)
    lang, _, split = rest.partition(":")
    if not lang:
        raise EdgeAdaptError(f"bad dataset spec {spec!r}: missing the language, e.g. {name}:de")
    split = split.strip() or info.default_split
    if split not in info.splits:
        raise EdgeAdaptError(f"{info.name} has no split {split!r}; available: {', '.join(info.splits)}")
    return DatasetSpec(name=info.name, lang=dataset_lang(info, lang.strip(), data_dir), split=split)


def spec_file(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """The file a spec names, or an error naming the splits or languages that do exist."""
    if spec.path is not None:
        return spec.path
    info = _dataset(spec.name)
    found = find_data_file(info.relative(spec.lang, spec.split), data_dir)
    if found is not None:
        return found
    splits = available_splits(info.name, spec.lang, data_dir)
    where = resolve_data_dir(data_dir)
    if splits:
        raise EdgeAdaptError(
            f"{info.name}:{spec.lang} has no split {spec.split!r} in {where}; available: {', '.join(splits)}"
        )
    langs = ", ".join(available_languages(info.name, data_dir)) or "none"
    upstream_langs = UPSTREAMS[info.name].upstream_langs if info.name in UPSTREAMS else ()
    fetchable = upstream_langs is None or spec.lang in upstream_langs
    hint = f" (or run `edgeadapt data fetch {info.name} --lang {spec.lang}`)" if fetchable else ""
    raise EdgeAdaptError(f"{info.name} has no language {spec.lang!r} in {where}; available: {langs}{hint}")


def _as_spec(spec: str | DatasetSpec, data_dir: str | os.PathLike | None) -> DatasetSpec:
    return spec if isinstance(spec, DatasetSpec) else parse_spec(spec, data_dir)


def _kind_of(spec: DatasetSpec) -> str:
    if spec.path is not None:
        return {"squad": "qa", "afriqa": "qa", "afriqa-queries": "parallel", "lines": "parallel", "pawsx": "pairs"}[
            spec.format
        ]
    return DATASETS[spec.name].kind


def dataset_kind(spec: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> str:
    """What a spec holds: ``qa``, ``parallel`` or ``pairs`` (labelled sentence pairs)."""
    return _kind_of(_as_spec(spec, data_dir))


def _check_kind(spec: DatasetSpec, wanted: str, loader: str) -> None:
    kind = _kind_of(spec)
    if kind != wanted:
        names = ", ".join(info.name for info in DATASETS.values() if info.kind == wanted)
        raise EdgeAdaptError(f"{spec} is {kind} data, not {wanted} data; {loader} reads {names}")


# ----------------------------------------------------------------------------- loaders


def load_qa(spec: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> list[QAExample]:
    """Extractive QA examples of ``spec``, e.g. ``xquad:de``, ``afriqa:yo:train``, ``squad:/x/file.json``."""
    spec = _as_spec(spec, data_dir)
    _check_kind(spec, "qa", "load_qa")
    path = spec_file(spec, data_dir)
    fmt = spec.format or DATASETS[spec.name].format
    if fmt == "afriqa":
        return spec.take(readers.read_afriqa_gold(path, spec.lang))
    return spec.take(readers.read_squad(path, spec.lang))


def load_parallel(spec: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> list[ParallelPair]:
    """Parallel pairs (source = English, target = the language), e.g. ``flores200:yo:dev``, ``afriqa-queries:yo``."""
    spec = _as_spec(spec, data_dir)
    _check_kind(spec, "parallel", "load_parallel")
    path = spec_file(spec, data_dir)
    fmt = spec.format or DATASETS[spec.name].format
    if fmt == "afriqa-queries":
        return spec.take(readers.read_afriqa_queries(path, spec.lang, source_lang=readers.afriqa_pivot(path)))
    source_name = f"{FLORES_SOURCE}{''.join(path.suffixes)}"
    source = path.with_name(source_name)
    if not source.is_file() and spec.path is None:
        info = DATASETS[spec.name]
        source = find_data_file(info.relative(FLORES_SOURCE, spec.split), data_dir) or source
    if not source.is_file():
        raise EdgeAdaptError(f"{path} has no English side: {source} not found (FLORES files pair with {FLORES_SOURCE})")
    return spec.take(readers.read_aligned_lines(source, path, FLORES_SOURCE, spec.lang))


def load_sentence_pairs(
    spec: str | DatasetSpec, data_dir: str | os.PathLike | None = None
) -> list[SentencePairExample]:
    """Labelled sentence pairs (PAWS-X), e.g. ``pawsx:de:dev``."""
    spec = _as_spec(spec, data_dir)
    _check_kind(spec, "pairs", "load_sentence_pairs")
    return spec.take(readers.read_pawsx_tsv(spec_file(spec, data_dir), spec.lang))


# ----------------------------------------------------------------------------- defaults per language


def _existing(name: str, lang: str | None, split: str, data_dir: str | os.PathLike | None) -> list[str]:
    if lang is None:
        return []
    info = DATASETS[name]
    if find_data_file(info.relative(lang, split), data_dir, warn=False) is None:
        return []
    return [f"{name}:{lang}:{split}"]


def default_task_data(lang: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Specs of the QA training data for ``lang`` that exist: TyDi QA then AfriQA train splits (may be [])."""
    language = normalize_lang(lang)
    return _existing("tydiqa", language.tydiqa, "train", data_dir) + _existing(
        "afriqa", language.afriqa, "train", data_dir
    )


def source_task_data(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Specs of every QA training split present in the data directory, in every language: the source stage's
    default data. Evaluation-only sets (XQuAD) and splits kept for scoring (dev/test where a train split exists,
    DRCD test) are left out."""
    root = resolve_data_dir(data_dir)
    specs = [spec for spec, path in _training_splits(data_dir) if root in path.parents]
    if specs:
        return specs
    return [spec for spec, path in _training_splits(data_dir) if find_data_file(str(path), warn=True)]


def _training_splits(data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    found = []
    for info in DATASETS.values():
        if info.kind != "qa" or not info.train_splits:
            continue
        for lang in available_languages(info.name, data_dir):
            for split in info.train_splits:
                path = find_data_file(info.relative(lang, split), data_dir, warn=False)
                if path is not None:
                    found.append((f"{info.name}:{lang}:{split}", path))
    return found


def default_parallel_data(lang: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Specs of English-``lang`` parallel data that exist: FLORES-200 dev, AfriQA queries train (may be [])."""
    language = normalize_lang(lang)
    if language.iso3 == "eng":
        return []
    return _existing("flores200", language.flores, "dev", data_dir) + _existing(
        "afriqa-queries", language.afriqa, "train", data_dir
    )
