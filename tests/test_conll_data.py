"""CoNLL column reader: real excerpts, IOB1 -> IOB2, tensorflow_datasets `conll2003`, and bad input."""

import pytest

from bert_keras.tasks.conll import data


def to_iob1(tags):
    """Independent IOB2 -> IOB1: B-X stays only when it directly follows an X entity."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("B-") and not (prev != "O" and prev[2:] == tag[2:]):
            tag = "I-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def raw_sentences(path):
    """(words, tags) per sentence, parsed naively: the reference the reader must agree with."""
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append((tuple(words), tuple(tags)))
                words, tags = [], []
            continue
        columns = line.split(" ")
        words.append(columns[0]), tags.append(columns[3].rstrip("\n"))
    if words:
        sentences.append((tuple(words), tuple(tags)))
    return sentences


@pytest.mark.parametrize("name,count", [("train.txt", 200), ("valid.txt", 100), ("test.txt", 100)])
def test_reads_real_excerpts(test_data, name, count):
    path = test_data / "conll" / name
    sentences = data.read_conll(path)
    assert len(sentences) == count
    assert [(s.words, s.tags) for s in sentences] == raw_sentences(path)
    assert sentences[0].source == f"{path}:3"  # line 1 is -DOCSTART-, line 2 blank


def test_iob1_file_reads_as_iob2(test_data, tmp_path):
    source = test_data / "conll" / "train.txt"
    iob1_lines, words, tags = [], [], []
    lines = source.read_text(encoding="utf-8").splitlines()
    # Rewrite the NER column sentence by sentence in IOB1.
    block = []
    for line in lines + [""]:
        if line.strip() and not line.startswith("-DOCSTART-"):
            block.append(line.split(" "))
            continue
        if block:
            for columns, tag in zip(block, to_iob1([c[3] for c in block])):
                iob1_lines.append(" ".join(columns[:3] + [tag]))
            block = []
        iob1_lines.append(line)
    iob1_path = tmp_path / "train_iob1.txt"
    iob1_path.write_text("\n".join(iob1_lines) + "\n", encoding="utf-8")
    assert iob1_path.read_text() != source.read_text()  # the excerpt really changes under IOB1
    original = data.read_conll(source)
    converted = data.read_conll(iob1_path)
    assert [(s.words, s.tags) for s in converted] == [(s.words, s.tags) for s in original]


def test_label_list():
    assert data.label_list() == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def write(tmp_path, text):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(ValueError, match=r"bad\.txt:4: expected 4 columns"):
        data.read_conll(path)


def test_unknown_tags_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"bad\.txt:2: 'X-PER' is not an IOB tag"):
        data.read_conll(write(tmp_path, "EU NNP B-NP B-ORG\nPeter NNP B-NP X-PER\n"))
    with pytest.raises(ValueError, match=r"bad\.txt:1: unknown entity type in tag 'B-DATE'"):
        data.read_conll(write(tmp_path, "Monday NNP B-NP B-DATE\n"))
    # Any type is fine when the caller says so.
    assert data.read_conll(write(tmp_path, "Monday NNP B-NP B-DATE\n"), entity_types=None)[0].tags == ("B-DATE",)


def test_empty_input_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"bad\.txt: no sentences"):
        data.read_conll(write(tmp_path, "-DOCSTART- -X- -X- O\n\n\n"))
    with pytest.raises(ValueError, match="Empty sentence"):
        data.Sentence((), (), "somewhere:1")
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        data.Sentence(("a", "b"), ("O",))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        data.read_conll(tmp_path / "nope.txt")


def test_tfds_conll2003_from_local_data_dir(test_data, tmp_path, monkeypatch):
    """Prepares the real tfds `conll2003` builder from the excerpt (its download step pointed at the local
    files), then reads it back: same sentences as the text reader (tfds stores them in hashed order)."""
    import tensorflow_datasets as tfds
    from etils import epath

    with pytest.raises(FileNotFoundError, match="not prepared"):
        data.read_tfds("validation", tmp_path)
    class LocalFiles:  # the download manager, minus downloads (and the checksum registry lookup)
        downloaded_size = 0

        def download_and_extract(self, url):
            return epath.Path(test_data / "conll")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "_make_download_manager", lambda self, *a, **k: LocalFiles())
    tfds.builder("conll2003", data_dir=str(tmp_path)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(verify_ssl=False))
    for split, name in (("validation", "valid.txt"), ("test", "test.txt")):
        from_tfds = data.read_tfds(split, tmp_path)
        from_text = data.read_conll(test_data / "conll" / name)
        assert sorted((s.words, s.tags) for s in from_tfds) == sorted((s.words, s.tags) for s in from_text)
