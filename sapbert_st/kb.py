"""Knowledge bases: concepts with a canonical name, aliases, semantic types and a definition.

The record is scispaCy's (``concept_id``, ``canonical_name``, ``aliases``, ``types``,
``definition``), so a KB written for scispaCy's ``EntityLinker`` describes the same concepts
here. A :class:`KnowledgeBase` is a read-only mapping from concept id to :class:`Concept`;
the linking stack uses it to report canonical names and to restrict results to types.

Build one from scispaCy's KB JSONL (:meth:`KnowledgeBase.read_jsonl`), from the UMLS
(:meth:`KnowledgeBase.from_umls`: ``MRCONSO.RRF`` names, ``MRSTY.RRF`` semantic types,
language and source filters), or from any ``(id, name)`` records, e.g. the ontology loaders
of :mod:`sapbert_st.data.ontology` (:meth:`KnowledgeBase.from_records`,
:meth:`KnowledgeBase.from_dictionary`). :func:`sapbert_st.text.build_linker` indexes it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Concept:
    """One concept of a knowledge base (scispaCy's KB record).

    Args:
        concept_id: The concept's id (a UMLS CUI, a MeSH id, an HPO id, ...).
        canonical_name: The preferred name, reported with every link to this concept.
        aliases: Other names (synonyms); the canonical name need not be repeated here.
        types: Semantic types (e.g. UMLS TUIs such as ``"T047"``); empty when unknown.
        definition: A textual definition, if any.
    """

    concept_id: str
    canonical_name: str
    aliases: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    definition: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for argument in ("concept_id", "canonical_name"):
            value = getattr(self, argument)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{argument}: expected a non-blank string, got {value!r}")
        for argument in ("aliases", "types"):
            value = getattr(self, argument)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{argument}: expected a sequence of strings, got {value!r}")
            object.__setattr__(self, argument, tuple(value))

    def names(self) -> list[str]:
        """The canonical name, then every alias not equal to it (each once, in order)."""
        return list(dict.fromkeys((self.canonical_name, *self.aliases)))


class KnowledgeBase(Mapping[str, Concept]):
    """A read-only mapping ``concept_id -> Concept``.

    Args:
        concepts: The concepts; a concept id given twice is an error.
    """

    def __init__(self, concepts: Iterable[Concept]) -> None:
        self._concepts: dict[str, Concept] = {}
        for i, concept in enumerate(concepts):
            if not isinstance(concept, Concept):
                raise TypeError(f"concepts[{i}]: expected a Concept, got "
                                f"{type(concept).__name__}")
            if concept.concept_id in self._concepts:
                raise ValueError(f"concepts[{i}]: duplicate concept_id "
                                 f"{concept.concept_id!r}")
            self._concepts[concept.concept_id] = concept

    def __getitem__(self, concept_id: str) -> Concept:
        return self._concepts[concept_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._concepts)

    def __len__(self) -> int:
        return len(self._concepts)

    def __repr__(self) -> str:
        return f"KnowledgeBase(concepts={len(self)})"

    def dictionary(self) -> tuple[list[str], list[str]]:
        """``(names, concept_ids)``, one row per distinct name of each concept: what
        :meth:`sapbert_st.linking.DictionaryIndex.build` indexes."""
        names: list[str] = []
        ids: list[str] = []
        for concept in self._concepts.values():
            for name in concept.names():
                names.append(name)
                ids.append(concept.concept_id)
        return names, ids

    def types(self) -> dict[str, int]:
        """``{semantic type: number of concepts}``."""
        counts: dict[str, int] = {}
        for concept in self._concepts.values():
            for t in concept.types:
                counts[t] = counts.get(t, 0) + 1
        return counts

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str]],
                     types: Mapping[str, Sequence[str]] | None = None,
                     definitions: Mapping[str, str] | None = None) -> KnowledgeBase:
        """A KB from ``(concept_id, name)`` records: the first name of each id is its
        canonical name, the others its aliases (in order, each once).

        Works with every ``iter_*`` loader of :mod:`sapbert_st.data.ontology` (MEDIC, CTD,
        MeSH, MONDO, EFO, OBO: each yields a concept's label first), e.g.
        ``KnowledgeBase.from_records(iter_obo("hp.obo"))``.

        Args:
            records: ``(concept_id, name)`` pairs.
            types: Optional ``{concept_id: semantic types}``.
            definitions: Optional ``{concept_id: definition}``.
        """
        names: dict[str, dict[str, None]] = {}
        for i, record in enumerate(records):
            if not (isinstance(record, tuple | list) and len(record) == 2):
                raise ValueError(f"records[{i}]: expected a (concept_id, name) pair, got "
                                 f"{record!r:.100}")
            concept_id, name = record
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"records[{i}]: expected a non-blank name, got {name!r}")
            names.setdefault(concept_id, {})[name.strip()] = None
        types = types or {}
        definitions = definitions or {}
        return cls(Concept(concept_id, canonical, tuple(rest), tuple(types.get(concept_id, ())),
                           definitions.get(concept_id))
                   for concept_id, (canonical, *rest) in ((c, list(n)) for c, n in names.items()))

    @classmethod
    def from_dictionary(cls, names: Any, concept_ids: Sequence[str] | None = None,
                        types: Mapping[str, Sequence[str]] | None = None) -> KnowledgeBase:
        """A KB from a dictionary: ``names`` and ``concept_ids`` lists, or a
        ``datasets.Dataset`` with ``name`` and ``cui`` columns (the loaders' dictionaries).
        The first name of each id is its canonical name."""
        if concept_ids is None:
            try:
                names, concept_ids = names["name"], names["cui"]
            except (KeyError, TypeError, IndexError) as exc:
                raise ValueError("names: expected lists of names and concept_ids, or a Dataset "
                                 "with 'name' and 'cui' columns") from exc
        if len(names) != len(concept_ids):
            raise ValueError(f"concept_ids: {len(concept_ids)} ids for {len(names)} names; "
                             f"expected one id per name")
        return cls.from_records(zip(concept_ids, names), types)

    @classmethod
    def from_umls(cls, mrconso, mrsty=None, *, languages: Collection[str] | None = ("ENG",),
                  sources: Collection[str] | None = None,
                  suppress: Collection[str] | None = ("N",),
                  semantic_types: Collection[str] | None = None,
                  show_progress_bar: bool | None = None) -> KnowledgeBase:
        """A KB from the UMLS Metathesaurus, as scispaCy builds its UMLS KB.

        Args:
            mrconso: ``MRCONSO.RRF`` (plain or gzip). Every kept name of a CUI is an alias;
                its canonical name is its preferred name (TS ``P``, STT ``PF``, ISPREF ``Y``)
                among the kept rows, else the first kept name.
            mrsty: ``MRSTY.RRF``: each concept's semantic types (TUIs such as ``T047``).
            languages: LAT values kept (default English only); None keeps all.
            sources: SAB values kept (e.g. ``("MSH", "SNOMEDCT_US")``); None keeps all.
            suppress: SUPPRESS flags kept; default ``("N",)``, only current names (None
                keeps obsolete and suppressible names too).
            semantic_types: Keep only concepts with one of these TUIs or groups (``"DISO"``,
                see :mod:`sapbert_st.data.semantic_groups`); needs ``mrsty``.
        """
        from sapbert_st.data.semantic_groups import expand_semantic_types
        from sapbert_st.data.umls import iter_mrconso_atoms, iter_mrsty

        wanted = None
        if semantic_types is not None:
            if mrsty is None:
                raise ValueError("semantic_types: filtering by semantic type needs mrsty "
                                 "(MRSTY.RRF)")
            wanted = set(expand_semantic_types(semantic_types))
        types: dict[str, list[str]] = {}
        if mrsty is not None:
            for cui, tui, _ in iter_mrsty(mrsty):
                types.setdefault(cui, []).append(tui)
        names: dict[str, dict[str, None]] = {}
        preferred: dict[str, str] = {}
        for cui, name, is_preferred in iter_mrconso_atoms(mrconso, languages, sources, suppress,
                                                          show_progress_bar):
            if wanted is not None and not wanted.intersection(types.get(cui, ())):
                continue
            name = name.strip()
            if not name:
                continue
            names.setdefault(cui, {})[name] = None
            if is_preferred and cui not in preferred:
                preferred[cui] = name
        concepts = []
        for cui, kept in names.items():
            canonical = preferred.get(cui, next(iter(kept)))
            concepts.append(Concept(cui, canonical, tuple(n for n in kept if n != canonical),
                                    tuple(dict.fromkeys(types.get(cui, ())))))
        if not concepts:
            logger.warning("%s: no concept passed the filters (languages=%s, sources=%s, "
                           "semantic_types=%s)", mrconso, languages, sources, semantic_types)
        return cls(concepts)

    # ------------------------------------------------------------------ JSONL files

    def write_jsonl(self, path) -> None:
        """Write one scispaCy KB record per line (UTF-8 JSON lines)."""
        import json

        with open(path, "w", encoding="utf-8") as out:
            out.writelines(json.dumps({
                "concept_id": concept.concept_id, "canonical_name": concept.canonical_name,
                "aliases": list(concept.aliases), "types": list(concept.types),
                "definition": concept.definition}, ensure_ascii=False) + "\n"
                for concept in self._concepts.values())

    @classmethod
    def read_jsonl(cls, path) -> KnowledgeBase:
        """Read scispaCy's KB JSONL (``concept_id``, ``canonical_name``, optional
        ``aliases``, ``types``, ``definition``); errors name the file and line."""
        import json

        concepts = []
        with open(path, encoding="utf-8") as lines:
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise TypeError(f"expected a JSON object, got {type(record).__name__}")
                    concepts.append(Concept(
                        concept_id=record["concept_id"],
                        canonical_name=record["canonical_name"],
                        aliases=tuple(record.get("aliases") or ()),
                        types=tuple(record.get("types") or ()),
                        definition=record.get("definition")))
                except KeyError as exc:
                    raise ValueError(f"{path}:{lineno}: missing field {exc.args[0]!r}; expected "
                                     f"concept_id and canonical_name") from exc
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{path}:{lineno}: {exc}") from exc
        return cls(concepts)
