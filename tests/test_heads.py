"""Pre-training heads and losses against Hugging Face `BertForPreTraining` (an independent implementation)."""

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.config import BertConfig
from bert_keras.heads import MaskedLMHead, NextSentenceHead
from bert_keras.pretraining_model import BertPretrainingModel, _cross_entropy_and_hits, pretraining_losses

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIG = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)


def _hf_model(config: BertConfig):
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**{k: v for k, v in config.to_hf_dict().items()
                                           if k not in ("architectures", "model_type")})
    model = transformers.BertForPreTraining(hf_config).eval()
    with torch.no_grad():  # HF initialises biases and LayerNorms trivially; randomise them all.
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def _copy_hf_weights(hf, model: BertPretrainingModel) -> None:
    """Test-local map of HF parameter names onto our layers (independent of bert_keras.checkpoints)."""
    sd = {k: v.detach().numpy() for k, v in hf.state_dict().items()}

    def dense(layer, prefix):
        layer.kernel.assign(sd[prefix + ".weight"].T)
        layer.bias.assign(sd[prefix + ".bias"])

    def norm(layer, prefix):
        layer.gamma.assign(sd[prefix + ".weight"])
        layer.beta.assign(sd[prefix + ".bias"])

    emb = model.encoder.embeddings
    emb.word_embeddings.assign(sd["bert.embeddings.word_embeddings.weight"])
    emb.position_embeddings.assign(sd["bert.embeddings.position_embeddings.weight"])
    emb.token_type_embeddings.assign(sd["bert.embeddings.token_type_embeddings.weight"])
    norm(emb.layer_norm, "bert.embeddings.LayerNorm")
    for i, block in enumerate(model.encoder.transformer_blocks):
        p = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            dense(getattr(block.attention, name), p + "attention.self." + name)
        dense(block.attention.output_dense, p + "attention.output.dense")
        norm(block.attention_layer_norm, p + "attention.output.LayerNorm")
        dense(block.intermediate, p + "intermediate.dense")
        dense(block.output_dense, p + "output.dense")
        norm(block.output_layer_norm, p + "output.LayerNorm")
    dense(model.encoder.pooler.dense, "bert.pooler.dense")
    dense(model.masked_lm_head.transform, "cls.predictions.transform.dense")
    norm(model.masked_lm_head.layer_norm, "cls.predictions.transform.LayerNorm")
    model.masked_lm_head.output_bias.assign(sd["cls.predictions.bias"])
    dense(model.next_sentence_head.dense, "cls.seq_relationship")


def _batch(rng, batch=3, seq=16, predictions=5):
    ids = rng.integers(5, CONFIG.vocab_size, size=(batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[0, 11:] = 0
    mask[2, 7:] = 0
    ids[mask == 0] = 0
    types = np.zeros((batch, seq), np.int32)
    types[:, 5:] = 1
    types[mask == 0] = 0
    positions = np.zeros((batch, predictions), np.int32)
    weights = np.zeros((batch, predictions), np.float32)
    n_real = [5, 3, 2]
    for b in range(batch):
        positions[b, :n_real[b]] = np.sort(rng.choice(np.arange(1, int(mask[b].sum())), n_real[b], False))
        weights[b, :n_real[b]] = 1.0
    labels = rng.integers(5, CONFIG.vocab_size, size=(batch, predictions)).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types,
            "masked_lm_positions": positions, "masked_lm_ids": labels * (weights > 0),
            "masked_lm_weights": weights, "next_sentence_labels": np.array([0, 1, 1], np.int32)}


def _hf_inputs(features) -> dict:
    return {"input_ids": torch.tensor(features["input_word_ids"], dtype=torch.long),
            "attention_mask": torch.tensor(features["input_mask"], dtype=torch.long),
            "token_type_ids": torch.tensor(features["input_type_ids"], dtype=torch.long)}


def _hf_mlm_labels(features) -> np.ndarray:
    """HF takes MLM labels over the full sequence, -100 where nothing is predicted."""
    labels = np.full(features["input_word_ids"].shape, -100, np.int64)
    for b, (positions, ids, weights) in enumerate(zip(features["masked_lm_positions"],
                                                      features["masked_lm_ids"], features["masked_lm_weights"])):
        labels[b, positions[weights > 0]] = ids[weights > 0]
    return labels


def test_losses_match_hugging_face_bert_for_pretraining():
    hf = _hf_model(CONFIG)
    model = BertPretrainingModel(CONFIG)
    model.build()
    _copy_hf_weights(hf, model)
    features = _batch(np.random.default_rng(0))

    mlm_loss, nsp_loss = pretraining_losses(model(features, training=False), features)

    labels = _hf_mlm_labels(features)
    with torch.no_grad():
        out = hf(**_hf_inputs(features))
        ce = torch.nn.functional.cross_entropy
        hf_mlm = ce(out.prediction_logits.reshape(-1, CONFIG.vocab_size), torch.tensor(labels).reshape(-1),
                    ignore_index=-100).item()
        hf_nsp = ce(out.seq_relationship_logits,
                    torch.tensor(features["next_sentence_labels"], dtype=torch.long)).item()
        hf_total = hf(**_hf_inputs(features), labels=torch.tensor(labels),
                      next_sentence_label=torch.tensor(features["next_sentence_labels"],
                                                       dtype=torch.long)).loss.item()
    assert abs(float(mlm_loss) - hf_mlm) < 1e-4
    assert abs(float(nsp_loss) - hf_nsp) < 1e-4
    assert abs(float(mlm_loss + nsp_loss) - hf_total) < 1e-4
    assert hf_mlm > 1.0  # random weights: a real loss, not a trivially zero one


@pytest.mark.parametrize("training", [False, True])
def test_loss_gradients_match_hugging_face_bert_for_pretraining(training):
    """The MLM cross-entropy has a written-out gradient (XLA-fused); every parameter's gradient of the
    pre-training loss must still equal PyTorch autograd's through HF's model. With `training=True` (dropout
    is 0 here) the step runs every training-only kernel too: fused LayerNorm, GELU, attention and logits."""
    hf = _hf_model(CONFIG)
    model = BertPretrainingModel(CONFIG)
    model.build()
    _copy_hf_weights(hf, model)
    features = _batch(np.random.default_rng(2))
    hf(**_hf_inputs(features), labels=torch.tensor(_hf_mlm_labels(features)),
       next_sentence_label=torch.tensor(features["next_sentence_labels"], dtype=torch.long)).loss.backward()
    hf_grads = {name: p.grad.numpy() for name, p in hf.named_parameters()}

    with tf.GradientTape() as tape:
        mlm_loss, nsp_loss = pretraining_losses(model(features, training=training), features)
        loss = mlm_loss + nsp_loss
    heads, block = model.masked_lm_head, model.encoder.transformer_blocks[0]
    pairs = [  # ours, HF name (HF's kernels are transposed)
        (model.encoder.embeddings.word_embeddings, "bert.embeddings.word_embeddings.weight"),  # tied: both uses
        (heads.output_bias, "cls.predictions.bias"),
        (heads.transform.kernel, "cls.predictions.transform.dense.weight"),
        (heads.layer_norm.gamma, "cls.predictions.transform.LayerNorm.weight"),
        (block.attention.query.kernel, "bert.encoder.layer.0.attention.self.query.weight"),
        (block.attention.key.kernel, "bert.encoder.layer.0.attention.self.key.weight"),
        (block.attention.value.bias, "bert.encoder.layer.0.attention.self.value.bias"),
        (model.encoder.transformer_blocks[-1].attention.query.kernel,  # the last block: masked rows only
         "bert.encoder.layer.1.attention.self.query.weight"),
        (block.output_layer_norm.beta, "bert.encoder.layer.0.output.LayerNorm.bias"),
        (model.next_sentence_head.dense.kernel, "cls.seq_relationship.weight"),
    ]
    grads = tape.gradient(loss, [variable for variable, _ in pairs])
    for (variable, name), grad in zip(pairs, grads):
        expected = hf_grads[name].T if len(variable.shape) == 2 and "embeddings" not in name else hf_grads[name]
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), expected, atol=2e-6, rtol=1e-4,
                                   err_msg=name)
        assert np.abs(expected).max() > 1e-4, name  # a gradient that flows, not a zero one


