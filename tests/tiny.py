"""Build a tiny BERT backbone (2 layers, small vocabulary) with a matching fast tokenizer.

Saved with ``save_pretrained`` so that tests load it back through edgeadapt's real loading code.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The river Niger flows through Nigeria and Mali to the Atlantic Ocean.",
    "Lagos is the largest city in Nigeria and one of the largest in Africa.",
    "Nairobi is the capital of Kenya; Swahili is spoken across East Africa.",
    "Who wrote the novel? The novel was written by Chinua Achebe in 1958.",
    "When was the university founded? It was founded in 1948 in Ibadan.",
    "Odò Ọya ń ṣàn gba orílẹ̀-èdè Nàìjíríà kọjá. Èkó ni ìlú tó tóbi jù lọ.",
    "Ta ni ó kọ ìwé náà? Chinua Achebe ni ó kọ ìwé náà ní ọdún 1958.",
    "Mto Nile ni mto mrefu zaidi barani Afrika. Nairobi ni mji mkuu wa Kenya.",
    "Nani aliandika riwaya hiyo? Riwaya iliandikwa na Chinua Achebe mwaka 1958.",
    "Der Rhein fließt durch Deutschland. Berlin ist die Hauptstadt Deutschlands.",
    "what where when who how many which year city country capital language",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 1948 1958 2020",
]


def build_tiny_backbone(
    path: Path, *, vocab_size: int = 600, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0
) -> Path:
    """Write a tiny ``BertModel`` and its tokenizer to ``path`` and return ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, min_frequency=1)
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        type_vocab_size=2,
    )
    model = BertModel(config, add_pooling_layer=False)
    path = Path(path)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
