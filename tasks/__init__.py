"""Fine-tuning task families built on `bert_keras.finetuning`, installed as `bert_keras.tasks`: `glue`, `squad`,
`conll`. Each family owns its data, model, metrics and serving module; the library never imports them.

Task code imports itself as `bert_keras.tasks.<family>` only, so `python -m tasks.glue` run from a checkout and
`python -m bert_keras.tasks.glue` load the same classes.
"""