def test_mlm_cross_entropy_and_hits_match_the_definitions_at_large_logits():
    """Far from zero (|logits| ~ 80) the fused softmax must stay finite and equal log-sum-exp, argmax and
    softmax - one_hot computed in float64."""
    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(6, 97)) * 40.0).astype(np.float32)
    labels = rng.integers(0, 97, 6).astype(np.int32)
    labels[:2] = logits[:2].argmax(-1)  # two rows whose label is the argmax
    x = tf.constant(logits)
    upstream = rng.normal(size=6).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        losses, hits = _cross_entropy_and_hits(x, tf.constant(labels))
        target = tf.reduce_sum(losses * upstream)
    grad = tape.gradient(target, x).numpy()

    z = logits.astype(np.float64)
    log_sum_exp = z.max(-1) + np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))
    np.testing.assert_allclose(losses.numpy(), log_sum_exp - z[np.arange(6), labels], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(hits.numpy(), (z.argmax(-1) == labels).astype(np.float32))
    softmax = np.exp(z - log_sum_exp[:, None])
    np.testing.assert_allclose(grad, (softmax - np.eye(97)[labels]) * upstream[:, None], atol=1e-6)


def test_mlm_logits_are_tied_to_the_word_embeddings():
    model = BertPretrainingModel(CONFIG)
    model.build()
    features = _batch(np.random.default_rng(1))
    word_table = model.encoder.embeddings.word_embeddings
    # One shared variable: the model owns it once and the head has no copy.
    assert sum(v is word_table for v in model.weights) == 1
    assert [w.path.split("/")[-1] for w in model.masked_lm_head.weights if w.shape == word_table.shape] == []
    with tf.GradientTape() as tape:
        logits = model(features, training=False)["mlm_logits"]
        target = tf.reduce_sum(logits[..., 7])
    grad = tf.convert_to_tensor(tape.gradient(target, word_table))
    # d(logit_7)/dE touches row 7 (the output projection) besides the input rows.
    assert float(tf.reduce_sum(tf.abs(grad[7]))) > 0.0


def test_heads_round_trip_their_config_and_layout():
    head = MaskedLMHead.from_config(MaskedLMHead(97, 32, "gelu_tanh", name="m").get_config())
    head.build()
    assert head.hidden_act == "gelu_tanh" and head.output_bias.shape == (97,)
    assert head.transform.kernel.shape == (32, 32) and head.layer_norm.gamma.shape == (32,)
    nsp = NextSentenceHead.from_config(NextSentenceHead(32).get_config())
    nsp.build()
    assert nsp.dense.kernel.shape == (32, 2)
    model = BertPretrainingModel.from_config(BertPretrainingModel(CONFIG).get_config())
    assert model.config == CONFIG
