"""bert_keras: BERT in plain Keras 3 (TensorFlow backend), from raw text to a served model.

The data's path through the package:
  text -> `BertTokenizer` (in-graph WordPiece) -> packed inputs -> `BertEncoder` -> task heads
  -> losses/metrics (`bert_keras.tasks`) -> SavedModel export.
"""

from bert_keras.checkpoints import load_encoder, read_checkpoint, save_encoder
from bert_keras.config import PRESETS, BertConfig, preset
from bert_keras.encoder import BertEncoder
from bert_keras.optimization import WarmupPolynomialDecay, create_optimizer
from bert_keras.tokenizer import BertTokenizer, SegmentPacker

__version__ = "0.1.0"

__all__ = ["BertConfig", "BertEncoder", "BertTokenizer", "PRESETS", "SegmentPacker", "WarmupPolynomialDecay",
           "create_optimizer", "load_encoder", "preset", "read_checkpoint", "save_encoder"]
