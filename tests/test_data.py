"""Readers, specs and language mapping on the real shared data, on the samples, and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeadapt.cli.app import main
from edgeadapt.data import specs
from edgeadapt.data.examples import QAExample
from edgeadapt.data.languages import code_or_itself, find_language, normalize_lang
from edgeadapt.data.specs import (
    default_parallel_data,
    default_task_data,
    load_parallel,
    load_qa,
    load_sentence_pairs,
    parse_spec,
)
from edgeadapt.errors import EdgeAdaptError

SAMPLES_DATA = Path(__file__).resolve().parents[1] / "samples" / "data"
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "tr", "vi", "zh")


def _assert_spans(examples: list[QAExample]) -> None:
    for example in examples:
        for answer in example.located_answers:
            assert example.context[answer.start : answer.start + len(answer.text)] == answer.text, example.id


@pytest.fixture()
def no_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory, so that the samples are the only data; the warning may fire again."""
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("EDGEADAPT_DATA", str(empty))
    monkeypatch.setattr(specs, "_warned_samples", set())
    return empty


# ----------------------------------------------------------------------------- real data


@pytest.mark.parametrize("lang", XQUAD_LANGS)
def test_xquad_every_language(shared_data: Path, lang: str) -> None:
    examples = load_qa(f"xquad:{lang}", shared_data)
    assert len(examples) == 1190
    assert {e.lang for e in examples} == {lang}
    _assert_spans(examples)
    assert all(e.located_answers for e in examples)


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        ("tydiqa:english:train", 3696),
        ("tydiqa:en:dev", 440),
        ("tydiqa:sw:train", 2755),
        ("tydiqa:swahili:dev", 499),
    ],
)
def test_tydiqa(shared_data: Path, spec: str, count: int) -> None:
    examples = load_qa(spec, shared_data)
    assert len(examples) == count
    _assert_spans(examples)
    assert all(e.located_answers for e in examples)


@pytest.mark.parametrize(
    ("spec", "count"), [("afriqa:yor:train", 248), ("afriqa:yo:test", 254), ("afriqa:swa:test", 295)]
)
def test_afriqa_gold_passages(shared_data: Path, spec: str, count: int) -> None:
    examples = load_qa(spec, shared_data)
    assert len(examples) == count
    _assert_spans(examples)
    assert all(e.question_en and e.question for e in examples)
    assert sum(not e.context for e in examples) <= 1  # yor test has one record with an empty passage upstream
    assert {e.lang for e in examples} == {parse_spec(spec).lang}
    # upstream spans are mostly right; yes/no answers absent from the passage keep start -1
    located = sum(bool(e.located_answers) for e in examples)
    assert located >= 0.8 * count
    first = examples[0]
    if spec == "afriqa:yor:train":
        assert first.question.startswith("Ki ni iṣẹ ti Chief Bọde Thomas")
        assert first.question_en.startswith("What was the occupation")
        assert first.answers[0].text == "chancellor of the African Church of Nigeria"
        assert first.meta["answer_lang"] == "alakoso ile ijọsin Afirika ti Naijiria"
    assert {e.meta["context_lang"] for e in examples} == {"en"}


@pytest.mark.parametrize(
    ("spec", "count"),
    [
        ("afriqa-queries:yor:train", 360),
        ("afriqa-queries:yo:dev", 361),
        ("afriqa-queries:yor:test", 332),
        ("afriqa-queries:sw:train", 415),
        ("afriqa-queries:swa:dev", 417),
        ("afriqa-queries:swa:test", 302),
    ],
)
def test_afriqa_queries(shared_data: Path, spec: str, count: int) -> None:
    pairs = load_parallel(spec, shared_data)
    assert len(pairs) == count
    assert all(p.source and p.target and p.source_lang == "en" for p in pairs)


@pytest.mark.parametrize("code", ["yor_Latn", "yo", "swh", "deu_Latn", "ar", "zh", "hi", "el", "ru"])
def test_flores_both_splits(shared_data: Path, code: str) -> None:
    dev = load_parallel(f"flores200:{code}:dev", shared_data)
    devtest = load_parallel(f"flores200:{code}:devtest", shared_data)
    assert (len(dev), len(devtest)) == (997, 1012)
    assert dev[0].source.startswith("On Monday, scientists from the Stanford University")
    assert dev[0].source_lang == "eng_Latn" and dev[0].target_lang == normalize_lang(code).flores


