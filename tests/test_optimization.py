"""The optimizers and schedule of `bert_keras.optimization` against independent references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.optimization import NO_DECAY_PATTERNS, WarmupPolynomialDecay, create_optimizer


def _variables(rng):
    """A kernel and a bias (decayed / not decayed by name), plus a LayerNorm-like gamma."""
    return [keras.Variable(rng.normal(size=shape).astype("float32"), name=name)
            for name, shape in (("kernel", (6, 5)), ("bias", (5,)), ("gamma", (5,)))]


def _gradients(rng, steps):
    return [[rng.normal(size=shape).astype("float32") for shape in ((6, 5), (5,), (5,))] for _ in range(steps)]


def _run(optimizer, variables, grads):
    """Builds the optimizer and applies each step's gradients in a tf.function, as training loops do."""
    optimizer.build(variables)
    step = tf.function(lambda g: optimizer.apply(g, variables))
    for g in grads:
        step(g)


def test_warmup_then_linear_decay_values():
    schedule = WarmupPolynomialDecay(1e-3, num_train_steps=110, num_warmup_steps=10)
    got = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(got, [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)


def test_adamw_matches_pytorch_adamw_with_the_same_decay_exclusions():
    """Our AdamW (fused TF kernel) against torch.optim.AdamW, the optimizer Hugging Face fine-tunes with:
    eps added to the bias-corrected sqrt(v_hat), decoupled decay on the kernel only. Keras' AdamW, which
    adds eps before the correction, is measurably off on small gradients in the first steps."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [[g * scale for g in step] for step, scale in zip(_gradients(rng, 4), (1e-5, 1e-4, 1.0, 1e-6))]
    variables = _variables(rng)
    initial = [v.numpy() for v in variables]
    schedule = WarmupPolynomialDecay(1e-2, 10, 2)
    optimizer = create_optimizer(1e-2, 10, 2, weight_decay=0.1, clip_norm=None)
    assert type(optimizer).__module__ == "bert_keras.optimization"
    _run(optimizer, variables, grads)

    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in initial]
    reference = torch.optim.AdamW([{"params": params[:1], "weight_decay": 0.1},
                                   {"params": params[1:], "weight_decay": 0.0}], lr=1.0, eps=1e-6)
    for step, step_grads in enumerate(grads):
        for group in reference.param_groups:
            group["lr"] = float(schedule(step))
        for p, g in zip(params, step_grads):
            p.grad = torch.from_numpy(g)
        reference.step()
    for ours, want, before in zip(variables, params, initial):
        np.testing.assert_allclose(ours.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-7)
        assert np.abs(ours.numpy() - before).max() > 1e-3

    keras_variables = [keras.Variable(w, name=v.name) for w, v in zip(initial, variables)]
    keras_adamw = keras.optimizers.AdamW(schedule, weight_decay=0.1, epsilon=1e-6)
    keras_adamw.exclude_from_weight_decay(var_names=list(NO_DECAY_PATTERNS))
    _run(keras_adamw, keras_variables, grads)
    assert np.abs(keras_variables[0].numpy() - variables[0].numpy()).max() > 1e-3


def test_lamb_matches_a_numpy_implementation_of_the_paper():
    rng = np.random.default_rng(1)
    grads = _gradients(rng, 3)
    variables = _variables(rng)
    expected = [v.numpy().astype("float64") for v in variables]
    lr, wd, b1, b2, eps = 1e-2, 0.01, 0.9, 0.999, 1e-6
    m = [np.zeros_like(w) for w in expected]
    v = [np.zeros_like(w) for w in expected]
    for t, step_grads in enumerate(grads, start=1):
        for i, (w, g) in enumerate(zip(expected, step_grads)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            update = (m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + eps)
            if variables[i].name == "kernel":  # decayed and layer-adapted; bias and gamma are neither
                update = update + wd * w
                update = update * np.linalg.norm(w) / np.linalg.norm(update)
            expected[i] = w - lr * update
    optimizer = create_optimizer(lr, 1000, 0, optimizer="lamb", weight_decay=wd, clip_norm=None, power=0.0)
    _run(optimizer, variables, grads)
    for got, want in zip(variables, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)


def test_unknown_optimizer_name_is_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        create_optimizer(1e-3, 10, optimizer="adam")
