"""BERT's pooler: a tanh dense layer over the [CLS] position, feeding NSP and sentence classifiers."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="bert_keras")
class Pooler(keras.layers.Layer):
    def __init__(self, hidden_size: int, initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            hidden_size, activation="tanh", name="dense",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range))

    def build(self, input_shape=None):
        self.dense.build((None, self.hidden_size))
        super().build(input_shape)

    def call(self, sequence_output):
        return self.dense(sequence_output[:, 0, :])

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
        return config
