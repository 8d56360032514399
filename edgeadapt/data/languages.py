"""Languages and the names each dataset gives them.

``normalize_lang("yo")``, ``normalize_lang("yor")``, ``normalize_lang("yoruba")`` and
``normalize_lang("yor_Latn")`` all give the same :class:`Language`, which knows the code each
dataset uses: XQuAD and PAWS-X use ISO 639-1 (``de``), TyDi QA the English name (``swahili``),
AfriQA its own three-letter code (``yor``, ``swa``), FLORES-200 a code with the script
(``yor_Latn``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from edgeadapt.errors import EdgeAdaptError


@dataclass(frozen=True)
class Language:
    """One language and its code in each naming scheme (``None`` where a scheme lacks it)."""

    iso1: str | None
    iso3: str
    name: str
    flores: str | None
    tydiqa: str | None = None
    afriqa: str | None = None

    @property
    def code(self) -> str:
        """The short code edgeadapt uses for runs and bundles: ISO 639-1 where there is one."""
        return self.iso1 or self.iso3


def _lang(iso1, iso3, name, flores, *, tydiqa=False, afriqa=None) -> Language:
    return Language(iso1, iso3, name, flores, name.lower() if tydiqa else None, afriqa)


LANGUAGES: tuple[Language, ...] = (
    # the languages of the shared data
    _lang("en", "eng", "English", "eng_Latn", tydiqa=True),
    _lang("yo", "yor", "Yoruba", "yor_Latn", afriqa="yor"),
    _lang("sw", "swa", "Swahili", "swh_Latn", tydiqa=True, afriqa="swa"),
    _lang("de", "deu", "German", "deu_Latn"),
    _lang("es", "spa", "Spanish", "spa_Latn"),
    _lang("el", "ell", "Greek", "ell_Grek"),
    _lang("ru", "rus", "Russian", "rus_Cyrl", tydiqa=True),
    _lang("tr", "tur", "Turkish", "tur_Latn"),
    _lang("ar", "ara", "Arabic", "arb_Arab", tydiqa=True),
    _lang("vi", "vie", "Vietnamese", "vie_Latn"),
    _lang("zh", "zho", "Chinese", "zho_Hans"),
    _lang("hi", "hin", "Hindi", "hin_Deva"),
    # African languages (AfriQA and others)
    _lang("ha", "hau", "Hausa", "hau_Latn", afriqa="hau"),
    _lang("ig", "ibo", "Igbo", "ibo_Latn", afriqa="ibo"),
    _lang("zu", "zul", "Zulu", "zul_Latn", afriqa="zul"),
    _lang("am", "amh", "Amharic", "amh_Ethi"),
    _lang("rw", "kin", "Kinyarwanda", "kin_Latn", afriqa="kin"),
    _lang("tw", "twi", "Twi", "twi_Latn", afriqa="twi"),
    _lang("wo", "wol", "Wolof", "wol_Latn", afriqa="wol"),
    _lang(None, "fon", "Fon", "fon_Latn", afriqa="fon"),
    _lang(None, "bem", "Bemba", "bem_Latn", afriqa="bem"),
    _lang("xh", "xho", "Xhosa", "xho_Latn"),
    _lang("so", "som", "Somali", "som_Latn"),
    _lang("ln", "lin", "Lingala", "lin_Latn"),
    _lang("lg", "lug", "Ganda", "lug_Latn"),
    _lang(None, "luo", "Luo", "luo_Latn"),
    _lang("ny", "nya", "Chichewa", "nya_Latn"),
    _lang("sn", "sna", "Shona", "sna_Latn"),
    _lang("tn", "tsn", "Tswana", "tsn_Latn"),
    _lang("st", "sot", "Sotho", "sot_Latn"),
    _lang("om", "orm", "Oromo", "gaz_Latn"),
    _lang("ti", "tir", "Tigrinya", "tir_Ethi"),
    _lang("af", "afr", "Afrikaans", "afr_Latn"),
    _lang("mg", "mlg", "Malagasy", "plt_Latn"),
    _lang("ee", "ewe", "Ewe", "ewe_Latn"),
    # other widely used languages (TyDi QA and beyond)
    _lang("fr", "fra", "French", "fra_Latn"),
    _lang("pt", "por", "Portuguese", "por_Latn"),
    _lang("it", "ita", "Italian", "ita_Latn"),
    _lang("nl", "nld", "Dutch", "nld_Latn"),
    _lang("pl", "pol", "Polish", "pol_Latn"),
    _lang("uk", "ukr", "Ukrainian", "ukr_Cyrl"),
    _lang("ja", "jpn", "Japanese", "jpn_Jpan", tydiqa=True),
    _lang("ko", "kor", "Korean", "kor_Hang", tydiqa=True),
    _lang("fi", "fin", "Finnish", "fin_Latn", tydiqa=True),
    _lang("id", "ind", "Indonesian", "ind_Latn", tydiqa=True),
    _lang("bn", "ben", "Bengali", "ben_Beng", tydiqa=True),
    _lang("te", "tel", "Telugu", "tel_Telu", tydiqa=True),
    _lang("th", "tha", "Thai", "tha_Thai", tydiqa=True),
    _lang("ta", "tam", "Tamil", "tam_Taml"),
    _lang("ur", "urd", "Urdu", "urd_Arab"),
    _lang("fa", "fas", "Persian", "pes_Arab"),
    _lang("mr", "mar", "Marathi", "mar_Deva"),
    _lang("ms", "msa", "Malay", "zsm_Latn"),
    _lang("ne", "nep", "Nepali", "npi_Deva"),
    _lang("ro", "ron", "Romanian", "ron_Latn"),
    _lang("cs", "ces", "Czech", "ces_Latn"),
    _lang("sv", "swe", "Swedish", "swe_Latn"),
    _lang("he", "heb", "Hebrew", "heb_Hebr"),
    _lang("ht", "hat", "Haitian Creole", "hat_Latn"),
    _lang("qu", "que", "Quechua", "quy_Latn"),
)

# other codes seen in the wild: ISO 639-3 individual languages, ISO 639-2/B, dataset spellings
_ALIASES: dict[str, str] = {
    "swh": "sw", "arb": "ar", "cmn": "zh", "pes": "fa", "zsm": "ms", "npi": "ne", "gaz": "om",
    "plt": "mg", "quy": "qu", "ger": "de", "fre": "fr", "chi": "zh", "gre": "el", "per": "fa",
    "dut": "nl", "cze": "cs", "rum": "ro", "may": "ms", "kiswahili": "sw", "yorùbá": "yo",
    "isizulu": "zu", "farsi": "fa", "mandarin": "zh", "chinese_simplified": "zh",
    "twi_aka": "tw", "aka": "tw", "ak": "tw", "zho_hant": "zh",
}  # fmt: skip


def _index() -> dict[str, Language]:
    table: dict[str, Language] = {}
    for language in LANGUAGES:
        keys = [language.iso1, language.iso3, language.name, language.flores, language.tydiqa, language.afriqa]
        for key in keys:
            if key:
                table.setdefault(key.lower(), language)
    for alias, target in _ALIASES.items():
        table.setdefault(alias, table[target])
    return table


_BY_KEY = _index()


def normalize_lang(code: str) -> Language:
    """The :class:`Language` named by an ISO 639-1/-3 code, an English name or a FLORES-200 code."""
    key = str(code).strip().lower().replace("-", "_")
    if key in _BY_KEY:
        return _BY_KEY[key]
    if "_" in key and key.split("_")[0] in _BY_KEY:  # e.g. yor_Latn, de_DE
        return _BY_KEY[key.split("_")[0]]
    close = difflib.get_close_matches(key, list(_BY_KEY), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "use an ISO 639-1 or 639-3 code such as yo, yor, sw, de"
    raise EdgeAdaptError(f"unknown language {code!r}: {hint}")


def find_language(code: str) -> Language | None:
    """The :class:`Language` :func:`normalize_lang` finds for ``code``, or None where it knows none (a dataset's
    own naming, a bare file)."""
    try:
        return normalize_lang(code)
    except EdgeAdaptError:
        return None


def code_or_itself(code: str) -> str:
    """The ISO code of ``code`` where edgeadapt knows the language (``yor`` -> ``yo``), else ``code`` unchanged."""
    language = find_language(code)
    return language.code if language else str(code)


def is_language_code(token: str) -> bool:
    """Whether ``token`` is exactly a code or name :func:`normalize_lang` knows (no guessing)."""
    return token.strip().lower() in _BY_KEY


def known_languages() -> tuple[Language, ...]:
    """Every language edgeadapt knows by name."""
    return LANGUAGES
