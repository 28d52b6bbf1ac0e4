"""UMLS semantic groups: coarse groups of semantic types (McCray et al., 2001).

A group such as ``DISO`` (Disorders) stands for its semantic types (TUIs), so linking can
be restricted to "any disorder" without listing twelve types. The ``DISO`` group is built
in; every group is read from NLM's ``SemGroups.txt``
(https://lhncbc.nlm.nih.gov/ii/tools/MetaMap/documentation/SemanticTypesAndGroups.html),
one ``GROUP|Group name|TUI|Semantic type name`` per line, with :func:`read_semantic_groups`.

Reference: McCray, Burgun, Bodenreider, "Aggregating UMLS semantic types for reducing
conceptual complexity", Stud Health Technol Inform 2001.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sapbert_st.data.reading import DataFormatError, PathLike, iter_lines, require_nonempty

#: The Disorders group of SemGroups.txt: TUI -> semantic type name.
DISORDERS = {
    "T020": "Acquired Abnormality", "T190": "Anatomical Abnormality",
    "T049": "Cell or Molecular Dysfunction", "T019": "Congenital Abnormality",
    "T047": "Disease or Syndrome", "T050": "Experimental Model of Disease", "T033": "Finding",
    "T037": "Injury or Poisoning", "T048": "Mental or Behavioral Dysfunction",
    "T191": "Neoplastic Process", "T046": "Pathologic Function", "T184": "Sign or Symptom",
}

#: Built-in groups: group abbreviation -> TUIs.
SEMANTIC_GROUPS: dict[str, tuple[str, ...]] = {"DISO": tuple(DISORDERS)}


def read_semantic_groups(path: PathLike) -> dict[str, tuple[str, ...]]:
    """``{group: TUIs}`` from NLM's ``SemGroups.txt`` (``GROUP|name|TUI|type name``)."""
    groups: dict[str, list[str]] = {}
    for lineno, line in iter_lines(path):
        fields = line.split("|")
        if len(fields) != 4 or not (len(fields[2]) == 4 and fields[2][0] == "T"
                                    and fields[2][1:].isdigit()):
            raise DataFormatError(path, lineno, "expected 'GROUP|Group name|TUI|Semantic type "
                                  "name' (SemGroups.txt)", line)
        groups.setdefault(fields[0], []).append(fields[2])
    require_nonempty(path, len(groups), "semantic groups")
    return {group: tuple(tuis) for group, tuis in groups.items()}


def expand_semantic_types(types: Iterable[str],
                          groups: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """``types`` with each group abbreviation (``"DISO"``) replaced by its TUIs and each
    known semantic type name (``"Disease or Syndrome"``) by its TUI; other values (TUIs,
    custom types) stay. ``groups``: e.g. from :func:`read_semantic_groups` (default: the
    built-in ones)."""
    if isinstance(types, str):
        raise TypeError(f"types: expected a list of types, got one string {types!r}")
    groups = SEMANTIC_GROUPS if groups is None else groups
    by_name = {name.lower(): tui for tui, name in DISORDERS.items()}
    out: list[str] = []
    for value in types:
        if not isinstance(value, str):
            raise TypeError(f"types: expected strings, got {value!r}")
        if value in groups:
            out.extend(groups[value])
        else:
            out.append(by_name.get(value.lower(), value))
    return list(dict.fromkeys(out))
