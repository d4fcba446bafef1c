"""Activation rematerialization of one layer call that stays exact with dropout.

`tf.recompute_grad` stores only a call's inputs and runs the call again in the backward pass. Keras'
dropout draws its masks from stateful seed generators, so a plain re-run would draw NEW masks and the
gradient would belong to a different network than the forward pass. Here the generators' states are passed
into the recomputed function and restored at its start, so the re-run draws exactly the forward's masks.
(Keras' own `RematScope` does not do this, and under `tf.function` it also fails on the `training=`
keyword argument.)
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf


def _seed_generators(layer: keras.layers.Layer) -> list:
    return [sub.seed_generator for sub in layer._flatten_layers(include_self=True)
            if isinstance(sub, keras.layers.Dropout) and getattr(sub, "seed_generator", None) is not None]


def rematerialized(layer: keras.layers.Layer) -> Callable[..., tf.Tensor]:
    """`layer(*tensors, training=True, **constants)` whose activations are recomputed in the backward pass
    instead of being kept; `tensors` are what gradients flow to, `constants` (e.g. int positions) are not."""
    generators = _seed_generators(layer)

    def call(*tensors, **constants):
        # The states as they are before the forward pass; the re-run starts from them again.
        states = [tf.identity(generator.state.value) for generator in generators]

        @tf.recompute_grad
        def run(*inputs):
            for generator, state in zip(generators, states):
                generator.state.assign(state)
            return layer(*inputs, training=True, **constants)

        return run(*tensors)

    return call
