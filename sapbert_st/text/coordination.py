"""Composite mentions: one span that names several concepts by coordination, split into one
query per concept ("breast and ovarian cancer" -> "breast cancer", "ovarian cancer").

The two forms of the composite annotations of NCBI-disease and BC5CDR (which BioSyn's
preprocessing split before linking) are recognised:

* conjuncts before a shared head: ``"A, B and C head"`` -> ``"A head"``, ``"B head"``,
  ``"C head"`` ("learning and memory impairment", "Saethre-Chotzen, Crouzon, and Pfeiffer
  syndromes"). The last conjunct is the one word after the last coordinator, the head all
  words after it ("male and female breast cancer" -> "male breast cancer", "female breast
  cancer"); words before the first coordinator stay with the first conjunct
  ("non-familial breast and ovarian cancers" -> "non-familial breast cancers", "ovarian
  cancers"), and a conjunct that already ends with the head's last word is left as it is
  ("breast cancer and ovarian cancer"). Conjuncts are taken to be modifiers: "Alzheimer
  disease and Down syndrome" gives "Alzheimer disease syndrome" (no part-of-speech tagger
  here to tell them apart);
* a shared head before ``of``/``in``: ``"head of A and B"`` -> ``"head of A"``, ``"head of
  B"`` ("impairment of learning and memory").

The coordinators are ``and``, ``or`` and ``and/or``; commas separate further conjuncts.
Anything else (no coordinator, a preposition among the conjuncts, brackets, an empty
conjunct) is one query, as is "nausea and vomiting" (no shared word). Whether a span that
splits is linked as parts is decided by the linker (:class:`~sapbert_st.text.SpanLinker`
keeps a span whole when it is itself a dictionary name, e.g. "hand, foot and mouth
disease").
"""

from __future__ import annotations

_COORDINATORS = frozenset({"and", "or", "and/or"})
_PREPOSITIONS = frozenset({"of", "in"})
# words that make a span something other than a plain coordination of modifiers
_BLOCKERS = frozenset({"of", "in", "with", "without", "to", "for", "on", "at", "by", "from",
                       "after", "before", "during", "due", "not", "but"})
_LEADING = frozenset({"the", "both", "either", "a", "an"})


def _conjuncts(words: list[str]) -> list[list[str]] | None:
    """``words`` cut at commas and coordinators into two or more non-empty conjuncts, or
    None when they are not such a list (no coordinator, a comma after the last one, an
    empty or blocked conjunct)."""
    items: list[list[str]] = [[]]
    coordinated = False
    for position, word in enumerate(words):
        lowered = word.lower()
        if lowered in _COORDINATORS:
            if not items[-1]:
                if not (len(items) > 1 and position > 0 and words[position - 1].endswith(",")):
                    return None  # "A and and B", or a leading coordinator
                items.pop()  # the comma of "A, B, and C" already closed the conjunct
            items.append([])
            coordinated = True
            continue
        if coordinated and word.endswith(","):
            return None  # a comma after the last coordinator: not one list
        if lowered.rstrip(",") in _BLOCKERS:
            return None
        bare = word.rstrip(",")
        if bare:
            items[-1].append(bare)
        if word.endswith(","):
            items.append([])
    items = [[w for i, w in enumerate(item) if i or w.lower() not in _LEADING] for item in items]
    if not coordinated or len(items) < 2 or any(not item for item in items):
        return None
    return items


def split_coordination(mention: str) -> list[str]:
    """The parts of a coordinated composite mention, or ``[mention]`` when it is not one.

    Example:
        ::

            split_coordination("breast and ovarian cancer")
            # ['breast cancer', 'ovarian cancer']
            split_coordination("impairment of learning and memory")
            # ['impairment of learning', 'impairment of memory']
            split_coordination("nausea and vomiting")
            # ['nausea and vomiting']
    """
    if not isinstance(mention, str):
        raise TypeError(f"mention: expected a string, got {type(mention).__name__}")
    words = mention.split()
    if len(words) < 3 or any(c in mention for c in "()[]{};|"):
        return [mention]
    lowered = [w.lower() for w in words]
    for position, word in enumerate(lowered[1:-1], start=1):
        if word in _PREPOSITIONS:
            head = words[:position + 1]
            if any(w in _COORDINATORS or w.endswith(",") for w in lowered[:position]):
                break  # "carcinoma and sarcoma of the uterus": not a shared head
            items = _conjuncts(words[position + 1:])
            if items is None:
                break
            return [" ".join(head + item) for item in items]
    last = max((i for i, w in enumerate(lowered) if w in _COORDINATORS), default=-1)
    if last < 1:
        return [mention]
    end = last + 1  # the last conjunct: the word after the coordinator (and a "the")
    while end < len(words) and lowered[end] in _LEADING:
        end += 1
    if end + 1 >= len(words):
        return [mention]
    items = _conjuncts(words[:end + 1])
    if items is None:
        return [mention]
    head = words[end + 1:]
    # "breast cancer and ovarian cancer": a conjunct that already ends with the head keeps it
    return [" ".join(item if item[-1].lower() == head[-1].lower() else item + head)
            for item in items]
