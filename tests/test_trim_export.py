"""`edgeadapt export --trim-vocab`: trimmed and full bundles of the tiny model answer alike on covered text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from run_factory import make_source_run, make_target_run
from tiny import CORPUS

from edgeadapt.bundle import read_manifest
from edgeadapt.cli.app import main
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.pipeline import export_bundle
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import pad_batch

FP32_TOL = 1e-5
COVERED = CORPUS[:9]  # English, Yoruba, Swahili sentences: the vocabulary corpus below
QUESTIONS = [
    ("Who wrote the novel?", CORPUS[3] + " " + CORPUS[4] + " " + CORPUS[0]),
    ("Ta ni ó kọ ìwé náà?", CORPUS[6] + " " + CORPUS[5]),
    ("Nani aliandika riwaya hiyo?", (CORPUS[8] + " " + CORPUS[7] + " ") * 6),  # several windows
]


@pytest.fixture(scope="module")
def workdir(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("trim-export")
    source = make_source_run(tiny_backbone, work / "runs" / "en")
    make_target_run(tiny_backbone, source, work / "runs" / "yo", "yo", rank=4, prompt_len=3, seed=1)
    (work / "corpus.txt").write_text("\n".join(COVERED) + "\n", encoding="utf-8")
    return work


@pytest.fixture(scope="module")
def bundles(workdir: Path) -> tuple[Path, Path]:
    """The full fp32 bundle, and the trimmed one exported through the CLI."""
    full = workdir / "full"
    export_bundle(None, workdir / "runs", full, quantize="none")
    trimmed = workdir / "trimmed"
    argv = ["export", "--quantize", "none", "--trim-vocab", "--vocab-corpus", str(workdir / "corpus.txt")]
    argv += ["--out", str(trimmed), "--workdir", str(workdir)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None)
    return full, trimmed


def _logits(engine: QAEngine, question: str, context: str, lang: str) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    windows = engine.windows(question, context)
    return np.stack(engine.logits(pad_batch(windows, 0), lang)), [w.input_ids for w in windows]


def test_trimmed_bundle_gives_the_same_logits_on_covered_text(bundles):
    full, trimmed = bundles
    big, small = QAEngine(full), QAEngine(trimmed)
    vocabulary = read_manifest(trimmed).source["vocabulary"]
    old_to_new = {}
    for lang in ("en", "yo"):
        for question, context in QUESTIONS:
            expected, old_ids = _logits(big, question, context, lang)
            got, new_ids = _logits(small, question, context, lang)
            assert len(old_ids) == len(new_ids) and [len(w) for w in old_ids] == [len(w) for w in new_ids]
            for old, new in zip(old_ids, new_ids, strict=True):
                for a, b in zip(old, new, strict=True):
                    assert old_to_new.setdefault(a, b) == b  # one consistent renumbering
            assert np.abs(expected - got).max() < FP32_TOL, (lang, question)
            assert big.answer(question, context, lang).text == small.answer(question, context, lang).text
    assert len(set(old_to_new.values())) == len(old_to_new) and max(old_to_new.values()) < vocabulary["rows_kept"]
    assert any(old != new for old, new in old_to_new.items())  # the ids were renumbered


def test_text_outside_the_vocabulary_still_gets_an_answer(bundles):
    _, trimmed = bundles
    engine = QAEngine(trimmed)
    unk = json.loads((trimmed / "tokenizer.json").read_text())["model"]["vocab"]["[UNK]"]
    question, context = "Πού είναι το 北京?", "Das Museum wurde 2020 in Köln eröffnet, 北京 ist weit."
    windows = engine.windows(question, context)
    assert any(unk in window.input_ids for window in windows)
    answer = engine.answer(question, context, "yo")
    assert answer.text and answer.text in context


def test_trimmed_bundle_is_smaller_and_its_manifest_records_the_vocabulary(bundles, workdir):
    full, trimmed = bundles
    manifest = read_manifest(trimmed)
    vocabulary = manifest.source["vocabulary"]
    assert vocabulary["rows_total"] > vocabulary["rows_kept"] > 5
    assert vocabulary["hidden_size"] == manifest.hidden_size == 32
    assert vocabulary["bytes_saved_fp32"] == (vocabulary["rows_total"] - vocabulary["rows_kept"]) * 32 * 4
    assert set(vocabulary["corpus"]) >= {str(workdir / "corpus.txt"), "texts_sha256"}
    assert (trimmed / "backbone.onnx").stat().st_size < (full / "backbone.onnx").stat().st_size
    assert "vocabulary" not in read_manifest(full).source


def test_cli_prints_rows_kept_and_bytes_saved(workdir, capsys):
    out = workdir / "capped"
    argv = ["export", "--quantize", "int8", "--mode", "merge", "--vocab-size", "150", "--out", str(out)]
    argv += ["--vocab-corpus", str(workdir / "corpus.txt"), "--workdir", str(workdir)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "150 of" in text and "embedding rows kept" in text and "MB saved" in text
    manifest = read_manifest(out)
    assert manifest.source["vocabulary"]["rows_kept"] == 150
    engine = QAEngine(out)
    assert engine.answer(*QUESTIONS[1], "yo").text


def test_bad_vocabulary_requests_are_one_line_errors(workdir, tmp_path, capsys):
    with pytest.raises(EdgeAdaptError, match="--vocab-size 3 is below"):
        export_bundle(
            None, workdir / "runs", tmp_path / "b", trim_vocab=True, vocab_corpus=workdir / "corpus.txt", vocab_size=3
        )
    assert not (tmp_path / "b").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--vocab-corpus", str(tmp_path / "missing.txt"), "--workdir", str(workdir)])
    assert exit_info.value.code == 2
    assert "error: --vocab-corpus" in capsys.readouterr().err
