"""SQuAD head: per-token start and end logits from BERT's sequence output."""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.finetuning.task_model import EncoderTaskModel


@keras.saving.register_keras_serializable(package="bert_keras")
class SquadModel(EncoderTaskModel):
    """{"start_logits", "end_logits"} [batch, seq] = Dense(2)(sequence_output), split in two.

    The head of google-research/bert `run_squad.py` (`cls/squad/output_weights`) and Hugging Face's
    BertForQuestionAnswering (`qa_outputs`): one H->2 projection, weights ~ truncated normal
    (initializer_range), zero bias, no dropout on top of the encoder's own. Padding is not masked here;
    post-processing only ever picks context tokens.
    """

    uses_pooler = False

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(encoder, **kwargs)
        self.span_logits = keras.layers.Dense(
            2, name="span_logits",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=encoder.config.initializer_range))

    def build(self, input_shape=None):
        super().build(input_shape)
        self.span_logits.build((None, None, self.encoder.config.hidden_size))

    def call(self, inputs: dict[str, tf.Tensor], training=None) -> dict[str, tf.Tensor]:
        sequence = self.encoder(inputs, training=training)["sequence_output"]
        logits = self.span_logits(sequence)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
