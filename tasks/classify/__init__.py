"""Text classification on your own files: single-label, multi-label or regression (project issue 29).

Data: CSV, TSV or JSON Lines (by extension) with a header / fields naming a text column, an optional second
text column (pairs) and a label column; the test file may lack the label. Every file is checked before a
model is built (errors name file, line and column; `--skip_bad_rows` drops and counts bad rows instead).
The problem type is inferred from the training labels unless given; labels keep the `--labels` order, else
the sorted names of the training file (`data.py` says why). Single-label and regression runs use GLUE's
head (`GlueClassifier`), multi-label runs `MultiLabelClassifier` (sigmoid per label, threshold 0.5).

CLI::

    python -m bert_keras.tasks.classify --train_file=reviews_train.csv --validation_file=reviews_dev.csv \\
        --text_column=review --label_column=sentiment --init_checkpoint=ckpt --model_dir=out \\
        --test_file=reviews_new.csv --export_dir=out/export        # or --flagfile=configs/classify/example.flags
    python -m bert_keras.export --model_dir=out/export --export_dir=/models/reviews   # serves label names

Python::

    from bert_keras.finetuning import FineTuningConfig, load_pretrained, run
    from bert_keras.tasks.classify import ClassifyTask, Columns, load_files

    data = load_files("train.jsonl", "dev.jsonl", columns=Columns("text", label="tags"))  # list labels: multi_label
    encoder, tokenizer = load_pretrained("path/to/checkpoint")
    task = ClassifyTask(data, tokenizer, max_seq_length=128)
    report = run(task, encoder, FineTuningConfig(model_dir="out"), export_dir="out/export")
"""

from bert_keras.tasks.classify.data import ClassifyData, Columns, DataError, load_files
from bert_keras.tasks.classify.model import MultiLabelClassifier
from bert_keras.tasks.classify.task import ClassifyTask

__all__ = ["ClassifyData", "ClassifyTask", "Columns", "DataError", "MultiLabelClassifier", "load_files"]
