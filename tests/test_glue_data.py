"""GLUE readers on real excerpts of the original TSVs (tests/data/glue), and their bad-input errors."""

import csv
import os
import shutil

import numpy as np
import pytest

from bert_keras.tasks.glue.data import read_split, read_tsv
from bert_keras.tasks.glue.tasks import GLUE_TASKS, get_task

# (task, split) pairs present in the excerpts; QNLI has no train file in our copy of GLUE.
EXCERPTS = [(t, s) for t in ("cola", "sst2", "mrpc", "stsb", "rte", "wnli") for s in ("train", "dev", "test")]
EXCERPTS += [("qnli", "dev"), ("qnli", "test")]


def _plain_reference(path, spec, split):
    """Independent parse: raw lines split on tabs (no csv module), columns by header name or position."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").split("\t") for line in f.read().lstrip("\ufeff").split("\n") if line]
    if spec.splits[split].header:
        header, rows = lines[0], lines[1:]
        return {name: [row[header.index(name)] for row in rows] for name in header}
    return {i: [row[i] for row in lines] for i in range(len(lines[0]))}


@pytest.mark.parametrize("task,split", EXCERPTS)
def test_tsv_reader_matches_pandas(test_data, task, split):
    spec = get_task(task)
    glue = str(test_data / "glue")
    examples = read_tsv(spec, split, glue)
    frame = _plain_reference(os.path.join(glue, spec.directory, spec.splits[split].file), spec, split)
    columns = spec.splits[split].columns
    assert len(examples) == len(frame[columns.text_a]) > 10
    assert examples.text_a == list(frame[columns.text_a])
    if columns.text_b is not None:
        assert examples.text_b == list(frame[columns.text_b])
    if columns.label is None:
        assert examples.labels is None
        assert examples.index == list(frame[columns.index])
    elif spec.is_regression:
        np.testing.assert_allclose(examples.labels, [float(x) for x in frame[columns.label]], rtol=1e-6)
    else:
        assert [spec.labels[i] for i in examples.labels] == list(frame[columns.label])


def test_quirks_bom_quotes_floats(test_data):
    glue = str(test_data / "glue")
    mrpc = read_tsv(get_task("mrpc"), "train", glue)  # header starts with a UTF-8 BOM
    assert mrpc.text_a[0].startswith("Amrozi accused his brother")
    assert mrpc.labels[:2].tolist() == [1, 0]
    stsb = read_tsv(get_task("stsb"), "dev", glue)  # last rows: fields starting with a stray '"'
    assert stsb.text_b[-2].startswith('"I had mainly been" is fine')
    assert stsb.text_a[-1].startswith('"What I am really looking for')
    assert stsb.labels.dtype == np.float32 and stsb.labels[0] == 5.0
    cola = read_tsv(get_task("cola"), "train", glue)  # no header; test split has one
    assert cola.text_a[0] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert read_tsv(get_task("cola"), "test", glue).index[:2] == ["0", "1"]


def _mnli_dir(tmp_path, test_data):
    """An MNLI-layout directory (the real column layout; sentences/labels taken from the RTE excerpt, as
    we hold no MNLI text) plus the real AX excerpt, to exercise two dev files and AX predictions."""
    header = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse"
              "\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n")
    rte = read_tsv(get_task("rte"), "train", str(test_data / "glue"))
    mnli = tmp_path / "MNLI"
    mnli.mkdir()
    label = {0: "entailment", 1: "contradiction"}
    for name, rows in (("train.tsv", range(0, 32)), ("dev_matched.tsv", range(32, 48)),
                       ("dev_mismatched.tsv", range(48, 64))):
        with open(mnli / name, "w", encoding="utf-8") as f:
            f.write(header)
            for i in rows:
                y = label[int(rte.labels[i])] if i % 5 else "neutral"
                f.write(f"{i}\t1\t1n\tfiction\t(\t(\t(\t(\t{rte.text_a[i]}\t{rte.text_b[i]}\t{y}\t{y}\n")
    for name in ("test_matched.tsv", "test_mismatched.tsv"):
        with open(mnli / name, "w", encoding="utf-8") as f:
            f.write(header[:header.index("\tlabel1")] + "\n")
            for i in range(10):
                f.write(f"{i}\t1\t1n\tfiction\t(\t(\t(\t(\t{rte.text_a[i]}\t{rte.text_b[i]}\n")
    shutil.copytree(test_data / "glue" / "diagnostic", tmp_path / "diagnostic")
    return tmp_path


def test_mnli_layout_two_dev_files_and_ax(tmp_path, test_data):
    data_dir = str(_mnli_dir(tmp_path, test_data))
    spec = get_task("MNLI")
    matched = read_split(spec, "dev_matched", data_dir)
    mismatched = read_split(spec, "dev_mismatched", data_dir)
    assert len(matched) == len(mismatched) == 16
    assert set(spec.labels[i] for i in matched.labels) == {"entailment", "contradiction", "neutral"}
    ax = read_split(spec, "ax", data_dir)
    assert ax.text_a[0] == "The cat sat on the mat." and ax.labels is None and ax.index[:2] == ["0", "1"]


def test_missing_split_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MRPC.*dev\.tsv"):
        read_tsv(get_task("mrpc"), "dev", str(tmp_path))
    with pytest.raises(ValueError, match="has no split 'dev_matched'"):
        read_tsv(get_task("rte"), "dev_matched", str(tmp_path))


def _write(tmp_path, directory, name, text):
    (tmp_path / directory).mkdir(exist_ok=True)
    (tmp_path / directory / name).write_text(text, encoding="utf-8")
    return str(tmp_path)


def test_malformed_row_names_file_and_line(tmp_path):
    data = _write(tmp_path, "RTE", "dev.tsv",
                  "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two fields\n")
    with pytest.raises(ValueError, match=r"RTE/dev\.tsv:3: malformed row: expected 4 .* got 2"):
        read_tsv(get_task("rte"), "dev", data)
    assert read_tsv(get_task("rte"), "dev", data, skip_malformed_rows=True).text_a == ["a"]
    data = _write(tmp_path, "CoLA", "train.tsv", "gj04\t1\t\tfine.\ngj04\t0\tbad.\n")
    with pytest.raises(ValueError, match=r"CoLA/train\.tsv:2: malformed row"):
        read_tsv(get_task("cola"), "train", data)


def test_label_outside_label_set(tmp_path):
    data = _write(tmp_path, "RTE", "train.tsv",
                  "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tneutral\n")
    with pytest.raises(ValueError, match=r"RTE/train\.tsv:3: label 'neutral' is not in the rte label set"):
        read_tsv(get_task("rte"), "train", data)
    data = _write(tmp_path, "STS-B", "dev.tsv", "sentence1\tsentence2\tscore\na\tb\t4.2\na\tb\tfive\n")
    with pytest.raises(ValueError, match=r"STS-B/dev\.tsv:3: score 'five' is not a number"):
        read_tsv(get_task("stsb"), "dev", data)


def test_missing_column_is_named(tmp_path):
    data = _write(tmp_path, "QNLI", "dev.tsv", "index\tquestion\ttext\tlabel\n0\tq\ts\tentailment\n")
    with pytest.raises(ValueError, match=r"QNLI/dev\.tsv:1: header has no column 'sentence'"):
        read_tsv(get_task("qnli"), "dev", data)


def test_every_task_is_described():
    assert sorted(GLUE_TASKS) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"]
    for spec in GLUE_TASKS.values():
        assert spec.main_metric in spec.metrics
        assert all(spec.splits[s].submission for s in spec.test_splits)
        assert all(spec.splits[s].columns.label is not None for s in ("train", *spec.eval_splits))


def test_tfds_reader_on_locally_prepared_glue(tmp_path, test_data, monkeypatch):
    """tensorflow_datasets' own glue/rte builder prepares the real RTE excerpt locally (its download is
    redirected to tests/data/glue); our reader then reads it with no download and must agree with the
    TSV reader, labels mapped by name."""
    import tensorflow_datasets as tfds

    glue = str(test_data / "glue")
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", lambda self, url: glue)
    tfds.builder("glue/rte", data_dir=str(tmp_path)).download_and_prepare()
    monkeypatch.undo()
    spec = get_task("rte")
    from_tfds = read_split(spec, "dev", str(tmp_path))  # "auto": no RTE/ dir there -> tfds
    from_tsv = read_tsv(spec, "dev", glue)
    order = np.argsort([int(i) for i in from_tfds.index])
    assert [from_tfds.text_a[i] for i in order] == from_tsv.text_a
    assert [from_tfds.text_b[i] for i in order] == from_tsv.text_b
    assert from_tfds.labels[order].tolist() == from_tsv.labels.tolist()
    assert read_split(spec, "test", str(tmp_path)).labels is None
    with pytest.raises(FileNotFoundError, match="not prepared there"):
        read_split(get_task("cola"), "dev", str(tmp_path))
