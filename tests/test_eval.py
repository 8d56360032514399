"""PyTorch evaluation of runs: predictions come from the model, sliding windows, the `eval` command, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from run_factory import make_source_run, make_target_run
from tiny import build_tiny_backbone

from edgeadapt.cli.app import main
from edgeadapt.data.examples import Answer, QAExample
from edgeadapt.evaluation.metrics import score
from edgeadapt.evaluation.predict import encode_examples, load_tokenizer, predict, predict_spans, window_settings
from edgeadapt.runtime.features import pad_batch
from edgeadapt.runtime.spans import best_span
from edgeadapt.training.runs import load_run_model

CONTEXTS = [
    "Who wrote the novel? The novel was written by Chinua Achebe in 1958.",
    "Lagos is the largest city in Nigeria and one of the largest in Africa.",
    "Nairobi is the capital of Kenya; Swahili is spoken across East Africa.",
    "When was the university founded? It was founded in 1948 in Ibadan.",
]
QUESTIONS = ["who wrote the novel", "which city", "what language", "which year"]
ANSWERS = ["Chinua Achebe", "Lagos", "Swahili", "1948"]


def _examples(lang: str = "en") -> list[QAExample]:
    return [
        QAExample(f"q{i}", q, c, (Answer(a, c.index(a)),), lang)
        for i, (q, c, a) in enumerate(zip(QUESTIONS, CONTEXTS, ANSWERS, strict=True))
    ]


def _squad_file(path: Path, examples: list[QAExample]) -> Path:
    paragraphs = [
        {
            "context": ex.context,
            "qas": [
                {
                    "id": ex.id,
                    "question": ex.question,
                    "answers": [{"text": a.text, "answer_start": a.start} for a in ex.answers],
                }
            ],
        }
        for ex in examples
    ]
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workspace(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<work>/runs/en (source), <work>/runs/yo (target on en), <work>/runs/yo-copy, <work>/runs/yo2 (other seed)."""
    work = tmp_path_factory.mktemp("eval-work")
    runs = work / "runs"
    source = make_source_run(tiny_backbone, runs / "en")
    make_target_run(tiny_backbone, source, runs / "yo", "yo", seed=1)
    shutil.copytree(runs / "yo", runs / "yo-copy")
    make_target_run(tiny_backbone, source, runs / "yo2", "yo", seed=2)
    return work


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_batched_predictions_equal_a_direct_forward_per_window(workspace: Path, tiny_backbone: Path) -> None:
    model = load_run_model(workspace / "runs" / "yo")
    tokenizer = load_tokenizer(str(tiny_backbone))
    examples = _examples("yo")
    spans = predict_spans(model, tokenizer, examples, max_length=96, doc_stride=8, batch_size=3, show_progress=False)
    settings = window_settings(model, 96, 8)
    for example, windows in zip(examples, encode_examples(tokenizer, examples, settings), strict=True):
        starts, ends = [], []
        with torch.inference_mode():
            for window in windows:  # one window at a time: no padding, no batching
                out = model(**{k: torch.from_numpy(v) for k, v in pad_batch([window], 0).items()})
                starts.append(out.start_logits[0].numpy())
                ends.append(out.end_logits[0].numpy())
        expected = best_span(example.context, windows, starts, ends)
        assert spans[example.id].text == expected.text
        assert (spans[example.id].start, spans[example.id].end) == (expected.start, expected.end)
        assert spans[example.id].score == pytest.approx(expected.score, rel=1e-4)
        assert expected.text == example.context[expected.start : expected.end] and expected.text


def test_flat_span_head_predicts_the_first_context_token(workspace: Path, tiny_backbone: Path) -> None:
    model = load_run_model(workspace / "runs" / "en")
    with torch.no_grad():
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
    predictions = predict(model, load_tokenizer(str(tiny_backbone)), _examples(), max_length=96, show_progress=False)
    assert predictions == {"q0": "Who", "q1": "Lagos", "q2": "Nairobi", "q3": "When"}
    assert score(predictions, _examples(), "en")["exact_match"] == 25.0


