"""Fine-tuning task families built on `bert_keras.finetuning`: `tasks.glue`, `tasks.squad`, `tasks.conll`."""
