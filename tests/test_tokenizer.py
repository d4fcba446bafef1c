"""Tokenizer tests (first cut; grows below)."""

import numpy as np
import tensorflow as tf

from bert_keras import BertTokenizer, SegmentPacker


def test_tokenize_matches_hf_on_sentences(minilm_dir):
    from tokenizers import BertWordPieceTokenizer

    vocab = str(minilm_dir / "vocab.txt")
    lines = ["Hello, World! naïve café", "Straße ½ ﬁ 中文 İstanbul", "don't stop-believing..."]
    ours = BertTokenizer(vocab, lower_case=True).tokenize(lines).to_list()
    hf = BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=True)
    assert ours == [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]


def test_packer_shapes(minilm_dir):
    tok = BertTokenizer(str(minilm_dir / "vocab.txt"))
    packer = SegmentPacker(8, tok.cls_id, tok.sep_id, tok.pad_id)
    out = packer([tok.tokenize(["a b c d e f"]), tok.tokenize(["x"])])
    np.testing.assert_array_equal(out["input_type_ids"].numpy()[0], [0, 0, 0, 0, 0, 0, 1, 1])
    assert out["input_word_ids"].dtype == tf.int32
