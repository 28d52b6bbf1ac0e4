"""A small disease knowledge base and a Linker over it (tiny BERT; no downloads).

Shared by the text tests (not a ``conftest.py``: a second one would shadow
``from conftest import ...`` in the other test modules)."""

from sapbert_st.kb import Concept, KnowledgeBase

KB = KnowledgeBase([
    Concept("D003123", "Colorectal Neoplasms, Hereditary Nonpolyposis",
            ("hereditary nonpolyposis colorectal cancer", "lynch syndrome"), ("T191",)),
    Concept("D001943", "Breast Neoplasms", ("breast cancer", "breast tumor"), ("T191",)),
    Concept("D006973", "Hypertension", ("high blood pressure",), ("T047",)),
    Concept("D003920", "Diabetes Mellitus", ("diabetes", "sugar disease"), ("T047",)),
    Concept("D050723", "Fractures, Bone", ("broken bone", "fracture"), ("T037",)),
    Concept("D009103", "Multiple Sclerosis", ("MS",), ("T047",)),
])


def make_linker(model):
    """A Linker over :data:`KB` with ``model`` (cosine)."""
    from sapbert_st.text.kb_linker import build_linker

    return build_linker(model, KB, similarity="cosine")
