"""Output directories are checked before any work: an unwritable one is an error naming its flag, not a
traceback after training."""

import os

import keras
import pytest

from bert_keras.output_paths import check_writable


def test_check_writable_creates_nothing_and_names_the_flag(tmp_path):
    check_writable(tmp_path / "new" / "deeper", "model_dir")  # fine: it would be created
    assert os.listdir(tmp_path) == []
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"--export_dir='.*a_file/export' cannot be created: .*a_file' is a file"):
        check_writable(blocker / "export", "export_dir")
    with pytest.raises(ValueError, match=r"--model_dir='.*a_file' is a file, not a directory"):
        check_writable(blocker, "model_dir")


def test_pretraining_refuses_an_unwritable_output_dir_before_any_work(tmp_path):
    from bert_keras.pretraining import ConfigError, PretrainingConfig, train

    (tmp_path / "a_file").write_text("x")
    config = PretrainingConfig(preset="tiny", vocab_file="demo", input_file="demo:train",
                               output_dir=str(tmp_path / "a_file" / "run"), num_train_steps=2, num_warmup_steps=0)
    with pytest.raises(ConfigError, match="--output_dir=.*cannot be created"):
        train(config, log=lambda line: None)


def test_fine_tuning_checks_export_dir_before_training(tmp_path):
    from bert_keras.finetuning import FineTuningConfig, FineTuningTask, load_pretrained, run
    from bert_keras.resources import demo_vocab_file

    class NeverTrained(FineTuningTask):
        def train_dataset(self, batch_size, seed=0):
            raise AssertionError("training started before the output paths were checked")

        build_model = loss = evaluate = train_dataset

    keras.utils.set_random_seed(0)
    encoder, _ = load_pretrained(preset="tiny", vocab_file=demo_vocab_file())
    (tmp_path / "a_file").write_text("x")
    config = FineTuningConfig(model_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="--export_dir=.*cannot be created"):
        run(NeverTrained(), encoder, config, export_dir=str(tmp_path / "a_file" / "export"))
    assert not (tmp_path / "run").exists()
