"""Pre-training input: corpus preparation, NSP instances, dynamic (whole-word) masking, TFRecords, and the
WordPiece vocab trainer (`vocab`).

`pretraining_dataset` builds training batches on the fly from text files (pure TF ops, checkpointable,
deterministic per seed, shardable per worker).
"""

from bert_keras.pretraining.data.pretraining_dataset import instance_dataset, pretraining_dataset

__all__ = ["instance_dataset", "pretraining_dataset"]
