"""Activation functions by the names `BertConfig.hidden_act` uses."""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf


def _normal_cdf(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * (1.0 + tf.math.erf(x * tf.cast(1.0 / math.sqrt(2.0), x.dtype)))


def gelu(x: tf.Tensor) -> tf.Tensor:
    """Exact GELU, x * Phi(x) with the erf form (Hugging Face's "gelu"), in plain TF ops: what inference
    graphs and exports run (TF Serving runs without XLA unless told otherwise)."""
    return x * _normal_cdf(x)


@tf.custom_gradient
def gelu_fused(x: tf.Tensor):
    """`gelu` for training graphs: forward and backward are one XLA-compiled pass each, with the derivative
    Phi(x) + x phi(x) written out and Phi(x) recomputed from x rather than kept: faster than the forward in
    plain TF ops on CPU (micro-benchmark in `bench/results/RESULTS.md`, "Training kernels").
    `get_activation(name, training=True)` picks this one.
    """
    return _gelu_forward(x), lambda dy: _gelu_gradient_from_input(dy, x)


_gelu_forward = tf.function(gelu, jit_compile=True, reduce_retracing=True)


@tf.function(jit_compile=True, reduce_retracing=True)
def _gelu_gradient_from_input(dy: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    pdf = tf.exp(tf.square(x) * tf.cast(-0.5, x.dtype)) * tf.cast(1.0 / math.sqrt(2.0 * math.pi), x.dtype)
    return dy * (_normal_cdf(x) + x * pdf)


def gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    """The tanh approximation used by Google's TF1 BERT (its "gelu")."""
    c = tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + tf.cast(0.044715, x.dtype) * x * x * x)))


_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "tanh": tf.tanh,
}


# Same functions, XLA-fused, for graphs that only ever train.
_TRAINING_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {"gelu": gelu_fused}


def get_activation(name: str, training: bool | None = False) -> Callable[[tf.Tensor], tf.Tensor]:
    """The activation called `name`; in training (`training` true) an XLA-fused equal where there is one."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
    return _TRAINING_ACTIVATIONS.get(name, _ACTIVATIONS[name]) if training else _ACTIVATIONS[name]
