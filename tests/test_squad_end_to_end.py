"""Tiny model, real excerpt, through the CLI: train, evaluate, write predictions, re-score them officially."""

import json
import os

from bert_keras.tasks.squad import evaluate as ev


def test_cli_v2_train_eval_predict(tmp_path, test_data, minilm_dir, absl_cli):
    from absl import flags

    data = test_data / "squad" / "dev-v2.0-excerpt.json"
    model_dir = tmp_path / "run"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # In-process (absl_cli), as `python -m tasks.squad` would parse and run it: no second TensorFlow start-up.
    cli = absl_cli("bert_keras.tasks.squad.__main__")
    flags.FLAGS(["squad", f"--flagfile={repo}/configs/squad/v2.0.flags", "--preset=tiny",
                 f"--vocab_file={minilm_dir / 'vocab.txt'}", f"--train_file={data}", f"--dev_file={data}",
                 f"--model_dir={model_dir}", "--max_seq_length=128", "--doc_stride=64", "--max_query_length=32",
                 "--train_batch_size=16", "--learning_rate=1e-3", "--num_train_epochs=2", "--do_predict",
                 f"--predict_file={data}"])
    cli.main([])

    raw = json.loads(data.read_text(encoding="utf-8"))
    contexts = {qa["id"]: p["context"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    predictions = json.loads((model_dir / "dev_predictions.json").read_text(encoding="utf-8"))
    assert set(predictions) == set(contexts)
    assert all(text in contexts[qid] for qid, text in predictions.items())  # exact slices of the context
    test_predictions = json.loads((model_dir / "predictions.json").read_text(encoding="utf-8"))
    assert test_predictions == predictions  # same weights, same file

    history = json.loads((model_dir / "fit_summary.json").read_text())["history"]["loss"]
    assert history[-1] < history[0]
    # The numbers the run reports equal the official-equivalent scorer run on the files it wrote.
    reported = json.loads((model_dir / "eval_results.json").read_text())
    rescored = ev.main([str(data), str(model_dir / "dev_predictions.json"),
                        "--na-prob-file", str(model_dir / "dev_null_odds.json")])
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1"):
        assert abs(reported[key] - rescored[key]) < 1e-9, key
    # The run's threshold sweep sees every question's best non-null span; the official sweep over
    # dev_predictions.json only sees what survived the default threshold, i.e. a subset of the same choices.
    assert reported["best_f1"] >= rescored["best_f1"] - 1e-9
    threshold = json.loads((model_dir / "best_null_threshold.json").read_text())
    assert threshold["best_f1"] == reported["best_f1"]
    nbest = json.loads((model_dir / "dev_nbest_predictions.json").read_text(encoding="utf-8"))
    assert all(abs(sum(c["probability"] for c in cands) - 1) < 1e-6 for cands in nbest.values())
