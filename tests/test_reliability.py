"""Issue 15: export never deletes what it did not write, never serves a mismatched model, never shows a traceback."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import onnx
import pytest
from cli_runner import run_cli
from run_factory import make_source_run, make_target_run, make_workspace

from edgeadapt.bundle import GRAPH_BACKBONE_KEY, MANIFEST_FILE, check_graph_identity, read_manifest
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.pipeline import export_bundle, stamp_graph
from edgeadapt.fileio import sha256_file
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import encode_windows, windowing_tokenizer
from edgeadapt.training.runs import RUN_FILE, load_run_model, read_run

CONTEXT = "Things Fall Apart is a novel by Chinua Achebe, first published in 1958. Achebe wrote it."


@pytest.fixture(scope="module")
def work(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tiny_backbone, tmp_path_factory.mktemp("reliability-work"))


@pytest.fixture(scope="module")
def bundle(work: Path) -> Path:
    export_bundle(None, work / "runs", work / "export", quantize="none")
    return work / "export"


@pytest.fixture()
def bundle_copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


def _export(work: Path, out: Path | str, capsys) -> tuple[int, str]:
    return run_cli(["export", "--quantize", "none", "--workdir", str(work), "--out", str(out)], capsys)


def _one_line_error(code: int, err: str, *phrases: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def _rewrite_manifest(bundle: Path, change) -> None:
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _refix_checksum(bundle: Path, name: str) -> None:
    def fix(data):
        data["files"][name] = sha256_file(bundle / name)
        return data

    _rewrite_manifest(bundle, fix)


# --- 1. data loss -------------------------------------------------------------------------------------------------
def test_export_refuses_a_folder_that_is_not_a_bundle(work: Path, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    code, err = _export(work, mine, capsys)
    _one_line_error(code, err, "not an edgeadapt bundle", "notes.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["mine"] and (mine / "notes.txt").read_text() == "x"


@pytest.mark.parametrize("where", ["workdir", "runs", "run"])
def test_export_refuses_an_out_that_holds_the_runs(work: Path, capsys, where: str) -> None:
    out = {"workdir": work, "runs": work / "runs", "run": work / "runs" / "yo"}[where]
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    code, err = _export(work, out, capsys)
    _one_line_error(code, err, "export replaces the whole folder")
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before


def test_export_refuses_an_existing_file_and_a_path_under_a_file(work: Path, tmp_path: Path, capsys) -> None:
    existing = tmp_path / "bundle.zip"
    existing.write_text("mine")
    _one_line_error(*_export(work, existing, capsys), "is a file")
    _one_line_error(*_export(work, existing / "sub", capsys), "is a file, not a folder")
    assert existing.read_text() == "mine"


def test_export_refuses_the_current_folder(work: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _one_line_error(*_export(work, ".", capsys), "current folder")
    _one_line_error(*_export(work, "..", capsys), "current folder")


def test_export_refuses_a_bundle_that_holds_other_files(work: Path, bundle_copy: Path, capsys) -> None:
    (bundle_copy / "notes.txt").write_text("x")
    _one_line_error(*_export(work, bundle_copy, capsys), "also holds notes.txt")
    assert (bundle_copy / "notes.txt").exists() and (bundle_copy / MANIFEST_FILE).exists()


def test_export_replaces_its_own_bundle_and_an_empty_folder(work: Path, bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "yo.onnx_adapter").write_bytes(b"stale")
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (bundle_copy, empty):
        export_bundle([work / "runs" / "yo"], work / "runs", out, quantize="none")
        assert QAEngine(out).languages == ["en", "yo"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "empty"]  # nothing left beside them


# --- 4. unfinished runs ------------------------------------------------------------------------------------------
def test_export_leaves_out_an_unfinished_run_with_a_warning(tiny_backbone: Path, tmp_path: Path, caplog) -> None:
    copy = make_workspace(tiny_backbone, tmp_path / "w")
    (copy / "runs" / "sw" / RUN_FILE).unlink()  # sw is being retrained in place
    (copy / "runs" / "sw" / "metrics.jsonl").write_text("")
    with caplog.at_level(logging.WARNING):
        manifest = export_bundle(None, copy / "runs", tmp_path / "out", quantize="none")
    assert sorted(manifest.languages) == ["en", "yo"]
    assert "leaving out" in caplog.text and "unfinished run" in caplog.text
    with pytest.raises(EdgeAdaptError, match="is an unfinished run"):
        read_run(copy / "runs" / "sw")


# --- 2. stale languages -----------------------------------------------------------------------------------------
def test_target_runs_record_the_identity_of_their_source_run(work: Path) -> None:
    info = read_run(work / "runs" / "yo")
    assert len(info["source_identity"]) == 64


def test_retraining_the_source_in_place_refuses_the_targets_trained_on_the_old_one(
    tiny_backbone: Path, tmp_path: Path, capsys
) -> None:
    work = make_workspace(tiny_backbone, tmp_path / "work")
    make_source_run(tiny_backbone, work / "runs" / "en", seed=5)  # `train --lang en --seed 5`, in place
    code, err = _export(work, tmp_path / "out", capsys)
    _one_line_error(code, err, "runs/", "another version of source run", "edgeadapt train --lang")
    assert not (tmp_path / "out").exists()
    with pytest.raises(EdgeAdaptError, match="retrained since"):
        load_run_model(work / "runs" / "sw")  # eval refuses it too
    make_target_run(tiny_backbone, work / "runs" / "en", work / "runs" / "yo", "yo")  # retrained: fine again
    export_bundle([work / "runs" / "yo"], work / "runs", tmp_path / "out", quantize="none")


def test_runs_made_before_the_source_identity_existed_load_with_a_warning(work: Path, tmp_path: Path, caplog) -> None:
    legacy = Path(shutil.copytree(work / "runs" / "yo", tmp_path / "yo"))
    info = read_run(legacy)
    del info["source_identity"]
    info["source_run"] = str((work / "runs" / "en").resolve())
    (legacy / RUN_FILE).write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        load_run_model(legacy)
    assert "does not record which version of source run" in caplog.text


# --- 3. a swapped backbone --------------------------------------------------------------------------------------
def test_graphs_carry_the_backbone_identity(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    props = {p.key: p.value for p in onnx.load(str(bundle / "backbone.onnx"), load_external_data=False).metadata_props}
    assert props[GRAPH_BACKBONE_KEY] == manifest.backbone_id
    assert manifest.graph_options["identity_in_graph"] is True


def test_a_backbone_of_another_export_is_refused_even_with_its_checksum_fixed(bundle_copy: Path, capsys) -> None:
    stamp_graph(bundle_copy / "backbone.onnx", "f" * 64)  # what another export's backbone carries
    _refix_checksum(bundle_copy, "backbone.onnx")
    with pytest.raises(EdgeAdaptError, match="belongs to another export"):
        QAEngine(bundle_copy)
    code, err = run_cli(["ask", "-b", str(bundle_copy), "-q", "who wrote it?", "-c", CONTEXT, "-l", "yo"], capsys)
    _one_line_error(code, err, "belongs to another export")


def test_a_graph_without_identity_is_refused_in_a_bundle_that_promises_one(bundle_copy: Path) -> None:
    graph = onnx.load(str(bundle_copy / "backbone.onnx"))
    del graph.metadata_props[:]
    onnx.save_model(graph, str(bundle_copy / "backbone.onnx"))
    _refix_checksum(bundle_copy, "backbone.onnx")
    with pytest.raises(EdgeAdaptError, match="carries no backbone identity"):
        QAEngine(bundle_copy)

    def older(data):  # a bundle exported before graphs carried their identity still loads
        del data["graph_options"]["identity_in_graph"]
        return data

    _rewrite_manifest(bundle_copy, older)
    assert QAEngine(bundle_copy).languages == ["en", "sw", "yo"]


def test_the_adapter_model_version_must_belong_to_the_backbone_id(bundle_copy: Path) -> None:
    def other_version(data):
        data["adapter_model_version"] += 1
        return data

    _rewrite_manifest(bundle_copy, other_version)
    with pytest.raises(EdgeAdaptError, match="does not belong to backbone_id"):
        QAEngine(bundle_copy)


def test_a_merged_graph_of_another_language_is_refused(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    stamps = {GRAPH_BACKBONE_KEY: manifest.backbone_id, "edgeadapt.language": "sw"}
    check_graph_identity(manifest, Path("sw.onnx"), stamps, "sw")
    with pytest.raises(EdgeAdaptError, match="the graph of language 'sw', not 'yo'"):
        check_graph_identity(manifest, Path("yo.onnx"), stamps, "yo")


# --- 5. long and empty questions --------------------------------------------------------------------------------
def test_a_question_longer_than_the_window_is_cut_not_a_crash(bundle: Path, capsys) -> None:
    question = "why " * 129
    code, err = run_cli(["ask", "-b", str(bundle), "-q", question, "-c", "Achebe wrote it."], capsys)
    assert code == 0 and not err.strip(), err
    engine = QAEngine(bundle)
    result = engine.answer(question, CONTEXT, lang="sw")
    assert result.text == CONTEXT[result.start : result.end]


def test_windows_fit_when_the_window_is_barely_longer_than_the_stride(tiny_backbone: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = windowing_tokenizer(Tokenizer.from_file(str(tiny_backbone / "tokenizer.json")), 16, 4)
    windows = encode_windows(tokenizer, "who wrote the novel? " * 20, CONTEXT)
    assert windows and all(len(w) <= 16 for w in windows)
    assert any(offset is not None for w in windows for offset in w.context_offsets)


def test_an_empty_question_is_refused(bundle: Path, capsys) -> None:
    with pytest.raises(EdgeAdaptError, match="question is empty"):
        QAEngine(bundle).answer("  ", CONTEXT, lang="yo")
    _one_line_error(*run_cli(["ask", "-b", str(bundle), "-q", "", "-c", CONTEXT], capsys), "question is empty")


# --- 6. malformed bundles and runs: one line, no traceback ---------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda data: [data], "not an edgeadapt bundle manifest"),
        (lambda data: {**data, "languages": list(data["languages"])}, "'languages' is a list, not an object"),
        (lambda data: {**data, "max_length": "112"}, "'max_length' is a string, not an integer"),
        (lambda data: {**data, "format_version": "1"}, "format_version '1' is not an integer"),
        (lambda data: {**data, "files": ["tokenizer.json"]}, "'files' is a list"),
        (lambda data: {**data, "languages": {"yo": {**data["languages"]["yo"], "rank": None}}}, "'rank' is null"),
    ],
)
def test_a_malformed_manifest_is_refused_in_one_line(bundle_copy: Path, capsys, change, phrase: str) -> None:
    _rewrite_manifest(bundle_copy, change)
    code, err = run_cli(["ask", "-b", str(bundle_copy), "-q", "who wrote it?", "-c", CONTEXT], capsys)
    _one_line_error(code, err, phrase)


def test_a_garbage_tokenizer_with_its_checksum_fixed_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "tokenizer.json").write_text('{"not": "a tokenizer"}')
    _refix_checksum(bundle_copy, "tokenizer.json")
    with pytest.raises(EdgeAdaptError, match="is not a tokenizers file"):
        QAEngine(bundle_copy)


def test_a_pickle_adapter_in_a_run_is_refused_in_one_line(work: Path, tmp_path: Path, capsys) -> None:
    runs = Path(shutil.copytree(work / "runs", tmp_path / "w" / "runs"))
    adapter = runs / "yo" / "lang_adapter"
    (adapter / "adapter_model.safetensors").unlink()
    (adapter / "adapter_model.bin").write_bytes(b"\x80\x04cos\nsystem\n(S'echo hi'\ntR.")
    code, err = run_cli(["export", "--runs", str(runs / "yo"), "--out", str(tmp_path / "out")], capsys)
    _one_line_error(code, err, "adapter_model.bin, a pickle file edgeadapt does not load")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["qa_head.safetensors", "task_adapter/adapter_model.safetensors"])
def test_a_corrupt_weight_file_in_a_run_is_one_line(tiny_backbone: Path, tmp_path: Path, capsys, name: str) -> None:
    work = tmp_path / "w"
    source = make_source_run(tiny_backbone, work / "runs" / "en")
    (source / name).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(EdgeAdaptError, match="not a readable safetensors file"):
        load_run_model(source)
    code, err = run_cli(["export", "-w", str(work), "--quantize", "none"], capsys)
    _one_line_error(code, err, name.split("/")[-1])


def test_a_non_utf8_argument_is_refused_in_one_line(bundle: Path, capsys) -> None:
    question = os.fsdecode(b"who \xff?")
    _one_line_error(*run_cli(["ask", "-b", str(bundle), "-q", question, "-c", CONTEXT], capsys), "not valid UTF-8")


def test_a_read_only_file_system_is_one_line(work: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from edgeadapt import fileio

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system", str(tmp_path / "ro"))

    monkeypatch.setattr(fileio.tempfile, "mkdtemp", read_only)
    _one_line_error(*_export(work, tmp_path / "ro" / "export", capsys), "Read-only file system")
