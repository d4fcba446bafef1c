"""Runs TF Serving requests against a SavedModel in a process that imports only TensorFlow + TF Text.

There is no `tensorflow_model_server` binary on this machine, so this reproduces what the server does with
a request: the REST `predict` JSON (row "instances" or columnar "inputs", `{"b64": ...}` for binary
strings) and the gRPC `PredictRequest` protobuf (serialized to bytes and parsed back, as on the wire) are
decoded to tensors, fed to the named signature of the loaded SavedModel, and answered in the server's
response format. Usage:

    python serving_client.py SAVED_MODEL_DIR REQUESTS.json RESPONSES.json

REQUESTS.json: {"<name>": {"rest": <REST body>} | {"grpc": <REST-columnar-like body>} | {"saved_model_cli": {}}}
(an entry's optional "saved_model" key sends it to another SavedModel dir instead; "saved_model_cli" answers
with the text `saved_model_cli show --all --dir <that dir>` prints, produced by that tool's own code in this
process instead of one more TensorFlow start-up per model). RESPONSES.json gets
{"<name>": <REST response>, ..., "_modules": {"bert_keras": false}} (proof of what the process imported).

Tests import this file for `predict_in_fresh_process`, `saved_model_cli_signatures` and `parse_show_all`.
"""

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)


