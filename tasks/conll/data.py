"""CoNLL-2003 data: the column text format and the `tensorflow_datasets` `conll2003` builder.

Every reader returns `Sentence`s whose tags are IOB2 (B- at every entity start), whatever the source's
scheme: IOB1 (the original CoNLL-2003 release, B- only between two adjacent same-type entities) becomes
IOB2 on read, so training labels are one consistent scheme and evaluation sees what conlleval would.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

from bert_keras.text_files import open_text

CONLL2003_ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"^(?:O|[BI]-[^\s-][^\s]*)$")


def label_list(entity_types: Sequence[str] = CONLL2003_ENTITY_TYPES) -> list[str]:
    """The IOB2 label vocabulary: "O" first (id 0), then B-/I- per type in the given order."""
    return ["O"] + [f"{prefix}-{t}" for t in entity_types for prefix in ("B", "I")]


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence: words and their IOB2 tags; `source` ("file:line") locates it for error messages."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        where = f" ({self.source})" if self.source else ""
        if not self.words:
            raise ValueError(f"Empty sentence{where}: a sentence needs at least one word")
        if len(self.words) != len(self.tags):
            raise ValueError(f"Sentence{where} has {len(self.words)} words but {len(self.tags)} tags")
        for word in self.words:
            if not word or word != word.strip() or any(c.isspace() for c in word):
                raise ValueError(f"Sentence{where} has an empty or whitespace-containing word {word!r}")


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that does not continue an X entity starts one, so it becomes B-X.

    Identity on valid IOB2. This is also how conlleval reads an I-X after O or after another type.
    """
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def validate_tags(tags: Iterable[str], allowed: set[str] | None, where: Sequence[str]) -> None:
    """Raises naming the location of the first tag that is not IOB (or not in `allowed`)."""
    for tag, loc in zip(tags, where):
        if not _TAG.match(tag):
            raise ValueError(f"{loc}: {tag!r} is not an IOB tag (expected O, B-TYPE or I-TYPE)")
        if allowed is not None and tag != "O" and tag[2:] not in allowed:
            raise ValueError(f"{loc}: unknown entity type in tag {tag!r}; known types: {sorted(allowed)}")


def read_conll(path: str | os.PathLike, entity_types: Sequence[str] | None = CONLL2003_ENTITY_TYPES,
               tag_column: int = -1) -> list[Sentence]:
    """Reads a CoNLL column file: one `token ... tag` line per word, blank lines between sentences.

    `-DOCSTART-` lines separate documents and are dropped. Every word line must have the column count of
    the file's first word line (CoNLL-2003: token POS chunk NER). Tags may be IOB1 or IOB2 and come back
    as IOB2. `entity_types=None` accepts any entity type.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"CoNLL file not found: {path}")
    allowed = set(entity_types) if entity_types is not None else None
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    num_columns = None

    def flush():
        if words:
            validate_tags(tags, allowed, [f"{path}:{n}" for n in lines])
            sentences.append(Sentence(tuple(words), tuple(to_iob2(tags)), f"{path}:{lines[0]}"))
            words.clear(), tags.clear(), lines.clear()

    with open_text(path) as f:
        for line_number, line in enumerate(f, start=1):
            columns = line.split()
            if not columns:
                flush()
                continue
            if columns[0] == DOCSTART:
                flush()
                continue
            if num_columns is None:
                if len(columns) < 2:
                    raise ValueError(f"{path}:{line_number}: expected at least 2 columns (token ... tag), "
                                     f"got {len(columns)}: {line.rstrip()!r}")
                num_columns = len(columns)
            elif len(columns) != num_columns:
                raise ValueError(f"{path}:{line_number}: expected {num_columns} columns like the file's first "
                                 f"word line, got {len(columns)}: {line.rstrip()!r}")
            words.append(columns[0])
            tags.append(columns[tag_column])
            lines.append(line_number)
    flush()
    if not sentences:
        raise ValueError(f"{path}: no sentences found (empty file or only -DOCSTART-/blank lines)")
    return sentences


SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_TFDS_SPLITS = {"train": "train", "validation": "dev", "test": "test"}


def read_split(data_dir: str | os.PathLike, split: str) -> list[Sentence]:
    """`split` in train/validation/test from a directory holding CoNLL-2003's train/valid/test.txt."""
    if split not in SPLIT_FILES:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLIT_FILES)}")
    return read_conll(os.path.join(os.fspath(data_dir), SPLIT_FILES[split]))


def read_tfds(split: str, data_dir: str | os.PathLike, name: str = "conll2003") -> list[Sentence]:
    """Reads the prepared `tensorflow_datasets` `conll2003` from a local `data_dir` (never downloads)."""
    import tensorflow_datasets as tfds

    if split not in _TFDS_SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(_TFDS_SPLITS)}")
    builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tensorflow_datasets {name!r} is not prepared under {data_dir} (looked in {builder.data_dir}); "
            f"prepare it there first, or read the CoNLL text files with --data_format=conll")
    ner_names = builder.info.features["ner"].feature.names
    sentences = []
    for index, example in enumerate(builder.as_dataset(split=_TFDS_SPLITS[split]).as_numpy_iterator()):
        words = tuple(w.decode("utf-8") for w in example["tokens"])
        if not words:
            continue  # tfds's generator can emit an empty example at a file's end.
        tags = [ner_names[i] for i in example["ner"]]
        source = f"tfds:{name}/{split}[{index}]"
        validate_tags(tags, None, [source] * len(tags))
        sentences.append(Sentence(words, tuple(to_iob2(tags)), source))
    return sentences
