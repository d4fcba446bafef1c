"""Base classes of task heads over a `BertEncoder` (GLUE, SQuAD, CoNLL heads).

`EncoderTaskModel` serialises the wrapped encoder in `get_config` and rebuilds it in `from_config`, so a
head subclass only adds its own constructor arguments to the config. `DenseHeadModel` is the head BERT's
classification experiments share (dropout, then one Dense layer over an encoder output).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.finetuning.train_step import GlobalBatchTrainStep
from bert_keras.layers.dropout import Dropout


def _float32(tensor: Any) -> Any:
    dtype = getattr(tensor, "dtype", None)
    if dtype is not None and keras.backend.standardize_dtype(dtype) in ("bfloat16", "float16"):
        return keras.ops.cast(tensor, "float32")
    return tensor


class EncoderTaskModel(GlobalBatchTrainStep, keras.Model):
    """A keras.Model whose first constructor argument is the `encoder` it fine-tunes.

    Its outputs are float32 under any dtype policy: under mixed precision the encoder and head compute in
    bfloat16/float16, but losses, official metrics and serving read float32 logits. Training uses
    `GlobalBatchTrainStep` (accumulation and clipping of the global batch's gradient) once the trainer
    configures it.

    A head that reads only the sequence output sets `uses_pooler = False`: the pooler then gets no gradient,
    so it is left out of the trainable weights (the optimizer neither builds slots for it nor warns that its
    gradients do not exist; Hugging Face's QA and token-classification models drop the pooler likewise). Its
    weights stay in the model and in saved files.
    """

    uses_pooler: bool = True

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def _trained(self, variables: list) -> list:
        if self.uses_pooler:
            return variables
        pooler = {id(v) for v in self.encoder.pooler.weights}
        return [v for v in variables if id(v) not in pooler]

    @property
    def trainable_weights(self) -> list:
        return self._trained(super().trainable_weights)

    @property
    def trainable_variables(self) -> list:
        return self._trained(super().trainable_variables)

    def __call__(self, *args, **kwargs):
        return keras.tree.map_structure(_float32, super().__call__(*args, **kwargs))

    def build(self, input_shape: Any = None) -> None:
        if not self.encoder.built:
            self.encoder.build()
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "EncoderTaskModel":
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


class DenseHeadModel(EncoderTaskModel):
    """`logits` = Dense(dropout(encoder output `encoder_output`)), `units` wide.

    The head of google-research/bert's classifiers and Hugging Face's BertFor{Sequence,Token}Classification:
    dropout at the encoder's hidden_dropout_prob (unless `dropout_rate`), kernel ~ truncated
    normal(initializer_range), zero bias. Subclasses set `encoder_output` ("pooled_output" for one label per
    sequence, "sequence_output" for one per token; `uses_pooler` follows from it) and shape the result in
    `call`.
    """

    encoder_output: str

    @property
    def uses_pooler(self) -> bool:
        return self.encoder_output == "pooled_output"

    def __init__(self, encoder: keras.Model, units: int, dropout_rate: float | None = None, **kwargs):
        super().__init__(encoder, **kwargs)
        config = encoder.config
        self.dropout_rate = config.hidden_dropout_prob if dropout_rate is None else dropout_rate
        self.dropout = Dropout(self.dropout_rate, name="dropout")
        self.classifier = keras.layers.Dense(
            units, name="classifier",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range))

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        self.classifier.build((None, self.encoder.config.hidden_size))

    def logits(self, inputs: dict[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        features = self.encoder(inputs, training=training)[self.encoder_output]
        return self.classifier(self.dropout(features, training=training))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dropout_rate"] = self.dropout_rate
        return config
