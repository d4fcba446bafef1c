"""SquadModel: start/end logits shapes, config round trip and .keras save/load (what export reads)."""

import warnings

import keras
import numpy as np

from bert_keras import BertEncoder, preset
from bert_keras.tasks.squad.model import SquadModel


def test_span_logits_and_serialization(tmp_path):
    keras.utils.set_random_seed(0)
    model = SquadModel(BertEncoder(preset("tiny", vocab_size=64)))
    model.build()
    inputs = model.encoder.dummy_inputs(batch_size=2, seq_length=8)
    inputs["input_word_ids"] = np.arange(16, dtype=np.int32).reshape(2, 8)
    outputs = model(inputs)
    assert outputs["start_logits"].shape == outputs["end_logits"].shape == (2, 8)
    # start/end are the two columns of one H->2 projection of the sequence output.
    sequence = model.encoder(inputs)["sequence_output"]
    kernel, bias = model.span_logits.get_weights()
    expected = np.einsum("bsh,hk->bsk", np.asarray(sequence), kernel) + bias
    np.testing.assert_allclose(outputs["start_logits"], expected[..., 0], atol=1e-5)
    np.testing.assert_allclose(outputs["end_logits"], expected[..., 1], atol=1e-5)
    path = tmp_path / "squad.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(inputs)["end_logits"], outputs["end_logits"], atol=1e-6)
    assert SquadModel.from_config(model.get_config()).encoder.config == model.encoder.config


def test_pooler_is_kept_but_not_trained():
    """The span head never reads the pooler: no optimizer slots, no 'Gradients do not exist' warning, and the
    pooler's weights stay in the model unchanged by training."""
    keras.utils.set_random_seed(0)
    model = SquadModel(BertEncoder(preset("tiny", vocab_size=64)))
    model.build()
    pooler = {id(v) for v in model.encoder.pooler.weights}
    assert pooler and pooler <= {id(v) for v in model.weights}
    assert not pooler & {id(v) for v in model.trainable_weights + model.trainable_variables}
    before = [np.array(v) for v in model.encoder.pooler.weights]
    head_before = model.span_logits.get_weights()[0]
    inputs = model.encoder.dummy_inputs(batch_size=4, seq_length=8)
    inputs["input_word_ids"] = np.arange(32, dtype=np.int32).reshape(4, 8) % 64
    targets = {"start_logits": np.array([1, 2, 0, 3]), "end_logits": np.array([2, 4, 0, 3])}
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss={"start_logits": loss, "end_logits": loss})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(inputs, targets, epochs=2, verbose=0)
    assert not [w for w in caught if "Gradients do not exist" in str(w.message)]
    for old, new in zip(before, model.encoder.pooler.weights):
        np.testing.assert_array_equal(old, new)
    assert not np.allclose(head_before, model.span_logits.get_weights()[0])