def _token_identity_model(model, tokenizer, word: str):
    """Make hidden states depend on the token alone (no attention, FFN or positions) and the head point at ``word``."""
    base = model.encoder.get_base_model()
    with torch.no_grad():
        base.embeddings.position_embeddings.weight.zero_()
        for layer in base.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        ids = tokenizer.encode(word, add_special_tokens=False).ids
        assert len(ids) == 1, f"{word} must be one token of the tiny vocabulary"
        target = model.hidden_states(torch.tensor([ids]), torch.ones(1, 1, dtype=torch.long), torch.ones(1, 1).long())
        model.qa_outputs.weight.copy_(target[0, 0].expand(2, -1))
        model.qa_outputs.bias.zero_()
    return model


def test_sliding_windows_find_the_same_answer_as_one_long_window(workspace: Path, tiny_backbone: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_backbone))
    model = _token_identity_model(load_run_model(workspace / "runs" / "en"), tokenizer, "achebe")
    filler = " ".join(CONTEXTS[1:3] * 3)
    context = f"{filler} The novel was written by Chinua Achebe in 1958. {CONTEXTS[3]}"
    example = QAExample("long", "who wrote it", context, (Answer("Achebe", context.index("Achebe")),), "en")
    short, long = window_settings(model, 80, 8), window_settings(model, 128, 0)
    assert len(encode_examples(tokenizer, [example], short)[0]) > 1
    assert len(encode_examples(tokenizer, [example], long)[0]) == 1
    sliding = predict_spans(model, tokenizer, [example], max_length=80, doc_stride=8, show_progress=False)["long"]
    single = predict_spans(model, tokenizer, [example], max_length=128, show_progress=False)["long"]
    assert sliding.text == single.text == "Achebe"
    start = context.index("Achebe")
    assert (sliding.start, sliding.end) == (single.start, single.end) == (start, start + len("Achebe"))


