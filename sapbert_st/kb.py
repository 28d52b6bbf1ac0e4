"""Knowledge bases: concepts with a canonical name, aliases, semantic types and a definition.

The record is scispaCy's (``concept_id``, ``canonical_name``, ``aliases``, ``types``,
``definition``), so a KB written for scispaCy's ``EntityLinker`` describes the same concepts
here. A :class:`KnowledgeBase` is a read-only mapping from concept id to :class:`Concept`;
the linking stack uses it to report canonical names and to restrict results to types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


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
