"""A bad byte in any task file is reported with its file, line and column, before any training starts."""

import json

import pytest

from bert_keras.text_files import InvalidUtf8Error, open_text, read_text

BAD = b"\xff\xfe"  # never valid UTF-8


def test_read_text_names_line_and_column_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes("sentence\tlabel\ncaf\u00e9 ok\t1\n".encode() + b"ab" + BAD + b"\t0\n")
    with pytest.raises(InvalidUtf8Error, match=r"x\.tsv:3:3: not valid UTF-8 \(bytes b'\\xff"):
        read_text(path)
    with pytest.raises(FileNotFoundError, match="file not found: .*missing.txt"):
        read_text(tmp_path / "missing.txt")


def test_open_text_iterates_like_open(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"\xef\xbb\xbfa\r\nb\rc\nd\xe2\x80\xa8e\n")  # BOM, CRLF, CR, and U+2028 inside a line
    with open(path, encoding="utf-8-sig") as f:
        expected = list(f)
    with open_text(path, encoding="utf-8-sig") as f:
        assert list(f) == expected == ["a\n", "b\n", "c\n", "d\u2028e\n"]


def test_glue_conll_and_squad_readers_name_the_bad_line(tmp_path):
    from bert_keras.tasks.conll.data import read_conll
    from bert_keras.tasks.conll.evaluate import read_predictions
    from bert_keras.tasks.glue.data import read_split
    from bert_keras.tasks.glue.tasks import get_task

    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_bytes(b"sentence\tlabel\ngood film\t1\nbad " + BAD + b"\t0\n")
    with pytest.raises(InvalidUtf8Error, match=r"SST-2/train\.tsv:3:5:"):
        read_split(get_task("sst2"), "train", str(tmp_path))
    conll = tmp_path / "train.txt"
    conll.write_bytes(b"EU B-ORG\nrejects O\n\nGerman" + BAD + b" B-MISC\n")
    with pytest.raises(InvalidUtf8Error, match=r"train\.txt:4:7:"):
        read_conll(conll)
    with pytest.raises(InvalidUtf8Error, match=r"train\.txt:4:7:"):
        read_predictions(conll)
    squad = tmp_path / "dev.json"
    squad.write_bytes(json.dumps({"version": "v2.0", "data": []}).encode()[:-1] + b'\n, "x": "' + BAD + b'"}')
    from bert_keras.tasks.squad.data import read_squad_json

    with pytest.raises(InvalidUtf8Error, match=r"dev\.json:2:9:"):
        read_squad_json(squad)


def test_a_missing_glue_data_dir_is_named(tmp_path):
    from bert_keras.tasks.glue.data import read_split
    from bert_keras.tasks.glue.tasks import get_task

    with pytest.raises(FileNotFoundError, match=r"--data_dir '.*nowhere' does not exist"):
        read_split(get_task("mrpc"), "train", str(tmp_path / "nowhere"))