def _decode_value(value):
    """REST JSON value -> numpy array; {"b64": ...} marks binary strings as in TF Serving."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return np.array(base64.b64decode(value["b64"]), dtype=object)
    if isinstance(value, list):
        items = [_decode_value(v) for v in value]
        if items and items[0].dtype == object:
            return np.array([i.item() if i.ndim == 0 else i for i in items], dtype=object)
        return np.array(items)
    if isinstance(value, str):
        return np.array(value.encode("utf-8"), dtype=object)
    return np.array(value)


def _to_tensor(array, spec):
    if spec.dtype == tf.string:
        return tf.constant(array.astype(object) if array.size else np.zeros(array.shape, dtype=object),
                           dtype=tf.string)
    return tf.constant(array, dtype=spec.dtype)


def _jsonable(array):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist() if array.size \
            else array.tolist()
    return array.tolist()


def _signature(model, body):
    name = body.get("signature_name", "serving_default")
    if name not in model.signatures:
        raise KeyError(f"signature {name!r} not found; the model has {sorted(model.signatures)}")
    fn = model.signatures[name]
    return fn, fn.structured_input_signature[1]


def rest_predict(model, body):
    """TF Serving REST `:predict` semantics for the row and the columnar request formats."""
    fn, specs = _signature(model, body)
    names = sorted(specs)
    if "instances" in body:
        rows = body["instances"]
        if len(names) == 1 and not (rows and isinstance(rows[0], dict)):
            rows = [{names[0]: r} for r in rows]
        columns = {n: _decode_value([r[n] for r in rows]) for n in names}
    else:
        inputs = body["inputs"]
        columns = {n: _decode_value(inputs[n] if isinstance(inputs, dict) else inputs) for n in names}
    outputs = {k: v.numpy() for k, v in fn(**{n: _to_tensor(columns[n], specs[n]) for n in names}).items()}
    if "instances" in body:
        count = len(body["instances"])
        rows = [{k: _jsonable(np.asarray(v[i], dtype=v.dtype)) for k, v in outputs.items()}
                for i in range(count)]
        if len(outputs) == 1:
            rows = [next(iter(r.values())) for r in rows]
        return {"predictions": rows}
    return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}


def grpc_predict(model, body):
    """Builds a `PredictRequest` with `tf.make_tensor_proto`, round-trips it through its wire bytes,
    runs it, and returns the `PredictResponse` outputs as lists."""
    from tensorflow_serving.apis import predict_pb2

    fn, specs = _signature(model, body)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = body.get("model_name", "bert")
    request.model_spec.signature_name = body.get("signature_name", "serving_default")
    for name, value in body["inputs"].items():
        array = _decode_value(value)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=specs[name].dtype))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    feeds = {n: tf.constant(tf.make_ndarray(p), dtype=specs[n].dtype) for n, p in request.inputs.items()}
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in fn(**feeds).items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    return {"outputs": {k: _jsonable(tf.make_ndarray(p)) for k, p in response.outputs.items()}}


def saved_model_cli_show_all(saved_model_dir):
    """What `saved_model_cli show --all --dir saved_model_dir` prints (the function that command runs)."""
    import contextlib
    import io

    from tensorflow.python.tools import saved_model_cli

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        saved_model_cli._show_all(saved_model_dir)
    return text.getvalue()


def main(saved_model_dir, requests_file, responses_file):
    models = {}
    with open(requests_file, encoding="utf-8") as f:
        requests = json.load(f)
    responses = {}
    for name, request in requests.items():
        path = request.get("saved_model", saved_model_dir)
        if "saved_model_cli" in request:
            responses[name] = {"show_all": saved_model_cli_show_all(path)}
            continue
        if path not in models:
            models[path] = tf.saved_model.load(path)
        model = models[path]
        try:
            if "rest" in request:
                responses[name] = rest_predict(model, request["rest"])
            else:
                responses[name] = grpc_predict(model, request["grpc"])
        except Exception as e:  # a server answers a bad request with an error, it does not die
            responses[name] = {"error": f"{type(e).__name__}: {e}"}
    responses["_modules"] = {"bert_keras": any(m.split(".")[0] == "bert_keras" for m in sys.modules),
                             "tensorflow_text": "tensorflow_text" in sys.modules}
    with open(responses_file, "w", encoding="utf-8") as f:
        json.dump(responses, f)


def predict_in_fresh_process(saved_model_dir, requests, work_dir):
    """Runs `requests` (see module doc) in a new Python process; returns its responses."""
    requests_file = os.path.join(work_dir, "requests.json")
    responses_file = os.path.join(work_dir, "responses.json")
    with open(requests_file, "w", encoding="utf-8") as f:
        json.dump(requests, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
    subprocess.run([sys.executable, os.path.abspath(__file__), str(saved_model_dir), requests_file,
                    responses_file], check=True, env=env, cwd=work_dir, capture_output=True)
    with open(responses_file, encoding="utf-8") as f:
        return json.load(f)


_SIGNATURE = re.compile(r"^signature_def\['([^']+)'\]:")
_TENSOR = re.compile(r"^\s+(inputs|outputs)\['([^']+)'\] tensor_info:")
_FIELD = re.compile(r"^\s+(dtype|shape): (.*)$")


def saved_model_cli_signatures(saved_model_dir):
    """`saved_model_cli show --all` (the console script) parsed by `parse_show_all`."""
    # The console script installed beside this interpreter (a fresh pyenv may not have rehashed its shims).
    beside = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    cli = beside if os.path.exists(beside) else "saved_model_cli"
    text = subprocess.run([cli, "show", "--all", "--dir", str(saved_model_dir)], check=True,
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")).stdout
    return parse_show_all(text)


def parse_show_all(text):
    """`saved_model_cli show --all` output -> {signature: {"inputs"|"outputs": {name: (dtype, shape)}}}."""
    signatures, current, tensor = {}, None, None
    for line in text.splitlines():
        if m := _SIGNATURE.match(line):
            current = signatures.setdefault(m.group(1), {"inputs": {}, "outputs": {}})
        elif (m := _TENSOR.match(line)) and current is not None:
            tensor = [m.group(1), m.group(2), None, None]
        elif (m := _FIELD.match(line)) and tensor is not None:
            tensor[2 if m.group(1) == "dtype" else 3] = m.group(2)
            if None not in tensor:
                current[tensor[0]][tensor[1]] = (tensor[2], tensor[3])
                tensor = None
    return signatures


if __name__ == "__main__":
    main(*sys.argv[1:4])
