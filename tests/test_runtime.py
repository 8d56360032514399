"""Runtime: answers from a real int8 bundle, language switching without state bleed, threads, refusals, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from run_factory import make_source_run, make_target_run, make_workspace

from edgeadapt.bundle import MANIFEST_FILE
from edgeadapt.cli.app import main
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.adapters import write_adapter_file
from edgeadapt.export.pipeline import export_bundle
from edgeadapt.fileio import sha256_file
from edgeadapt.runtime import Answer, QAEngine
from edgeadapt.runtime.features import pad_batch

QUESTION = "who wrote the novel?"
CONTEXT = "The novel was written by Chinua Achebe in 1958."
LONG_CONTEXT = ("Lagos is the largest city in Nigeria and one of the largest in Africa. " * 8) + CONTEXT


@pytest.fixture(scope="module")
def bundle(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("runtime-work")
    make_workspace(tiny_backbone, work)
    export_bundle(None, work / "runs", work / "export", quantize="int8")
    return work / "export"


@pytest.fixture()
def bundle_copy(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    return copy


def _feeds(engine: QAEngine) -> dict[str, np.ndarray]:
    return pad_batch(engine.windows(QUESTION, LONG_CONTEXT), 0)


def test_answer_is_a_span_of_the_context(bundle):
    engine = QAEngine(bundle)
    answer = engine.answer(QUESTION, CONTEXT, lang="yo")
    assert isinstance(answer, Answer) and answer.lang == "yo" and answer.latency_ms > 0
    assert answer.text and answer.text == CONTEXT[answer.start : answer.end]
    assert 0 < answer.score <= 1


def test_long_context_uses_sliding_windows_and_batches(bundle):
    engine = QAEngine(bundle, batch_size=2)
    windows = engine.windows(QUESTION, LONG_CONTEXT)
    assert len(windows) > 1 and max(len(w) for w in windows) <= engine.manifest.max_length
    answers = engine.answer_batch([QUESTION, QUESTION], [CONTEXT, LONG_CONTEXT], "sw")
    for answer, context in zip(answers, [CONTEXT, LONG_CONTEXT], strict=True):
        assert answer.lang == "sw" and answer.text and answer.text == context[answer.start : answer.end]
    # int8 activations are quantised per tensor, so a window's logits depend (slightly) on its batch mates
    alone = engine.logits(pad_batch(windows[:1], 0), "sw")[0][0]
    together = engine.logits(pad_batch(windows, 0), "sw")[0][0][: len(windows[0])]
    assert np.abs(alone - together).max() < 0.25


def test_switching_languages_leaves_no_state_behind(bundle):
    engine = QAEngine(bundle)
    feeds = _feeds(engine)
    first_yo = engine.logits(feeds, "yo")
    sw = engine.logits(feeds, "sw")
    en = engine.logits(feeds, "en")
    again_yo = engine.logits(feeds, "yo")
    assert np.array_equal(first_yo[0], again_yo[0]) and np.array_equal(first_yo[1], again_yo[1])
    assert np.abs(first_yo[0] - sw[0]).max() > 0.1 and np.abs(first_yo[0] - en[0]).max() > 0.1


def test_threads_asking_in_different_languages_get_their_own_answers(bundle):
    engine = QAEngine(bundle)
    feeds = _feeds(engine)
    expected = {lang: engine.logits(feeds, lang)[0] for lang in ("en", "yo", "sw")}
    langs = ["yo", "sw", "en", "sw", "yo", "en"] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda lang: (lang, engine.logits(feeds, lang)[0]), langs))
    for lang, start in results:
        assert np.allclose(start, expected[lang], atol=1e-5), lang


def _replace_file(bundle: Path, name: str, write) -> None:
    """Overwrite a bundle file and record its new checksum, as someone swapping files by hand would."""
    write(bundle / name)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"][name] = sha256_file(bundle / name)
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_adapter_exported_for_another_backbone_is_refused(bundle_copy, tiny_backbone, tmp_path):
    """The yo file of a bundle whose source run (task LoRA + head) differs, dropped in with a fixed checksum."""
    source = make_source_run(tiny_backbone, tmp_path / "other" / "en", seed=9)
    make_target_run(tiny_backbone, source, tmp_path / "other" / "yo", "yo", rank=4, prompt_len=3, seed=1)
    export_bundle(None, tmp_path / "other", tmp_path / "other-bundle", quantize="none")
    _replace_file(
        bundle_copy, "yo.onnx_adapter", lambda p: shutil.copy(tmp_path / "other-bundle" / "yo.onnx_adapter", p)
    )
    engine = QAEngine(bundle_copy)
    assert engine.languages == ["en", "sw"]
    assert "another backbone" in engine.unavailable["yo"]
    with pytest.raises(EdgeAdaptError, match="unavailable"):
        engine.answer(QUESTION, CONTEXT, "yo")
    assert engine.answer(QUESTION, CONTEXT, "sw").lang == "sw"


def test_adapter_with_wrong_shapes_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    bad = {
        name: np.ones([2 if d == 2 else d // 2 for d in shape], np.float32)
        for name, shape in manifest["languages"]["sw"]["tensors"].items()
    }
    _replace_file(
        bundle_copy, "sw.onnx_adapter", lambda p: write_adapter_file(p, bad, manifest["adapter_model_version"])
    )
    engine = QAEngine(bundle_copy)
    assert "sw" not in engine.languages and "does not match" in engine.unavailable["sw"]
    assert engine.answer(QUESTION, CONTEXT, "yo").text


def test_corrupt_and_missing_adapters_are_refused(bundle_copy):
    data = bytearray((bundle_copy / "yo.onnx_adapter").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle_copy / "yo.onnx_adapter").write_bytes(bytes(data))
    (bundle_copy / "sw.onnx_adapter").unlink()
    engine = QAEngine(bundle_copy)
    assert engine.languages == ["en"]
    assert "corrupt" in engine.unavailable["yo"] and "missing" in engine.unavailable["sw"]
    assert engine.answer(QUESTION, CONTEXT, "en").text
    with pytest.raises(EdgeAdaptError, match="no language 'ha'"):
        engine.answer(QUESTION, CONTEXT, "ha")


def test_runtime_loads_no_torch_or_transformers(bundle):
    code = (
        "import sys\n"
        "from edgeadapt.runtime import QAEngine\n"
        f"engine = QAEngine({str(bundle)!r})\n"
        f"print(engine.answer({QUESTION!r}, {CONTEXT!r}, lang='yo').text)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', 'peft'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "HEAVY []" in result.stdout, result.stdout


def test_ask_cli_prints_json(bundle, tmp_path, capsys):
    context_file = tmp_path / "context.txt"
    context_file.write_text(LONG_CONTEXT, encoding="utf-8")
    args = ["ask", "--bundle", str(bundle), "--lang", "yo", "--question", QUESTION]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--context-file", str(context_file), "--json"])
    assert exit_info.value.code in (0, None)
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"answer", "score", "start", "end", "lang", "latency_ms", "load_ms"}
    assert record["load_ms"] > 0
    assert record["lang"] == "yo" and record["answer"] == LONG_CONTEXT[record["start"] : record["end"]]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--context", CONTEXT])
    assert capsys.readouterr().out.strip() == QAEngine(bundle).answer(QUESTION, CONTEXT, "yo").text
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--bundle", str(bundle), "--lang", "xx", "--question", QUESTION, "--context", CONTEXT])
    assert exit_info.value.code == 2
    assert "error: bundle" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--bundle", str(tmp_path), "--question", QUESTION, "--context", CONTEXT])
    assert exit_info.value.code == 2 and "not an edgeadapt bundle" in capsys.readouterr().err


def test_manifest_pointing_outside_the_bundle_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    manifest["files"]["../outside.onnx_adapter"] = "0" * 64
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(EdgeAdaptError, match="plain file name"):
        QAEngine(bundle_copy)