def test_pawsx(shared_data: Path) -> None:
    dev = load_sentence_pairs("pawsx:de:dev", shared_data)
    test = load_sentence_pairs("pawsx:deu:test", shared_data)
    assert len(dev) == len(test) == 2000
    assert {e.label for e in dev} == {0, 1}
    assert dev[0].sentence1.startswith("Durch die Zusammenlegung")


def test_path_specs_read_any_file(shared_data: Path) -> None:
    xquad = shared_data / "xquad" / "xquad.el.json"
    assert len(load_qa(f"squad:{xquad}")) == 1190
    assert load_qa(f"file:{xquad}")[0].lang == "el"
    assert load_qa(f"squad:{xquad}@ha")[0].lang == "ha"
    gold = shared_data / "afriqa" / "yor" / "gold_span_passages.afriqa.yor.en.test.json"
    examples = load_qa(f"file:{gold}")
    assert len(examples) == 254 and examples[0].lang == "yor" and examples[0].question_en
    assert len(load_qa(str(shared_data / "tydiqa" / "swahili" / "swahili_tydiqa_dev.json"))) == 499
    flores = load_parallel(f"flores200:{shared_data / 'flores200' / 'devtest' / 'yor_Latn.devtest'}")
    assert len(flores) == 1012 and flores[0].target_lang == "yor_Latn"
    queries = shared_data / "afriqa" / "queries" / "swa" / "queries.afriqa.swa.en.dev.json"
    assert len(load_parallel(f"file:{queries}")) == 417
    assert len(load_sentence_pairs(f"file:{shared_data / 'pawsx' / 'de' / 'test.tsv'}")) == 2000


def test_default_training_data_on_real_data(shared_data: Path) -> None:
    assert default_task_data("en", shared_data) == ["tydiqa:english:train"]
    assert default_task_data("yo", shared_data) == ["afriqa:yor:train"]
    assert default_task_data("swa", shared_data) == ["tydiqa:swahili:train"]
    assert default_task_data("de", shared_data) == []
    assert default_task_data("ha", shared_data) == []
    assert default_parallel_data("yor", shared_data) == ["flores200:yor_Latn:dev", "afriqa-queries:yor:train"]
    assert default_parallel_data("sw", shared_data) == ["flores200:swh_Latn:dev", "afriqa-queries:swa:train"]
    assert default_parallel_data("de", shared_data) == ["flores200:deu_Latn:dev"]
    assert default_parallel_data("en", shared_data) == []
    for spec in default_task_data("yo", shared_data):
        assert load_qa(spec, shared_data)
    for spec in default_parallel_data("yo", shared_data):
        assert load_parallel(spec, shared_data)


def test_data_list_on_real_data(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "list", "--data-dir", str(shared_data), "--no-samples"])
    assert exit_info.value.code in (0, None)
    err = capsys.readouterr().err
    for spec, count in [
        ("xquad:de:test", "1,190"),
        ("tydiqa:english:train", "3,696"),
        ("afriqa:yor:train", "248"),
        ("afriqa:yor:test", "254"),
        ("afriqa-queries:yor:train", "360"),
        ("flores200:yor_Latn:dev", "997"),
        ("pawsx:de:test", "2,000"),
    ]:
        line = next(line for line in err.splitlines() if f" {spec} " in line)
        assert count in line
    assert "samples*" not in err


# ----------------------------------------------------------------------------- samples


