"""What the serve tests share: a small dictionary with a kb, and a Linker over the tiny BERT."""

from __future__ import annotations

from pathlib import Path

from sapbert_st.kb import Concept, KnowledgeBase

# 8 concepts, 2 or 3 names each; types: T047 disease, T184 sign or symptom
CONCEPTS = {
    "HP:0000001": ("Seizure", ("seizure", "fits", "epileptic seizure"), ("T184",)),
    "HP:0000002": ("Hypertension", ("hypertension", "high blood pressure"), ("T047",)),
    "HP:0000003": ("Myocardial infarction", ("myocardial infarction", "heart attack",
                                              "cardiac infarction"), ("T047",)),
    "HP:0000004": ("Short stature", ("short stature", "small stature"), ("T184",)),
    "HP:0000005": ("Hearing impairment", ("hearing impairment", "deafness"), ("T047",)),
    "HP:0000006": ("Fever", ("fever", "pyrexia"), ("T184",)),
    "HP:0000007": ("Headache", ("headache", "head pain"), ("T184",)),
    "HP:0000008": ("Anemia", ("anemia", "anaemia", "low hemoglobin"), ("T047",)),
}

KB = KnowledgeBase(Concept(cui, canonical, names, types)
                   for cui, (canonical, names, types) in CONCEPTS.items())


def dictionary() -> tuple[list[str], list[str]]:
    """(names, ids), one row per name."""
    return KB.dictionary()


def write_dictionary(path: Path) -> Path:
    """The dictionary as ``cui||name`` lines (what ``sapbert-st index --dictionary`` reads)."""
    names, ids = dictionary()
    path.write_text("".join(f"{cui}||{name}\n" for name, cui in zip(names, ids)),
                    encoding="utf-8")
    return path


def build_linker(model_path: Path, kb: bool = True):
    """A Linker over the tiny BERT at ``model_path`` (cosine), with the kb unless told not."""
    from sapbert_st import load_sapbert
    from sapbert_st.linking import DictionaryIndex, Linker

    model = load_sapbert(model_path, device="cpu")
    names, ids = dictionary()
    index = DictionaryIndex.build(model, names, ids, similarity="cosine",
                                  show_progress_bar=False)
    return Linker(index, kb=KB if kb else None)


class ReversingReranker:
    """A stand-in second stage: reverses the first-stage order and records its own score."""

    def rerank(self, mentions, candidates, contexts=None, show_progress_bar=None):
        out = []
        for row in candidates:
            row = list(reversed(row))
            for rank, candidate in enumerate(row):
                candidate.stage_scores["rerank"] = float(len(row) - rank)
                candidate.score = candidate.stage_scores["rerank"]
            out.append(row)
        return out
