"""End to end: `python -m tasks.conll` (tiny model, real excerpt) -> conlleval files -> the evaluate CLI."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from seqeval.metrics import f1_score

from bert_keras.tasks.conll import data, evaluate

REPO = pathlib.Path(__file__).resolve().parents[1]


def first_sentences(source: pathlib.Path, target: pathlib.Path, count: int) -> None:
    """The file's lines up to its `count`-th sentence (keeps the test's training run short)."""
    lines, seen = [], 0
    for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
        lines.append(line)
        if not line.strip() and len(lines) > 1 and lines[-2].strip() and not lines[-2].startswith("-DOCSTART-"):
            seen += 1
            if seen == count:
                break
    target.write_text("".join(lines), encoding="utf-8")


def test_cli_trains_predicts_and_files_score_alone(tmp_path, test_data, minilm_dir, absl_cli):
    from absl import flags

    data_dir = tmp_path / "conll"
    data_dir.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        first_sentences(test_data / "conll" / name, data_dir / name, 48)
    model_dir = tmp_path / "model"
    # In-process (absl_cli), as `python -m tasks.conll` would parse and run it: no second TensorFlow start-up.
    cli = absl_cli("bert_keras.tasks.conll.__main__")
    flags.FLAGS(["conll", f"--flagfile={REPO / 'configs/conll/minilm.flags'}", "--preset=tiny",
                 f"--vocab_file={minilm_dir / 'vocab.txt'}", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                 "--num_train_epochs=1", "--max_seq_length=24", "--window_context=6", "--train_batch_size=16",
                 "--learning_rate=1e-3"])
    cli.main([])

    summary = json.loads((model_dir / "fit_summary.json").read_text())
    assert summary["best_epoch"] == 1 and "f1" in summary["best"]
    assert (model_dir / "tensorboard").is_dir()
    for split, name in (("validation", "valid.txt"), ("test", "test.txt")):
        sentences = data.read_conll(data_dir / name)
        assert len(sentences) == 48
        words, gold, predicted = evaluate.read_predictions(model_dir / f"predictions_{split}.txt")
        # Every word of every sentence, in order, with exactly one prediction (windows merged back).
        assert [tuple(w) for w in words] == [s.words for s in sentences]
        assert gold == [list(s.tags) for s in sentences]
        assert all(tag in data.label_list() for sentence in predicted for tag in sentence)
        results = json.loads((model_dir / f"{split}_results.json").read_text())
        assert results["f1"] == pytest.approx(100 * f1_score(gold, predicted), abs=1e-9)
        scored = subprocess.run([sys.executable, "-m", "bert_keras.tasks.conll.evaluate", "--json",
                                 str(model_dir / f"predictions_{split}.txt")],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert scored.returncode == 0, scored.stderr
        assert 100 * json.loads(scored.stdout)["overall"]["f1"] == pytest.approx(results["f1"], abs=1e-9)
    assert json.loads((model_dir / "eval_results.json").read_text())["f1"] == pytest.approx(
        json.loads((model_dir / "validation_results.json").read_text())["f1"], abs=1e-9)


def test_token_classifier_config_round_trip():
    import keras

    from bert_keras import BertEncoder, preset
    from bert_keras.tasks.conll.model import TokenClassifier

    encoder = BertEncoder(preset("tiny", vocab_size=100, num_hidden_layers=1))
    model = TokenClassifier(encoder, 9, labels=data.label_list())
    model.build()
    inputs = {"input_word_ids": np.array([[2, 5, 7, 3, 0]], np.int32),
              "input_mask": np.array([[1, 1, 1, 1, 0]], np.int32),
              "input_type_ids": np.zeros((1, 5), np.int32)}
    logits = np.asarray(model(inputs))
    assert logits.shape == (1, 5, 9)
    pooler = {id(v) for v in encoder.pooler.weights}  # unread by a token head: kept, not trained
    assert pooler <= {id(v) for v in model.weights} and not pooler & {id(v) for v in model.trainable_weights}
    clone = TokenClassifier.from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs)), logits, atol=1e-6)
    assert clone.labels == data.label_list()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(restored, TokenClassifier) and restored.num_labels == 9
    with pytest.raises(ValueError, match="labels has 2 entries"):
        TokenClassifier(encoder, 9, labels=["O", "B-PER"])