def test_samples_through_every_reader(no_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = {
        "tydiqa:en:train": 40,
        "tydiqa:english:dev": 10,
        "xquad:en": 10,
        "afriqa:yo:train": 30,
        "afriqa:yor:test": 10,
    }
    for spec, count in counts.items():
        examples = load_qa(spec)
        assert len(examples) == count, spec
        _assert_spans(examples)
        assert all(e.located_answers for e in examples)
    yoruba = load_qa("afriqa:yo:train")
    assert all(e.question_en and e.meta["answer_lang"] for e in yoruba)
    assert any(ch in yoruba[0].question for ch in "àáèéìíòóùúẹọṣ")  # tone marks and subdots survive
    assert len(load_parallel("afriqa-queries:yo")) == 30
    for code in ("yo", "sw"):
        pairs = load_parallel(f"flores200:{code}")
        assert len(pairs) == 40 and pairs[0].source == "The sun rises in the east."
    err = capsys.readouterr().err
    assert err.count("illustrative") == 1  # one warning, however many files came from the samples


def test_samples_defaults_and_list(no_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert default_task_data("en") == ["tydiqa:english:train"]
    assert default_task_data("yo") == ["afriqa:yor:train"]
    assert default_parallel_data("yo") == ["flores200:yor_Latn:dev", "afriqa-queries:yor:train"]
    assert default_parallel_data("sw") == ["flores200:swh_Latn:dev"]
    with pytest.raises(SystemExit):
        main(["data", "list"])
    err = capsys.readouterr().err
    assert "afriqa:yor:train" in err and "samples*" in err and "illustrative" in err


def test_samples_are_small() -> None:
    total = sum(path.stat().st_size for path in SAMPLES_DATA.rglob("*") if path.is_file())
    assert 10_000 < total < 200_000


# ----------------------------------------------------------------------------- specs and languages


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("xquad:de", ("xquad", "de", "test")),
        ("xquad:deu", ("xquad", "de", "test")),
        ("afriqa:yo:test", ("afriqa", "yor", "test")),
        ("afriqa:yor", ("afriqa", "yor", "test")),
        ("afriqa-queries:yo", ("afriqa-queries", "yor", "train")),
        ("tydiqa:sw:dev", ("tydiqa", "swahili", "dev")),
        ("tydiqa:swh:train", ("tydiqa", "swahili", "train")),
        ("tydiqa:english", ("tydiqa", "english", "dev")),
        ("flores200:yo:dev", ("flores200", "yor_Latn", "dev")),
        ("flores200:yor_Latn:devtest", ("flores200", "yor_Latn", "devtest")),
        ("flores200:ha", ("flores200", "hau_Latn", "dev")),
        ("pawsx:de:dev", ("pawsx", "de", "dev")),
        (" XQuAD:el ", ("xquad", "el", "test")),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, str, str]) -> None:
    parsed = parse_spec(spec)
    assert (parsed.name, parsed.lang, parsed.split) == expected
    assert str(parsed) == ":".join(expected)


@pytest.mark.parametrize(
    ("code", "iso1", "iso3", "flores", "tydiqa", "afriqa"),
    [
        ("yo", "yo", "yor", "yor_Latn", None, "yor"),
        ("yor", "yo", "yor", "yor_Latn", None, "yor"),
        ("Yoruba", "yo", "yor", "yor_Latn", None, "yor"),
        ("sw", "sw", "swa", "swh_Latn", "swahili", "swa"),
        ("swh", "sw", "swa", "swh_Latn", "swahili", "swa"),
        ("swa", "sw", "swa", "swh_Latn", "swahili", "swa"),
        ("de", "de", "deu", "deu_Latn", None, None),
        ("deu", "de", "deu", "deu_Latn", None, None),
        ("en", "en", "eng", "eng_Latn", "english", None),
        ("eng", "en", "eng", "eng_Latn", "english", None),
        ("ha", "ha", "hau", "hau_Latn", None, "hau"),
        ("ibo", "ig", "ibo", "ibo_Latn", None, "ibo"),
        ("zu", "zu", "zul", "zul_Latn", None, "zul"),
        ("amh", "am", "amh", "amh_Ethi", None, None),
        ("fr", "fr", "fra", "fra_Latn", None, None),
        ("por", "pt", "por", "por_Latn", None, None),
        ("arb", "ar", "ara", "arb_Arab", "arabic", None),
        ("zho_Hans", "zh", "zho", "zho_Hans", None, None),
    ],
)
def test_normalize_lang(code: str, iso1: str, iso3: str, flores: str, tydiqa: str | None, afriqa: str | None) -> None:
    language = normalize_lang(code)
    assert (language.iso1, language.iso3, language.flores, language.tydiqa, language.afriqa) == (
        iso1,
        iso3,
        flores,
        tydiqa,
        afriqa,
    )


def test_unknown_language_suggests_close_codes() -> None:
    with pytest.raises(EdgeAdaptError, match=r"unknown language 'yorr'.*did you mean .*yor"):
        normalize_lang("yorr")
    with pytest.raises(EdgeAdaptError, match="unknown language 'qqq'"):
        normalize_lang("qqq")


def test_find_language_keeps_codes_it_does_not_know() -> None:
    assert find_language("yor").code == "yo" and find_language("Swahili").code == "sw"
    assert find_language("zh-Hant").code == "zh" and find_language("qqq") is None
    assert code_or_itself("yor") == "yo" and code_or_itself("custom_set") == "custom_set"


