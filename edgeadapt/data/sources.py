"""Where each dataset lives upstream, and the sha256 of every file the project has checked.

URLs are ``raw.githubusercontent.com/<repo>/HEAD/<path>`` (HEAD: the default branch), or
``<base>/<path>`` for a dataset whose official copy is published elsewhere (SQuAD's site). The hashes
are of the unchanged upstream copies in ``shared/data``; a file without a recorded hash is
downloaded unchecked, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_GITHUB = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Upstream:
    """A dataset's upstream repository and how its paths map to the data directory's layout."""

    repo: str
    upstream: str  # path in the repository, with {lang}, {split} (and {pivot} for AfriQA)
    local: str  # path in the data directory
    langs: tuple[str, ...]  # languages fetched when none is asked for (dataset naming)
    splits: tuple[str, ...]
    licence: str
    upstream_langs: tuple[str, ...] | None = None  # every language upstream has (None: too many to list)
    base: str | None = None  # official site serving the repository's files, instead of raw.githubusercontent.com

    def url(self, lang: str, split: str, pivot: str = "en") -> str:
        path = self.upstream.format(lang=lang, split=split, pivot=pivot)
        if self.base:
            return f"{self.base.rstrip('/')}/{path}"
        return f"{RAW_GITHUB}/{self.repo}/HEAD/{path}"

    def local_path(self, lang: str, split: str, pivot: str = "en") -> str:
        return self.local.format(lang=lang, split=split, pivot=pivot)


UPSTREAMS: dict[str, Upstream] = {
    "xquad": Upstream(
        "deepmind/xquad",
        "xquad.{lang}.json",
        "xquad/xquad.{lang}.json",
        ("ar", "de", "el", "en", "es", "hi", "ru", "tr", "vi", "zh"),
        ("test",),
        "CC BY-SA 4.0",
        ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"),
    ),
    "tydiqa": Upstream(
        "sagorbrur/tydiqa-language-specific",
        "language_data/{lang}/{lang}_tydiqa_{split}.json",
        "tydiqa/{lang}/{lang}_tydiqa_{split}.json",
        ("english", "swahili"),
        ("train", "dev"),
        "Apache-2.0",
        ("arabic", "bengali", "english", "finnish", "indonesian", "korean", "russian", "swahili", "telugu"),
    ),
    "afriqa": Upstream(
        "masakhane-io/afriqa",
        "data/gold_passages/{lang}/gold_span_passages.afriqa.{lang}.{pivot}.{split}.json",
        "afriqa/{lang}/gold_span_passages.afriqa.{lang}.{pivot}.{split}.json",
        ("yor", "swa"),
        ("train", "dev", "test"),
        "CC BY 4.0",
        ("bem", "fon", "hau", "ibo", "kin", "swa", "twi", "wol", "yor", "zul"),
    ),
    "afriqa-queries": Upstream(
        "masakhane-io/afriqa",
        "data/queries/{lang}/queries.afriqa.{lang}.{pivot}.{split}.json",
        "afriqa/queries/{lang}/queries.afriqa.{lang}.{pivot}.{split}.json",
        ("yor", "swa"),
        ("train", "dev", "test"),
        "CC BY 4.0",
        ("bem", "fon", "hau", "ibo", "kin", "swa", "twi", "wol", "yor", "zul"),
    ),
    "flores200": Upstream(
        "common-parallel-corpora/common-parallel-corpora",
        "data/common-parallel-corpora/flores-200-{split}/{lang}.{split}",
        "flores200/{split}/{lang}.{split}",
        ("eng_Latn", "yor_Latn", "swh_Latn", "deu_Latn", "spa_Latn", "ell_Grek", "rus_Cyrl", "tur_Latn", "arb_Arab",
         "vie_Latn", "zho_Hans", "hin_Deva"),
        ("dev", "devtest"),
        "CC BY-SA 4.0",
    ),
    "pawsx": Upstream(
        "LSX-UniWue/SuperGLEBer",
        "data/PAWSX/{split}.tsv",
        "pawsx/{lang}/{split}.tsv",
        ("de",),
        ("dev", "test"),
        "PAWS-X terms (free for any purpose)",
        ("de",),  # the SuperGLEBer repository holds German only
    ),
    "squad": Upstream(
        "rajpurkar/SQuAD-explorer",
        "dataset/{split}-v1.1.json",
        "squad/{split}-v1.1.json",
        ("en",),
        ("train", "dev"),
        "CC BY-SA 4.0",
        ("en",),  # English only; the paths name no language
        base="https://rajpurkar.github.io/SQuAD-explorer",  # the official site (GitHub Pages of the repository)
    ),
}  # fmt: skip

AFRIQA_PIVOT = {"fon": "fr", "wol": "fr"}
"""AfriQA pairs most languages with English passages, Fon and Wolof with French."""


KNOWN_FILES: dict[str, tuple[str, int]] = {
    "afriqa/queries/swa/queries.afriqa.swa.en.dev.json": (
        "cdc61a37956592318f98c8d6ca7cc3908bfbc5bf2cb30af4c13203c4f446a054",
        115373,
    ),
    "afriqa/queries/swa/queries.afriqa.swa.en.test.json": (
        "0804e99d130a7d9357139686db1957aff33e82ab4d8879c65839af35329d690a",
        87689,
    ),
    "afriqa/queries/swa/queries.afriqa.swa.en.train.json": (
        "d5d03c1bf62de83e1dcd951483717773c02b1c2d6fd7fdaaa750bcc7c0751776",
        114297,
    ),
    "afriqa/queries/yor/queries.afriqa.yor.en.dev.json": (
        "c195aafb72f1c38046a52a4e9d3965bb6cb2383533e3b48d836846ffe8c89093",
        106539,
    ),
    "afriqa/queries/yor/queries.afriqa.yor.en.test.json": (
        "85027dcfd52e5783ac97acd2b35e5e56bc42a2c4baf8c4cb7b5e5de2c925bcde",
        101216,
    ),
    "afriqa/queries/yor/queries.afriqa.yor.en.train.json": (
        "e5005c216a0926c0f9f1ca6c34903ac8d52a21b8921bb87ce5f92d479968375f",
        108463,
    ),
    "afriqa/swa/gold_span_passages.afriqa.swa.en.test.json": (
        "18609b69d21c37b737426baed0a4f02495ab237285dd524e8f502f756350d0bf",
        324070,
    ),
    "afriqa/yor/gold_span_passages.afriqa.yor.en.test.json": (
        "0aa0f6c1769f07788c918fd0dc1848b70ec0f06e8de9a6893d9037b9ff05abaa",
        224135,
    ),
    "afriqa/yor/gold_span_passages.afriqa.yor.en.train.json": (
        "864d91d1cab11b587b6535e6a293cc21ba2cf62ce7cc44f175f0fd7656f4925c",
        155554,
    ),
    "flores200/dev/arb_Arab.dev": ("abf6f8ae0a4a93e0a6855b9a42bc5a772fa0c72d11baaa0ff1c8650bea42fd6c", 201592),
    "flores200/dev/deu_Latn.dev": ("12fac774c6f79d966774a1829648a6e107700662e9e7b9e31ad08541382b97aa", 149933),
    "flores200/dev/ell_Grek.dev": ("ee0f3636d4bb65c7aec0201022d23aca1f2053a167d78d6669303df4fbc02f23", 274510),
    "flores200/dev/eng_Latn.dev": ("51a25f527fd81f428b6933d85a2f5e5544af92aa82042c7fbf0c4120327fba0a", 126287),
    "flores200/dev/hin_Deva.dev": ("639d0f659eb74c98bcb82d0946495a7041d894dcd2c20a10daac54da9a935e22", 323267),
    "flores200/dev/rus_Cyrl.dev": ("3cad8426c208a2d5f5ccb1bbf5b5284129ffc30636cff4f4421f5f6f31d891a5", 253295),
    "flores200/dev/spa_Latn.dev": ("9a99ddc459542da2d980b21cc049e799172545938cb02a5e7c92ebd8234b2121", 153121),
    "flores200/dev/swh_Latn.dev": ("59c8ee7cb9a702f32ff3f3e6974f4465db63df0d7172fe0d53c8bd2405daa547", 132843),
    "flores200/dev/tur_Latn.dev": ("0e08ae46ed14e71d8a3257c174565427e335c0ce3a33135e6e7506bb47f9d068", 140998),
    "flores200/dev/vie_Latn.dev": ("40a52e72054d03906de8231fd6f4de3d26cf0a19c4b2b525545128cfbfea7e2a", 175817),
    "flores200/dev/yor_Latn.dev": ("7539fdb2f6cb31b56cd4fa65e786d117ae80ad26529b14739ea4dc6a24493cd3", 162333),
    "flores200/dev/zho_Hans.dev": ("ae677073476a27d6d11db642df5c18b86ca5dfcbbeefeba7d99ec93b7f5bd177", 118256),
    "flores200/devtest/arb_Arab.devtest": ("ff09a52e63884e9b5bb1083780b58f37d3d14acb0c58c6b1f1f2544ecea12ff8", 212288),
    "flores200/devtest/deu_Latn.devtest": ("9a1bfa90d153fedb7ff80047f4a63d493998888eddb056e8a28e24592f26e5f2", 157370),
    "flores200/devtest/ell_Grek.devtest": ("6c36930cb4c2dff02ab1853852cd71e33e43beed8058e6f0c3395069b816be00", 288475),
    "flores200/devtest/eng_Latn.devtest": ("612e9fbe87997617c0fa8fa8929654a4f49b728d96738112c2b86ef6a1d78d88", 133108),
    "flores200/devtest/hin_Deva.devtest": ("5f5fd39acadca29fb044a0398e81869e48f37de979df086f2fad4a7d1fd2d015", 338106),
    "flores200/devtest/rus_Cyrl.devtest": ("cdc706ed862d1d35d8d67cfda0b396766646885434958b18291aa760ff1bb59e", 261354),
    "flores200/devtest/spa_Latn.devtest": ("40fcb836b49b0a461a14c00b8bce1f03113f8d2668132af424e74b2421d18ce9", 160955),
    "flores200/devtest/swh_Latn.devtest": ("834ce9e5f48893505f9d69dec24da2545be4323e841fb23440e36c62c5d61ee4", 139322),
    "flores200/devtest/tur_Latn.devtest": ("c0fe28cee25f77fbe8471bcd3c87d26c7a284f4f0420f4293c9ce004b9bef8f2", 148925),
    "flores200/devtest/vie_Latn.devtest": ("86b70984f053cae5f5d554bc9e9d00397773b8325bed7e12e7695c2e61897cb0", 184618),
    "flores200/devtest/yor_Latn.devtest": ("48253a240a934a137e7e7b0e6e679593bd22232e9f6c3e294c88f860fe42be34", 169869),
    "flores200/devtest/zho_Hans.devtest": ("b30158b1b76f7cee08530d8127a9769f4512597c7eefe97ae1ccf630d5b6e7fd", 121818),
    "pawsx/de/dev.tsv": ("8b7d965b20185d79a1b7105e7f98d1a07dcb164e3dea395158b88a7f7b828d69", 491758),
    "pawsx/de/test.tsv": ("fcea7272af14558ba6c233b9b0fc7de38de3b41df53947e7a410a10cc2c3aabc", 501955),
    "squad/dev-v1.1.json": ("95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9", 4854279),
    "squad/train-v1.1.json": ("3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955", 30288272),
    "tydiqa/english/english_tydiqa_dev.json": (
        "0a79feb66a13d4e5df8a5e1e8ad40b4a2d6622be6816c2914863b495cf0ee3e4",
        399934,
    ),
    "tydiqa/english/english_tydiqa_train.json": (
        "ab4317b6f2fcf3367e8890226631deaf3af283ffb5a878fc54ebb0d6b2afe377",
        3170735,
    ),
    "tydiqa/swahili/swahili_tydiqa_dev.json": (
        "0846933d9b60f1f7532b32641efccecc9ada29bafef5a87c26e740046c858ac9",
        290638,
    ),
    "tydiqa/swahili/swahili_tydiqa_train.json": (
        "dfeedb0903de73e3cca9294358dd399dcc4d642805a72871a364814ba1dcb27d",
        1613532,
    ),
    "xquad/xquad.ar.json": ("abdabd7afed5c635d99cca0f3f0d0c9d9ed0bc77451e963c2e4e0638c29e486d", 1582988),
    "xquad/xquad.de.json": ("990b5d746746ed65ed4702ea5f35f99ffa4e2f1c390c07d003642acd937916f9", 669810),
    "xquad/xquad.el.json": ("821cf0f88e73fa258fd2f548b19b6ec39f7025059e16f6f9fc8cd797c9c3663e", 1918889),
    "xquad/xquad.en.json": ("e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29", 609383),
    "xquad/xquad.es.json": ("dcbae93ec3a9f4b9e78fd834a171d6f96c1a875e10e15b7530b7e4ef4971e37e", 684322),
    "xquad/xquad.hi.json": ("df2cce3532b37e9beb8979704b5c9a4bf874358f105395a298b89427b43b9d24", 1680538),
    "xquad/xquad.ru.json": ("208d5b1aa154c52b1b5c5eda16281e455e8fd198cdb9af3f469f0d6037d973bf", 1896368),
    "xquad/xquad.tr.json": ("92179a564774b7696100d144c1e10870d0a966b6fccbdd254a65b9d2ab1971cc", 729506),
    "xquad/xquad.vi.json": ("f619a1eb11fb42d3ab0834259e488a65f585447ef6154437bfb7199d85161a04", 911401),
    "xquad/xquad.zh.json": ("691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835", 808652),
}
"""sha256 and size in bytes of each upstream file, by its path in the data directory."""
