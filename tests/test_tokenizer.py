"""BertTokenizer / SegmentPacker: exactness against the original BERT tokenizer, offsets, packing, saving.

References: HF `tokenizers.BertWordPieceTokenizer` (Rust port of the original) on real text, and, because HF
deviates from google-research `tokenization.py` on a few inputs (final sigma, private-use characters, literal
special tokens; see tests/data/tokenizer/hard.jsonl), a direct port of the original's logic below.
"""

import gzip
import json
import random
import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras import BertTokenizer, SegmentPacker

SOURCES = ("squad", "glue", "conll2003", "gutenberg", "wikitext")


# -- google-research/bert tokenization.py, ported line for line (the independent reference) ----------------
def _is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf")


def _is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_chinese_char(cp):
    return any(
        lo <= cp <= hi
        for lo, hi in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                       (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    )


def _clean_and_normalize(text, lower):
    text = "".join(
        " " if _is_whitespace(c) else c for c in text if not (ord(c) in (0, 0xFFFD) or _is_control(c))
    )
    if lower:
        text = text.lower()
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return text


def original_basic_tokenize(text, lower):
    text = _clean_and_normalize(text, lower=False)
    text = "".join(f" {c} " if _is_chinese_char(ord(c)) else c for c in text)
    words = []
    for token in text.split():
        token = _clean_and_normalize(token, lower)
        current = None
        for c in token:
            if _is_punctuation(c):
                words.append(c)
                current = None
            elif current is None:
                words.append(c)
                current = len(words) - 1
            else:
                words[current] += c
    return words


def original_wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = ("##" if start > 0 else "") + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def original_tokenize(text, lower, vocab):
    return [p for w in original_basic_tokenize(text, lower) for p in original_wordpiece(w, vocab)]


def original_truncate_seq_pair(tokens_a, tokens_b, max_length):
    while len(tokens_a) + len(tokens_b) > max_length:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocab_files(minilm_dir, test_data, tmp_path_factory):
    cased = tmp_path_factory.mktemp("vocab") / "cased-vocab.txt"
    cased.write_bytes(gzip.decompress((test_data / "tokenizer" / "bert-base-cased-vocab.txt.gz").read_bytes()))
    return {"uncased": str(minilm_dir / "vocab.txt"), "cased": str(cased)}


@pytest.fixture(scope="module")
def tokenizers(vocab_files):
    return {casing: BertTokenizer(path, lower_case=casing == "uncased") for casing, path in vocab_files.items()}


@pytest.fixture(scope="module")
def real_lines(test_data):
    return {
        name: [json.loads(line) for line in open(test_data / "tokenizer" / f"{name}.jsonl", encoding="utf-8")]
        for name in SOURCES
    }


@pytest.fixture(scope="module")
def hard_lines(test_data):
    return [json.loads(line) for line in open(test_data / "tokenizer" / "hard.jsonl", encoding="utf-8")]


def _hf(vocab_file, lower):
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(vocab_file, lowercase=lower, strip_accents=lower, clean_text=True,
                                  handle_chinese_chars=True)


def _tokens(tokenizer, ragged):
    return [[tokenizer.vocab[i] for i in row] for row in ragged.to_list()]


# -- exactness -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("casing", ["uncased", "cased"])
def test_real_text_matches_hf_and_original(casing, tokenizers, vocab_files, real_lines):
    tokenizer = tokenizers[casing]
    lower = casing == "uncased"
    hf = _hf(vocab_files[casing], lower)
    vocab = set(tokenizer.vocab)
    for source, lines in real_lines.items():
        ours = tokenizer.tokenize(lines).to_list()
        hf_ids = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
        assert sum(len(x) for x in ours) > 1000
        for line, got, want in zip(lines, ours, hf_ids):
            assert got == want, f"{casing}/{source}: {line!r}"
        ported = [[tokenizer.token_to_id(t) for t in original_tokenize(line, lower, vocab)] for line in lines]
        assert ours == ported, f"{casing}/{source} differs from the ported original"


@pytest.mark.parametrize("casing", ["uncased", "cased"])
def test_hard_lines_match_original(casing, tokenizers, vocab_files, hard_lines):
    tokenizer = tokenizers[casing]
    lower = casing == "uncased"
    vocab = set(tokenizer.vocab)
    texts = [h["text"] for h in hard_lines]
    ours = _tokens(tokenizer, tokenizer.tokenize(texts))
    for text, got in zip(texts, ours):
        assert got == original_tokenize(text, lower, vocab), repr(text)
    # HF agrees everywhere except the documented deviations (which shows they are HF's, not ours).
    hf = _hf(vocab_files[casing], lower)
    for h, got in zip(hard_lines, tokenizer.tokenize(texts).to_list()):
        if h["hf_differs"] is None:
            assert got == hf.encode(h["text"], add_special_tokens=False).ids, repr(h["text"])
    if lower:
        assert _tokens(tokenizer, tokenizer.tokenize(["ΟΔΟΣ ½ ß ﬁ İ", "ΑΣ'Β"])) == [
            ["ο", "##δ", "##ος", "½", "ß", "ﬁ", "i"], ["α", "##σ", "'", "β"]]


def test_specials_and_vocab_accessors(tokenizers):
    tok = tokenizers["uncased"]
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
    assert tok.vocab_size == 30522 and tok.token_to_id("hello") == 7592 and tok.id_to_token(7592) == "hello"
    with pytest.raises(KeyError, match="notatoken"):
        tok.token_to_id("notatoken")


def test_tokenize_words_and_presplit_words(tokenizers, real_lines):
    tok = tokenizers["uncased"]
    vocab = set(tok.vocab)
    lines = real_lines["squad"][:40] + [""]
    words = tok.tokenize_words(lines)
    assert words.merge_dims(1, 2).to_list() == tok.tokenize(lines).to_list()
    for line, row in zip(lines, words.to_list()):
        basic = original_basic_tokenize(line, True)
        assert [[tok.vocab[i] for i in w] for w in row] == [original_wordpiece(w, vocab) for w in basic]
    # CoNLL-style pre-split words: each word keeps its own pieces.
    conll = [line.split(" ") for line in real_lines["conll2003"][:30]]
    nested = tok.tokenize(tf.ragged.constant(conll))
    assert nested.shape.rank == 3
    flat = tok.tokenize([w for sentence in conll for w in sentence]).to_list()
    assert [w for row in nested.to_list() for w in row] == flat
    assert [len(row) for row in nested.to_list()] == [len(sentence) for sentence in conll]
    # Scalars give unbatched results.
    np.testing.assert_array_equal(tok.tokenize("Hello world").numpy(), [7592, 2088])


@pytest.mark.parametrize("casing", ["uncased", "cased"])
def test_offsets_map_back_to_original_text(casing, tokenizers, real_lines, hard_lines):
    tok = tokenizers[casing]
    lower = casing == "uncased"
    lines = real_lines["squad"][:60] + real_lines["wikitext"][:10] + [h["text"] for h in hard_lines]
    ids, starts, ends = tok.tokenize_with_offsets(lines)
    assert ids.to_list() == tok.tokenize(lines).to_list()
    for line, row_ids, row_starts, row_ends in zip(lines, ids.to_list(), starts.to_list(), ends.to_list()):
        data = line.encode("utf-8")
        assert all(0 <= s < e <= len(data) for s, e in zip(row_starts, row_ends)), repr(line)
        assert row_starts == sorted(row_starts) and row_ends == sorted(row_ends)
        # Pieces sharing one span come from one original character (e.g. a decomposed Hangul syllable).
        groups = {}
        for i, s, e in zip(row_ids, row_starts, row_ends):
            groups.setdefault((s, e), []).append(tok.vocab[i])
        for (s, e), pieces in groups.items():
            if pieces != ["[UNK]"]:
                # (A span normalized on its own loses final-sigma context, so sigma forms are folded.)
                span = _clean_and_normalize(data[s:e].decode("utf-8"), lower).replace("ς", "σ")
                text = "".join(p[2:] if p.startswith("##") else p for p in pieces).replace("ς", "σ")
                assert span == text, (line, s, e)
    # A SQuAD-style lookup: the pieces inside an answer's byte span spell the answer.
    context = "The Normans (Norman: Nourmands; French: Normands) gave their name to Normandy, a région in France."
    answer = "Normandy, a région"
    a_start = len(context[: context.index(answer)].encode())
    a_end = a_start + len(answer.encode())
    ids, starts, ends = tok.tokenize_with_offsets(context)
    inside = ids.numpy()[(starts.numpy() >= a_start) & (ends.numpy() <= a_end)]
    expected = "normandy , a region" if lower else "Normandy , a région"
    assert tok.detokenize(inside).numpy().decode() == expected


def test_detokenize(tokenizers, real_lines):
    tok = tokenizers["uncased"]
    lines = [line for line in real_lines["gutenberg"][:100]]
    text = tok.detokenize(tok.tokenize(lines)).numpy()
    for line, got in zip(lines, text):
        if "[UNK]" not in got.decode():
            assert got.decode() == " ".join(original_basic_tokenize(line, True))
    assert tok.detokenize(tok.tokenize_words(["unaffable hello"])).numpy()[0] == b"unaffable hello"


# -- packing -------------------------------------------------------------------------------------------------
def test_packer_truncation_matches_original():
    rng = random.Random(0)
    seq_length = 16
    packer = SegmentPacker(seq_length, cls_id=101, sep_id=102, pad_id=0)
    pairs = [(rng.randint(0, 25), rng.randint(0, 25)) for _ in range(300)] + [(0, 0), (13, 0), (0, 13), (7, 6)]
    a = tf.ragged.constant([list(range(1000, 1000 + la)) for la, _ in pairs], dtype=tf.int32)
    b = tf.ragged.constant([list(range(2000, 2000 + lb)) for _, lb in pairs], dtype=tf.int32)
    out = {k: v.numpy() for k, v in packer([a, b]).items()}
    for row, (la, lb) in enumerate(pairs):
        tokens_a, tokens_b = list(range(1000, 1000 + la)), list(range(2000, 2000 + lb))
        original_truncate_seq_pair(tokens_a, tokens_b, seq_length - 3)
        want = [101] + tokens_a + [102] + tokens_b + [102]
        types = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
        pad = seq_length - len(want)
        np.testing.assert_array_equal(out["input_word_ids"][row], want + [0] * pad)
        np.testing.assert_array_equal(out["input_type_ids"][row], types + [0] * pad)
        np.testing.assert_array_equal(out["input_mask"][row], [1] * len(want) + [0] * pad)
    single = packer([a])
    for row, (la, _) in enumerate(pairs):
        n = min(la, seq_length - 2)
        want = [101] + list(range(1000, 1000 + n)) + [102]
        np.testing.assert_array_equal(single["input_word_ids"][row].numpy(), want + [0] * (seq_length - len(want)))
    assert all(v.dtype == tf.int32 for v in single.values())


def test_tf_data_pipeline(tokenizers, real_lines):
    tok = tokenizers["uncased"]
    packer = SegmentPacker(32, tok.cls_id, tok.sep_id, tok.pad_id)
    questions, contexts = real_lines["squad"][:8], real_lines["squad"][8:16]
    # Per-example map (scalar strings -> 1-D ids -> [seq_length] features), checked against eager batches.
    dataset = tf.data.Dataset.from_tensor_slices((questions, contexts)).map(
        lambda q, c: packer([tok(q), tok(c)])).batch(4)
    eager = packer([tok(questions), tok(contexts)])
    got = {k: np.concatenate([b[k].numpy() for b in dataset]) for k in eager}
    for k in eager:
        np.testing.assert_array_equal(got[k], eager[k].numpy())


# -- serialization -------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="test_tokenizer")
class _Preprocessor(keras.Model):
    """Text -> packed inputs, to check `.keras` saving of the two layers inside a model."""

    def __init__(self, tokenizer, packer, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer, self.packer = tokenizer, packer

    def call(self, text):
        return self.packer([self.tokenizer(text)])

    def get_build_config(self):
        return None

    def get_config(self):
        return {**super().get_config(), "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "packer": keras.saving.serialize_keras_object(self.packer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        tokenizer = keras.saving.deserialize_keras_object(config.pop("tokenizer"))
        packer = keras.saving.deserialize_keras_object(config.pop("packer"))
        return cls(tokenizer, packer, **config)


def test_config_keras_and_savedmodel_round_trip(vocab_files, real_lines, tmp_path):
    vocab_copy = tmp_path / "vocab.txt"
    vocab_copy.write_bytes(open(vocab_files["cased"], "rb").read())
    tok = BertTokenizer(str(vocab_copy), lower_case=False)
    packer = SegmentPacker(24, tok.cls_id, tok.sep_id, tok.pad_id)
    lines = real_lines["conll2003"][:16]
    want_ids = tok.tokenize(lines).to_list()
    want = {k: v.numpy() for k, v in packer([tok(lines)]).items()}
    vocab_copy.unlink()  # the vocab must travel with the layer from here on

    config = json.loads(json.dumps(tok.get_config()))
    clone = BertTokenizer.from_config(config)
    assert clone.lower_case is False and clone.tokenize(lines).to_list() == want_ids
    assert SegmentPacker.from_config(packer.get_config()).get_config() == packer.get_config()

    model = _Preprocessor(tok, packer)
    model.save(tmp_path / "pre.keras")
    loaded = keras.models.load_model(tmp_path / "pre.keras")
    for k, v in loaded(tf.constant(lines)).items():
        np.testing.assert_array_equal(v.numpy(), want[k])

    module = tf.Module()
    module.tokenizer, module.packer = tok, packer
    module.serve = tf.function(lambda text: packer([tok(text)]), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    for k, v in restored.serve(tf.constant(lines)).items():
        np.testing.assert_array_equal(v.numpy(), want[k])


# -- errors --------------------------------------------------------------------------------------------------
def test_vocab_errors(tmp_path):
    missing = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nope/vocab.txt"):
        BertTokenizer(str(missing))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        BertTokenizer(str(empty))
    partial = tmp_path / "partial.txt"
    partial.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"partial.txt lacks the special tokens \['\[CLS\]', '\[SEP\]'\]"):
        BertTokenizer(str(partial))
    with pytest.raises(ValueError, match="seq_length"):
        SegmentPacker(2, cls_id=101, sep_id=102)