# ----------------------------------------------------------------------------- clear errors


def test_language_a_dataset_lacks(shared_data: Path) -> None:
    with pytest.raises(EdgeAdaptError, match=r"^xquad has no language 'yo'.*available: ar, de, el, en"):
        load_qa("xquad:yo", shared_data)
    with pytest.raises(EdgeAdaptError, match=r"tydiqa has no language 'ha'"):
        load_qa("tydiqa:ha:train", shared_data)


def test_missing_split(shared_data: Path) -> None:
    with pytest.raises(EdgeAdaptError, match=r"tydiqa has no split 'test'; available: train, dev"):
        parse_spec("tydiqa:en:test")
    with pytest.raises(EdgeAdaptError, match=r"afriqa:swa has no split 'train' in .*available: test"):
        load_qa("afriqa:sw:train", shared_data)


def test_bad_specs_and_kinds(tmp_path: Path) -> None:
    with pytest.raises(EdgeAdaptError, match="unknown dataset 'squadv3'"):
        parse_spec("squadv3:de")
    with pytest.raises(EdgeAdaptError, match="bad dataset spec"):
        parse_spec("xquad")
    with pytest.raises(EdgeAdaptError, match="data file not found"):
        load_qa(f"squad:{tmp_path / 'absent.json'}")
    with pytest.raises(EdgeAdaptError, match="is parallel data, not qa data"):
        load_qa("flores200:yo", SAMPLES_DATA)


def test_malformed_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [ {"paragraphs": ', encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match=rf"{broken}: not valid JSON"):
        load_qa(f"squad:{broken}")
    not_squad = tmp_path / "list.json"
    not_squad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match="not SQuAD JSON"):
        load_qa(f"squad:{not_squad}")
    no_question = tmp_path / "noq.json"
    no_question.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}))
    with pytest.raises(EdgeAdaptError, match="missing field 'question'"):
        load_qa(f"squad:{no_question}")
    lines = tmp_path / "gold.afriqa.yor.en.test.json"
    lines.write_text('{"context": "x", "id": "0"}\nnot json\n', encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match=rf"{lines}:1: missing field 'answer_pivot'"):
        load_qa(f"afriqa:{lines}")
    good = {"context": "x", "id": "0", "question_lang": "q", "answer_pivot": {"text": ["x"], "answer_start": [0]}}
    lines.write_text(json.dumps(good) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match=rf"{lines}:2: not valid JSON"):
        load_qa(f"afriqa:{lines}")
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match="not PAWS-X TSV"):
        load_sentence_pairs(f"pawsx:{tsv}")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"data": "café"}'.encode("latin-1"))
    with pytest.raises(EdgeAdaptError, match="not UTF-8"):
        load_qa(f"squad:{latin1}")


def test_misaligned_flores(tmp_path: Path) -> None:
    (tmp_path / "eng_Latn.dev").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "yor_Latn.dev").write_text("ọ̀kan\n", encoding="utf-8")
    with pytest.raises(EdgeAdaptError, match="not aligned line by line"):
        load_parallel(f"flores200:{tmp_path / 'yor_Latn.dev'}")
    (tmp_path / "hau_Latn.dev").write_text("daya\nbiyu\n", encoding="utf-8")
    pairs = load_parallel(f"flores200:{tmp_path / 'hau_Latn.dev'}")
    assert [(p.source, p.target, p.target_lang) for p in pairs] == [
        ("one", "daya", "hau_Latn"),
        ("two", "biyu", "hau_Latn"),
    ]


def test_cli_error_is_one_line(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "fetch", "tydiqa", "--lang", "yo", "--data-dir", str(shared_data.parent / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: tydiqa has no language 'yo' upstream") and "\n" not in err


def test_data_list_reports_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    (data / "xquad").mkdir(parents=True)
    (data / "xquad" / "xquad.de.json").write_text("{not json", encoding="utf-8")
    (data / "pawsx" / "de").mkdir(parents=True)
    (data / "pawsx" / "de" / "dev.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "list", "--data-dir", str(data), "--no-samples"])
    assert exit_info.value.code in (0, None)
    err = capsys.readouterr().err
    assert "unreadable" in next(line for line in err.splitlines() if "xquad:de:test" in line)
    assert "not valid JSON" in err
    assert " 1 " in next(line for line in err.splitlines() if "pawsx:de:dev" in line)
