"""CoNLL-2003 named-entity recognition: column-format data, WordPiece alignment with windows, a
token-classification head and conlleval-compatible entity F1. CLI: `python -m bert_keras.tasks.conll`."""
