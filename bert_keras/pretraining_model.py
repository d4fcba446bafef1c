"""`BertPretrainingModel` (encoder + MLM and NSP heads) and BERT's pre-training losses and metrics.

Losses are computed from per-batch SUMS (`pretraining_statistics`) so that a distributed step can divide
by the GLOBAL number of masked tokens and sequences: N replicas then compute exactly the gradient one
device computes on the whole global batch.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.config import BertConfig
from bert_keras.encoder import BertEncoder
from bert_keras.heads import MaskedLMHead, NextSentenceHead

# The order of the statistics vector returned by `pretraining_statistics`.
STATISTICS = ("mlm_loss_sum", "mlm_weight_sum", "mlm_correct", "nsp_loss_sum", "nsp_count", "nsp_correct")


@keras.saving.register_keras_serializable(package="bert_keras")
class BertPretrainingModel(keras.Model):
    """Inputs: the encoder's three inputs plus int32 `masked_lm_positions` [batch, P].

    Outputs: float32 `mlm_logits` [batch, P, vocab] and `nsp_logits` [batch, 2].
    `remat=True` recomputes each transformer block's activations in the backward pass instead of
    storing them (less memory, about a third more compute; exact also with dropout, see `bert_keras.remat`).
    """

    def __init__(self, config: BertConfig | dict[str, Any], encoder: BertEncoder | None = None,
                 remat: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = BertConfig.from_dict(config)
        self.config = config
        self.remat = remat
        if encoder is None:
            encoder = BertEncoder(config, name="encoder")
        elif encoder.config != config:
            raise ValueError(f"encoder config {encoder.config} differs from the model config {config}")
        self.encoder = encoder
        self.masked_lm_head = MaskedLMHead(config.vocab_size, config.hidden_size, config.hidden_act,
                                           config.initializer_range, config.layer_norm_eps,
                                           name="masked_lm_head")
        self.next_sentence_head = NextSentenceHead(config.hidden_size, config.initializer_range,
                                                   name="next_sentence_head")

    def build(self, input_shape=None):
        """Creates every weight (encoder and heads) without running data through the network."""
        self.encoder.build()
        self.masked_lm_head.build()
        self.next_sentence_head.build()
        self.built = True

    def call(self, inputs: dict[str, tf.Tensor], training=None) -> dict[str, tf.Tensor]:
        if "masked_lm_positions" not in inputs:
            raise ValueError("BertPretrainingModel inputs are missing 'masked_lm_positions'")
        # The last block computes only the masked positions and [CLS]: no loss reads the other rows.
        outputs = self.encoder(inputs, training=training, rematerialize=self.remat,
                               output_positions=inputs["masked_lm_positions"])
        mlm_logits = self.masked_lm_head(outputs["sequence_output"], None,
                                         self.encoder.embeddings.word_embeddings, training=training)
        nsp_logits = self.next_sentence_head(outputs["pooled_output"])
        return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(config=self.config.to_dict(), remat=self.remat)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BertPretrainingModel":
        return cls(**config)


def _hits(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """1.0 where the label's logit is the largest (argmax == label up to exact ties). Cheaper than argmax
    over 30k words: the row max is the one the softmax cross-entropy computes anyway."""
    label_logits = tf.gather(logits, labels, batch_dims=len(labels.shape))
    return tf.cast(label_logits >= tf.reduce_max(logits, -1), tf.float32)


@tf.function(jit_compile=True)
def _softmax_statistics(logits: tf.Tensor, labels: tf.Tensor):
    row_max = tf.reduce_max(logits, -1)
    row_sum = tf.reduce_sum(tf.exp(logits - row_max[..., None]), -1)
    label_logits = tf.gather(logits, labels, batch_dims=len(labels.shape))
    losses = tf.math.log(row_sum) + row_max - label_logits
    return losses, tf.cast(label_logits >= row_max, tf.float32), row_max, row_sum


@tf.function(jit_compile=True)
def _softmax_cross_entropy_gradient(d_losses, logits, labels, row_max, row_sum):
    probabilities = tf.exp(logits - row_max[..., None]) / row_sum[..., None]
    one_hot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    return (probabilities - one_hot) * d_losses[..., None]


@tf.custom_gradient
def _cross_entropy_and_hits(logits: tf.Tensor, labels: tf.Tensor):
    """Sparse softmax cross-entropy and `_hits` over the vocabulary in one XLA-fused pass each way.

    TF's `sparse_softmax_cross_entropy_with_logits` writes the whole [rows, vocab] softmax gradient in the
    forward pass and the backward multiplies it again; here the forward keeps only each row's max and sum and
    the backward recomputes the softmax in the same fused pass that forms the gradient, which made the whole
    BERT-mini training step faster (in-process A/B, `bench/results/RESULTS.md`, "Training kernels";
    whole step: `bench/pretrain_speed.py`).
    """
    losses, hits, row_max, row_sum = _softmax_statistics(logits, labels)

    def gradient(d_losses, d_hits):
        return _softmax_cross_entropy_gradient(d_losses, logits, labels, row_max, row_sum), None

    return (losses, hits), gradient


def pretraining_statistics(outputs: dict[str, tf.Tensor], features: dict[str, tf.Tensor]) -> tf.Tensor:
    """float32 vector of batch SUMS in `STATISTICS` order: weighted MLM loss, weight total, correct
    masked predictions (weighted), NSP loss, NSP example count, correct NSP predictions."""
    mlm_logits = outputs["mlm_logits"]
    ids = tf.cast(features["masked_lm_ids"], tf.int32)
    weights = tf.cast(features["masked_lm_weights"], tf.float32)
    mlm_losses, mlm_hits = _cross_entropy_and_hits(mlm_logits, ids)

    nsp_logits = outputs["nsp_logits"]
    labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
    nsp_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=nsp_logits)
    nsp_hits = _hits(nsp_logits, labels)
    return tf.stack([
        tf.reduce_sum(mlm_losses * weights), tf.reduce_sum(weights), tf.reduce_sum(mlm_hits * weights),
        tf.reduce_sum(nsp_losses), tf.cast(tf.size(labels), tf.float32), tf.reduce_sum(nsp_hits),
    ])


def summarize_statistics(stats) -> dict[str, float]:
    """Summed statistics -> mean `mlm_loss`, `mlm_accuracy`, `nsp_loss`, `nsp_accuracy`."""
    s = dict(zip(STATISTICS, [float(v) for v in stats]))
    mlm_n, nsp_n = max(s["mlm_weight_sum"], 1e-9), max(s["nsp_count"], 1e-9)
    return {"mlm_loss": s["mlm_loss_sum"] / mlm_n, "mlm_accuracy": s["mlm_correct"] / mlm_n,
            "nsp_loss": s["nsp_loss_sum"] / nsp_n, "nsp_accuracy": s["nsp_correct"] / nsp_n}


def pretraining_losses(outputs: dict[str, tf.Tensor], features: dict[str, tf.Tensor]
                       ) -> tuple[tf.Tensor, tf.Tensor]:
    """(masked-LM loss averaged over masked tokens, NSP loss averaged over sequences) of one batch;
    their sum is BERT's pre-training loss (and Hugging Face `BertForPreTraining`'s)."""
    stats = pretraining_statistics(outputs, features)
    return stats[0] / tf.maximum(stats[1], 1e-9), stats[3] / tf.maximum(stats[4], 1.0)
