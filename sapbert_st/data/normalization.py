"""How names and mentions are normalised before training, indexing and linking.

One function, :func:`normalize_name`, used by every loader, pair builder and dictionary
builder (and by :class:`~sapbert_st.evaluation.EntityLinkingEvaluator`), so that names and
mentions always go through the same steps:

1. Unicode NFC (canonical composition): ``"e" + U+0301`` and ``"é"`` become one string.
   NFC never changes what a text means (unlike NFKC, which folds e.g. full-width forms
   and ligatures), so it is applied in both modes.
2. ``str.lower()`` when ``lowercase=True``: the English recipe (Liu et al., NAACL 2021;
   cambridgeltl/sapbert lowercases every name and mention for its uncased PubMedBERT).
   ``lowercase=False`` keeps the case, as the cross-lingual recipe does for the cased
   XLM-R (Liu et al., ACL 2021, ``umls_onto_all_lang_cased``): lowercasing is not
   meaning-preserving in every script (Turkish ``İ`` becomes ``i̇``, two code points;
   German ``ß``/``ẞ``, case-marked nouns) and a cased model has seen cased text.

Scripts without case (CJK, Thai, Korean) are unchanged by step 2 either way.
"""

from __future__ import annotations

import unicodedata


def normalize_name(text: str, lowercase: bool = True) -> str:
    """NFC-normalise ``text`` and lowercase it when ``lowercase`` (the English recipe)."""
    if not text.isascii():  # ASCII is always NFC: skip the call on the common case
        text = unicodedata.normalize("NFC", text)
    return text.lower() if lowercase else text


def check_lowercase(value, argument: str = "lowercase") -> bool:
    """``value`` if it is ``True`` or ``False``; a ``TypeError`` naming ``argument`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{argument}: expected True (lowercase, the English recipe) or False "
                        f"(keep case, for cased models such as XLM-R), got {value!r}")
    return value
