"""The encoder's building blocks: embeddings -> transformer blocks -> pooler."""

from bert_keras.layers.activations import gelu, gelu_fused, gelu_tanh, get_activation
from bert_keras.layers.attention import SelfAttention, attention_bias
from bert_keras.layers.dropout import Dropout
from bert_keras.layers.embeddings import BertEmbeddings
from bert_keras.layers.layer_norm import LayerNorm
from bert_keras.layers.pooler import Pooler
from bert_keras.layers.transformer import TransformerBlock, gather_positions

__all__ = ["BertEmbeddings", "Dropout", "LayerNorm", "Pooler", "SelfAttention", "TransformerBlock", "attention_bias",
           "gather_positions", "gelu", "gelu_fused", "gelu_tanh", "get_activation"]
