"""XL-BEL (Liu et al., ACL 2021): cross-lingual biomedical entity linking, 10 languages.

Queries are Wikipedia mentions of UMLS concepts, 1,000 per language (``de``, ``en``,
``es``, ``fi``, ``ja``, ``ko``, ``ru``, ``th``, ``tr``, ``zh``) plus ``all`` (the 10,000
together), in two releases of cambridgeltl/sapbert (``evaluation/xl_bel/``)::

    xlbel_v0.0/<lang>_1k_test_query.txt                 CUI||mention
    xlbel_v1.0/<lang>_1k_test_query_with_context.txt    CUI||mention||sentence

``v0.0`` is what the paper's numbers use. In ``v1.0`` the sentence marks the mention
as ``<tgt>...</tgt>``; it comes back as a ``context`` column, unchanged.

The protocol, as the reference evaluates it:

* mentions are **cased** (the paper's dictionary is ``umls_onto_all_lang_cased``, its
  model the cased XLM-R); ``lowercase=True`` gives the English recipe's lowercasing.
  Both are NFC-normalised (:func:`~sapbert_st.data.normalization.normalize_name`);
* a gold id may be composite, ``C2051831|C0016842``: a prediction is correct when its id
  is any of them (the shared ``cuis`` column; the evaluator splits ``gold`` the same
  way). Ids are kept as found: besides UMLS CUIs (``C0000005``) the files hold a few
  ``CL...``/``CN...`` ids and one bare number, which no dictionary row can match;
* every line is a query (no deduplication, no filtering).

The dictionary, all UMLS 2020AB names in every language, cased (399,931 names in the
reference's ``umls_onto_all_lang_cased_wikimed_only_399931.txt``), is licensed and not
distributed: bring a ``CUI||name`` file (``dictionary_path`` of
:func:`~sapbert_st.data.benchmarks.load_benchmark`, or
:func:`~sapbert_st.data.umls.load_umls_dictionary` with ``languages=None,
lowercase=False``).

References:
    - Liu, Vulić, Korhonen & Collier, "Learning Domain-Specialised Representations for
      Cross-Lingual Biomedical Entity Linking", ACL-IJCNLP 2021;
      https://github.com/cambridgeltl/sapbert (``evaluation/xl_bel/``)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from datasets import Dataset, DatasetInfo, Features, Value

from sapbert_st.data.queries import QUERY_FEATURES, QueryCollector, layout_hint, looks_like
from sapbert_st.data.reading import (
    DataFormatError,
    PathLike,
    header_problem,
    iter_lines,
    looks_like_header,
)

logger = logging.getLogger(__name__)

#: The languages of XL-BEL, and ``all`` (their 10,000 queries in one file).
XL_BEL_LANGUAGES = ("de", "en", "es", "fi", "ja", "ko", "ru", "th", "tr", "zh", "all")
#: Release -> (folder, file name pattern, fields per line).
XL_BEL_VERSIONS = {
    "v0.0": ("xlbel_v0.0", "{lang}_1k_test_query.txt", 2),
    "v1.0": ("xlbel_v1.0", "{lang}_1k_test_query_with_context.txt", 3),
}
QUERY_FEATURES_WITH_CONTEXT = Features({**QUERY_FEATURES, "context": Value("string")})
_TARGET = re.compile(r"<tgt>(.*?)</tgt>", re.DOTALL)


def load_xl_bel_file(path: PathLike, lowercase: bool = False) -> Dataset:
    """Load one XL-BEL query file, ``CUI||mention`` (v0.0) or ``CUI||mention||sentence`` (v1.0).

    The layout is taken from the first line; every line must have the same number of
    fields. A sentence must mark its target once, ``<tgt>...</tgt>``; a target whose text
    differs from the mention is kept and counted in a log line (one in the German file).

    Args:
        path: The query file.
        lowercase: Lowercase mentions (default ``False``: cased, as the paper).

    Returns:
        ``mention``, ``cuis``, ``gold`` (and ``context``, the marked sentence, for v1.0).
    """
    path = Path(path)
    collector = QueryCollector(path, lowercase=lowercase)
    contexts: list[str] = []
    n_fields = None
    differing = 0
    for lineno, line in iter_lines(path):
        fields = line.split("||")
        if n_fields is None:
            n_fields = len(fields)
            if n_fields not in (2, 3):
                raise DataFormatError(path, lineno, f"expected 'CUI||mention' (XL-BEL v0.0) or "
                                      f"'CUI||mention||sentence' (v1.0), found {n_fields} "
                                      f"'||'-separated fields{looks_like(line)}", line)
        elif len(fields) != n_fields:
            layout = "CUI||mention" if n_fields == 2 else "CUI||mention||sentence"
            raise DataFormatError(path, lineno, f"expected {n_fields} '||'-separated fields "
                                  f"('{layout}', as line 1), found {len(fields)}", line)
        gold, mention = fields[0], fields[1]
        if looks_like_header(gold):
            first = not collector.rows["mention"] and not collector.cuiless
            raise DataFormatError(path, lineno, header_problem(first, "XL-BEL files have none"),
                                  line)
        if gold.strip().startswith("|") or gold.strip().endswith("|") or mention.startswith("|"):
            raise DataFormatError(path, lineno, "a stray '|' next to the '||' separator; "
                                  "expected 'CUI||mention' with CUIs joined by single '|'", line)
        if n_fields == 3:
            targets = _TARGET.findall(fields[2])
            if len(targets) != 1:
                raise DataFormatError(path, lineno, f"expected the sentence to mark its mention "
                                      f"once as <tgt>...</tgt>, found {len(targets)} marks", line)
            differing += targets[0].strip() != mention.strip()
        kept = len(collector.rows["mention"])
        collector.add(path, lineno, line, mention, gold)
        if n_fields == 3 and len(collector.rows["mention"]) > kept:  # not dropped as CUI-less
            contexts.append(fields[2])
    queries = collector.to_dataset(description=f"XL-BEL queries from {path}")
    if differing:
        logger.info("%s: %d sentences mark a target that differs from the mention field",
                    path, differing)
    if n_fields == 3:
        features = QUERY_FEATURES_WITH_CONTEXT
        queries = Dataset.from_dict({**queries.to_dict(), "context": contexts}, features=features,
                                    info=DatasetInfo(description=queries.info.description,
                                                     features=features))
    return queries


def xl_bel_path(folder: PathLike, language: str, version: str = "v0.0") -> Path:
    """The query file of ``language`` under an ``xl-bel/`` folder (with ``xlbel_v0.0/`` ...).

    ``folder`` may also be the ``xlbel_v0.0``/``xlbel_v1.0`` folder itself.
    """
    if language not in XL_BEL_LANGUAGES:
        raise ValueError(f"language: unknown XL-BEL language {language!r}; expected one of "
                         f"{', '.join(XL_BEL_LANGUAGES)}")
    if version not in XL_BEL_VERSIONS:
        raise ValueError(f"version: expected one of {', '.join(XL_BEL_VERSIONS)}, got {version!r}")
    folder = Path(folder)
    sub, pattern, _ = XL_BEL_VERSIONS[version]
    name = pattern.format(lang=language)
    for candidate in (folder / sub / name, folder / name):
        if candidate.is_file():
            return candidate
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected the XL-BEL folder "
                                f"(with {sub}/{name})")
    raise FileNotFoundError(f"{folder}: missing {sub}/{name} (XL-BEL {version} layout)"
                            f"{layout_hint(folder)}")


def load_xl_bel(
    folder: PathLike,
    language: str,
    version: str = "v0.0",
    lowercase: bool = False,
) -> Dataset:
    """Load the XL-BEL test queries of one language (or ``"all"``) from an ``xl-bel/`` folder.

    Args:
        folder: The folder holding ``xlbel_v0.0/`` and/or ``xlbel_v1.0/``.
        language: One of :data:`XL_BEL_LANGUAGES`.
        version: ``"v0.0"`` (mentions only; the paper's numbers) or ``"v1.0"`` (with the
            sentence, as a ``context`` column).
        lowercase: Lowercase mentions (default ``False``: cased, as the paper).

    Example:
        ::

            from sapbert_st.data.xl_bel import load_xl_bel

            queries = load_xl_bel("data/xl-bel", "ko")
            len(queries), queries[0]["mention"]  # (1000, '단순 포진')
    """
    return load_xl_bel_file(xl_bel_path(folder, language, version), lowercase=lowercase)
