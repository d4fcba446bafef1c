"""`EncoderTaskModel`: base class of task heads over a `BertEncoder` (GLUE, SQuAD, CoNLL heads).

Serialises the wrapped encoder in `get_config` and rebuilds it in `from_config`, so a head subclass
only adds its own constructor arguments to the config.
"""

from __future__ import annotations

from typing import Any

import keras


class EncoderTaskModel(keras.Model):
    """A keras.Model whose first constructor argument is the `encoder` it fine-tunes."""

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
