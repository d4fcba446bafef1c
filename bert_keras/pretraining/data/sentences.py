"""Rule-based English sentence splitter (no model, no download) for turning raw paragraphs into BERT's
one-sentence-per-line input.

A sentence ends at `.`, `!`, `?` (or a run such as `?!` / `...`), optionally followed by closing quotes or
brackets, when whitespace follows and the next text starts like a sentence (capital letter, digit, opening
quote or bracket). Known abbreviations (Mr., Dr., St., e.g., ...) single-letter initials (H. G. Wells) and initialisms (U.S.)
do not end a sentence.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof rev st sr jr mt capt col gen lt sgt maj gov hon messrs mme mlle esq
    vs etc e.g i.e viz cf al no vol ch fig ed eds op pp inc ltd co corp dept jan feb mar apr jun jul aug sep
    sept oct nov dec""".split()
)

_BOUNDARY = re.compile(
    r"""(?P<end>[.!?]+['"’”)\]]*)   # terminal punctuation and closing quotes/brackets
        (?P<space>\s+)
        (?=['"‘“(\[]*[A-Z0-9])     # next sentence starts with a capital or digit, maybe after an opener
    """,
    re.VERBOSE,
)
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_INITIALISM = re.compile(r"(?:[a-z]\.)*[a-z]")  # "h", "u.s", "e.g" 


def split_sentences(paragraph: str) -> list[str]:
    """Splits one paragraph (any internal line breaks are treated as spaces) into sentences."""
    text = " ".join(paragraph.split())
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group("end").startswith(".") and not match.group("end").startswith("..."):
            if _is_abbreviation(text[start : match.start("end")]):
                continue
        sentences.append(text[start : match.end("end")])
        start = match.end("space")
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _is_abbreviation(before_period: str) -> bool:
    word = _LAST_WORD.search(before_period)
    if not word:
        return False
    token = word.group(1).lower()
    return bool(_INITIALISM.fullmatch(token)) or token in ABBREVIATIONS
