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
from bert_keras.tasks.glue import GlueTask

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import hf_training  # noqa: E402  (needs torch and transformers)
from hf_training import BatchLosses, disable_dropout, numpy_batches, torch_inputs  # noqa: E402

BATCH, LR, EPOCHS = 8, 1e-4, 2


class _FileOrder(GlueTask):
    """MRPC in file order every epoch, so both sides see the same batches."""

    def train_dataset(self, batch_size, seed=0):
        return self.dataset("train", batch_size), len(self.examples("train"))


def _hf_run(minilm_dir, head, batches, dev):
    model = transformers.BertForSequenceClassification.from_pretrained(
        str(minilm_dir), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head[0].T))
        model.classifier.bias.copy_(torch.from_numpy(head[1]))

    def loss(model, features, labels):
        return model(**torch_inputs(features), labels=torch.from_numpy(labels.astype(np.int64))).loss

    running_means = hf_training.train(model, batches, loss, learning_rate=LR, epochs=EPOCHS)
    with torch.no_grad():
        logits = np.concatenate([model(**torch_inputs(features)).logits.numpy() for features in dev])
    return running_means, logits


def test_fine_tuning_matches_a_hugging_face_training_loop_step_for_step(tmp_path, test_data, minilm_dir):
    keras.utils.set_random_seed(0)
    encoder, tokenizer = load_pretrained(str(minilm_dir))
    task = _FileOrder("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64)
    model = task.build_model(encoder)
    disable_dropout(model)
    head = [w.copy() for w in model.classifier.get_weights()]
    batches = numpy_batches(task.dataset("train", BATCH))
    dev = [features for features, _ in numpy_batches(task.dataset("dev", 16))]

    recorder = BatchLosses()
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
