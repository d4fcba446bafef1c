"""`BertEncoder`: the BERT network as a Keras model with TF-Hub's input and output names."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.config import BertConfig
from bert_keras.layers import BertEmbeddings, Pooler, TransformerBlock, attention_bias
from bert_keras.remat import rematerialized

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@keras.saving.register_keras_serializable(package="bert_keras")
class BertEncoder(keras.Model):
    """Inputs: a dict of int32 [batch, seq] tensors `input_word_ids`, `input_mask`, `input_type_ids`.

    Outputs: a dict with `sequence_output` [batch, seq, hidden], `pooled_output` [batch, hidden] and
    `encoder_outputs`, the list of every transformer block's output (the last equals `sequence_output`).
    """

    def __init__(self, config: BertConfig | dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = BertConfig.from_dict(config)
        self.config = config
        self.embeddings = BertEmbeddings(
            config.vocab_size, config.hidden_size, config.max_position_embeddings, config.type_vocab_size,
            config.initializer_range, config.layer_norm_eps, config.hidden_dropout_prob, name="embeddings")
        self.transformer_blocks = [
            TransformerBlock(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                             config.hidden_act, config.initializer_range, config.hidden_dropout_prob,
                             config.attention_probs_dropout_prob, config.layer_norm_eps,
                             name=f"transformer_block_{i}")
            for i in range(config.num_hidden_layers)
        ]
        self.pooler = Pooler(config.hidden_size, config.initializer_range, name="pooler")

    def build(self, input_shape=None):
        """Creates every weight without running data through the network."""
        self.embeddings.build()
        for block in self.transformer_blocks:
            block.build()
        self.pooler.build()
        self.built = True

    def call(self, inputs: dict[str, tf.Tensor], training=None, rematerialize: bool = False,
             output_positions: tf.Tensor | None = None) -> dict[str, Any]:
        """`rematerialize=True` (training only) recomputes each block's activations in the backward pass
        instead of storing them: less memory, about a third more compute (`bert_keras.remat`).

        With int `output_positions` [batch, P], `sequence_output` (and the last of `encoder_outputs`) is
        [batch, P, hidden], the last layer at those positions only, and the last block computes just them
        and [CLS] (for `pooled_output`, which is unchanged): what pre-training's losses read, for less work.
        """
        missing = [name for name in INPUT_NAMES if name not in inputs]
        if missing:
            raise ValueError(f"BertEncoder inputs are missing {missing}; expected keys {list(INPUT_NAMES)}")
        word_ids = tf.cast(inputs["input_word_ids"], tf.int32)
        type_ids = tf.cast(inputs["input_type_ids"], tf.int32)
        bias = attention_bias(inputs["input_mask"])
        x = self.embeddings(word_ids, type_ids, training=training)
        encoder_outputs = []
        for i, block in enumerate(self.transformer_blocks):
            last = i == len(self.transformer_blocks) - 1
            positions = None
            if last and output_positions is not None:
                cls = tf.zeros_like(output_positions[:, :1], tf.int32)
                positions = tf.concat([cls, tf.cast(output_positions, tf.int32)], 1)
            if rematerialize and training:
                x = rematerialized(block)(x, bias, output_positions=positions)
            else:
                x = block(x, bias, output_positions=positions, training=training)
            encoder_outputs.append(x if positions is None else x[:, 1:])
        return {
            "sequence_output": encoder_outputs[-1],
            "pooled_output": self.pooler(x),
            "encoder_outputs": encoder_outputs,
        }

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # Keras 3 hides layer lists from `tf.train.Checkpoint`; name each block so that
        # `tf.train.Checkpoint(encoder=...)` saves and restores every transformer weight.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children.update({block.name: block for block in self.transformer_blocks})
        return children

    def dummy_inputs(self, batch_size: int = 1, seq_length: int = 8) -> dict[str, tf.Tensor]:
        shape = (batch_size, seq_length)
        return {"input_word_ids": tf.zeros(shape, tf.int32), "input_mask": tf.ones(shape, tf.int32),
                "input_type_ids": tf.zeros(shape, tf.int32)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BertEncoder":
        return cls(**config)
