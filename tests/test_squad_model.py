"""SquadModel: start/end logits shapes, config round trip and .keras save/load (what export reads)."""

import keras
import numpy as np

from bert_keras import BertEncoder, preset
from tasks.squad.model import SquadModel


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
