"""Fine-tuning follows Hugging Face's training step for step: the same recipe, not only the same model.

Real all-MiniLM-L6-v2, real MRPC excerpt, dropout off, the same head weights and the same batches: our
`bert_keras.finetuning.fit` (Keras AdamW with decay exclusions, warmup + linear decay, clipping) and a
plain PyTorch loop with `transformers`' `BertForSequenceClassification`, `torch.optim.AdamW` and
`get_linear_schedule_with_warmup` must produce the same losses and the same trained model. With dropout and
shuffling back on, the two sides then differ only by random draws, which is why bench/glue_vs_hf.py's
single-seed dev scores are compared as seed means.
"""

import keras
import numpy as np
import pytest

from bert_keras.finetuning import FineTuningConfig, fit, load_pretrained
from tasks.glue import GlueTask

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

BATCH, LR, EPOCHS = 8, 1e-4, 2


class _FileOrder(GlueTask):
    """MRPC in file order every epoch, so both sides see the same batches."""

    def train_dataset(self, batch_size, seed=0):
        return self.dataset("train", batch_size), len(self.examples("train"))


class _BatchLosses(keras.callbacks.Callback):
    """Keras logs each batch's running mean of the loss over the epoch."""

    def __init__(self):
        super().__init__()
        self.running_means = []

    def on_train_batch_end(self, batch, logs=None):
        self.running_means.append(float(logs["loss"]))


def _numpy(features):
    return {name: tensor.numpy() for name, tensor in features.items()}


def _hf_run(minilm_dir, head, batches, dev):
    model = transformers.BertForSequenceClassification.from_pretrained(
        str(minilm_dir), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head[0].T))
        model.classifier.bias.copy_(torch.from_numpy(head[1]))
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=LR, eps=1e-6)
    total = len(batches) * EPOCHS
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)

    def inputs(features):
        return dict(input_ids=torch.from_numpy(features["input_word_ids"].astype(np.int64)),
                    attention_mask=torch.from_numpy(features["input_mask"].astype(np.int64)),
                    token_type_ids=torch.from_numpy(features["input_type_ids"].astype(np.int64)))

    running_means = []
    model.train()
    for _ in range(EPOCHS):
        losses = []
        for features, labels in batches:
            loss = model(**inputs(features), labels=torch.from_numpy(labels.astype(np.int64))).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            running_means.append(float(np.mean(losses)))
    model.eval()
    with torch.no_grad():
        logits = np.concatenate([model(**inputs(features)).logits.numpy() for features in dev])
    return running_means, logits


def test_fine_tuning_matches_a_hugging_face_training_loop_step_for_step(tmp_path, test_data, minilm_dir):
    keras.utils.set_random_seed(0)
    encoder, tokenizer = load_pretrained(str(minilm_dir))
    task = _FileOrder("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64)
    model = task.build_model(encoder)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    head = [w.copy() for w in model.classifier.get_weights()]
    batches = [(_numpy(features), labels.numpy()) for features, labels in task.dataset("train", BATCH)]
    dev = [_numpy(features) for features, _ in task.dataset("dev", 16)]

    recorder = _BatchLosses()
    config = FineTuningConfig(model_dir=str(tmp_path), learning_rate=LR, num_train_epochs=EPOCHS,
                              train_batch_size=BATCH, warmup_proportion=0.1, seed=0,
                              tensorboard_update_freq="epoch", verbose=0)
    fit(task, model, config, callbacks=[recorder])
    ours_logits = np.concatenate([model.predict_on_batch(features) for features in dev])

    hf_losses, hf_logits = _hf_run(minilm_dir, head, batches, dev)
    assert len(recorder.running_means) == len(hf_losses) == EPOCHS * len(batches)
    np.testing.assert_allclose(recorder.running_means, hf_losses, atol=2e-4)
    # Training moved the loss (the second epoch's running mean is not the first's), and both models end alike.
    assert abs(hf_losses[-1] - hf_losses[len(batches) - 1]) > 1e-2
    np.testing.assert_allclose(ours_logits, hf_logits, atol=2e-3)