def test_eval_table_json_and_out_file(
    workspace: Path, tiny_backbone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _squad_file(tmp_path / "mini.yo.json", _examples("yo"))
    out = tmp_path / "results" / "eval.json"
    argv = ["eval", "--run", "yo", "--data", f"squad:{data}@yo", "--zero-shot", "--json"]
    argv += ["--workdir", str(workspace), "--max-length", "96", "--out", str(out)]
    code, stdout, stderr = _run_cli(argv, capsys)
    assert code == 0, stderr
    document = json.loads(stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == document
    rows = document["results"]
    assert [(r["run_lang"], r["stage"], r["zero_shot"]) for r in rows] == [
        ("yo", "target", False),
        ("en", "source", True),
    ]
    assert all(r["count"] == 4 and 0 <= r["em"] <= r["f1"] <= 100 and r["seconds"] >= 0 for r in rows)
    assert document["stability"] == {} and document["settings"]["max_length"] == 96
    # the numbers are those of the run's own model
    model = load_run_model(workspace / "runs" / "yo")
    expected = score(
        predict(model, load_tokenizer(str(tiny_backbone)), _examples("yo"), max_length=96), _examples(), "yo"
    )
    assert rows[0]["f1"] == pytest.approx(expected["f1"], abs=1e-3)
    assert rows[0]["em"] == pytest.approx(expected["exact_match"], abs=1e-3)
    assert "edgeadapt eval" in stderr and "zero-shot" in stderr and "yo (target)" in stderr


def test_eval_stability_across_runs(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _squad_file(tmp_path / "mini.yo.json", _examples("yo"))
    runs = workspace / "runs"
    common = ["--data", f"squad:{data}@yo", "--max-length", "96", "--json"]
    code, stdout, stderr = _run_cli(
        ["eval", "--run", str(runs / "yo"), "--run", str(runs / "yo-copy"), *common], capsys
    )
    assert code == 0, stderr
    same = json.loads(stdout)["stability"][f"squad:{data}@yo"]
    assert same == {"score": 1.0, "agreement": 1.0, "f1_consistency": 1.0, "runs": 2, "questions": 4}
    assert "stability" in stderr
    code, stdout, stderr = _run_cli(
        ["eval", "--run", "yo", "--run", "yo2", "--workdir", str(workspace), *common], capsys
    )
    assert code == 0, stderr
    other = json.loads(stdout)["stability"][f"squad:{data}@yo"]
    assert 0.0 <= other["score"] <= other["agreement"] <= 1.0 and other["runs"] == 2


def test_eval_on_real_xquad(workspace: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--run", "en", "--data", "xquad:de", "--max-examples", "6", "--max-length", "128"]
    code, stdout, stderr = _run_cli(
        [*argv, "--workdir", str(workspace), "--data-dir", str(shared_data), "--json"], capsys
    )
    assert code == 0, stderr
    (row,) = json.loads(stdout)["results"]
    assert row["dataset"] == "xquad:de" and row["answer_lang"] == "de" and row["count"] == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "/nonexistent/run", "--data", "xquad:de"], "does not exist"),
        (["--run", "xx", "--data", "xquad:de"], "no run 'xx'"),
        (["--run", "EMPTY", "--data", "xquad:de"], "is not a run directory"),
        (["--run", "en", "--data", "nonsense"], "bad dataset spec"),
        (["--run", "en", "--data", "xquad:de:train"], "has no split"),
        (["--run", "en", "--data", "DATA", "--max-length", "400"], "exceeds the backbone's 128 positions"),
        (["--run", "en", "--data", "DATA", "--max-length", "96", "--doc-stride", "90"], "--doc-stride 90"),
        (["--run", "en", "--data", "DATA", "--max-examples", "0"], "--max-examples 0"),
    ],
)
def test_eval_errors_are_one_line(
    argv: list[str], message: str, workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    data = _squad_file(tmp_path / "mini.en.json", _examples())
    argv = [str(tmp_path / "empty") if a == "EMPTY" else f"squad:{data}" if a == "DATA" else a for a in argv]
    code, stdout, stderr = _run_cli(["eval", *argv, "--workdir", str(workspace)], capsys)
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: ") and message in stderr and len(stderr.strip().splitlines()) == 1


def test_eval_refuses_another_backbone(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = build_tiny_backbone(tmp_path / "other-bert", seed=1)
    data = _squad_file(tmp_path / "mini.en.json", _examples())
    argv = ["eval", "--run", "en", "--data", f"squad:{data}", "--backbone", str(other), "--workdir", str(workspace)]
    code, _, stderr = _run_cli(argv, capsys)
    assert code == 2 and "trained on another backbone" in stderr


def test_window_logits_do_not_depend_on_padding(workspace: Path, tiny_backbone: Path) -> None:
    model = load_run_model(workspace / "runs" / "yo")
    tokenizer = load_tokenizer(str(tiny_backbone))
    one = predict_spans(model, tokenizer, _examples()[:1], max_length=96, batch_size=1, show_progress=False)
    padded = predict_spans(model, tokenizer, _examples(), max_length=96, batch_size=4, show_progress=False)
    assert one["q0"].text == padded["q0"].text and np.isclose(one["q0"].score, padded["q0"].score, rtol=1e-4)


def test_eval_names_a_moved_backbone(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moved = shutil.copytree(workspace / "runs" / "en", tmp_path / "en-moved")
    info = json.loads((moved / "run.json").read_text(encoding="utf-8"))
    info["backbone"]["path"] = str(tmp_path / "gone" / "tiny-bert")
    (moved / "run.json").write_text(json.dumps(info), encoding="utf-8")
    data = _squad_file(tmp_path / "mini.en.json", _examples())
    code, _, stderr = _run_cli(["eval", "--run", str(moved), "--data", f"squad:{data}"], capsys)
    assert code == 2 and "no longer exists: pass --backbone" in stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_eval_without_a_gpu_refuses_cuda(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _squad_file(tmp_path / "mini.en.json", _examples())
    argv = ["eval", "--run", "en", "--data", f"squad:{data}", "--device", "cuda", "--workdir", str(workspace)]
    code, _, stderr = _run_cli(argv, capsys)
    assert code == 2 and "no CUDA GPU" in stderr
