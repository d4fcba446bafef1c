"""GLUE fine-tuning: the nine tasks + AX, original TSVs or tensorflow_datasets, submission files.

CLI: `python -m bert_keras.tasks.glue --task=mrpc --data_dir=glue_data --init_checkpoint=ckpt --model_dir=out`
(flag files in `configs/glue/`). Python: `GlueTask(...)`, `GlueClassifier(encoder, num_classes)`.
"""

from bert_keras.tasks.glue.model import GlueClassifier
from bert_keras.tasks.glue.task import GlueTask
from bert_keras.tasks.glue.tasks import GLUE_TASKS, GlueTaskSpec, get_task

__all__ = ["GLUE_TASKS", "GlueClassifier", "GlueTask", "GlueTaskSpec", "get_task"]
