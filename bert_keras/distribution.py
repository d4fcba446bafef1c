"""Builds the `tf.distribute` strategy a training run asked for, with errors that say what is missing; the
device settings that pre-training and fine-tuning share (strategies, precision policies, XLA default)."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")  # Keras dtype policies training accepts


def _tf_config_error() -> str | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return "TF_CONFIG is not set; multi_worker_mirrored needs it to find the other workers"
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        return f"TF_CONFIG is not valid JSON: {e.msg}"
    if "cluster" not in config or "task" not in config:
        return "TF_CONFIG needs both 'cluster' and 'task' entries"
    return None


def create_strategy(name: str, tpu_address: str | None = None) -> tf.distribute.Strategy:
    """`one_device` (first GPU, else CPU), `mirrored` (all local devices), `multi_worker_mirrored`
    (workers from TF_CONFIG) or `tpu` (`tpu_address` = name or grpc:// address; "" = local TPU VM)."""
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        problem = _tf_config_error()
        if problem:
            raise ValueError(problem)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise RuntimeError(f"no TPU found at tpu_name={tpu_address!r}: {e}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown distribution strategy {name!r}; choose from {list(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def resolve_jit_compile(jit_compile: bool | str | None) -> bool:
    """`None` / "auto" -> XLA on GPUs and TPUs, not on CPU: there TF's own (oneDNN) kernels ran BERT's train
    steps faster than XLA did, for us and for keras-hub alike (`bench/pretrain_speed.py`, README)."""
    if jit_compile is None or jit_compile == "auto":
        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return bool(jit_compile)
