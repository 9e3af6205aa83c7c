"""int8 export: `quantize_export` writes a smaller model that scores about the same, and loads back."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from trainables import export_best, load_dataset, load_model, run_training
from trainables.configs import ModelConfig
from trainables.export import INT8_FILE, quantize_export
from trainables.loop import evaluate
from trainables.models import FAMILIES, build_model

RESULT_KEYS = {"quantized", "accuracy_before", "accuracy_after", "loss_before", "loss_after", "size_bytes_before",
               "size_bytes_after", "split", "samples", "quantized_modules"}


@pytest.fixture
def exported(new_recorder, trial_context, tmp_path):
    """`exported(trainable, data, config, epochs)`: a trained model's export folder."""
    def make(trainable: str, data: str, config: dict, epochs: int) -> Path:
        recorder = new_recorder()
        run_training(config, trial_context(trainable, data, max_epochs=epochs, checkpoint_every=epochs),
                     report=recorder)
        return export_best(recorder.checkpoints[epochs], tmp_path / f"best-{trainable}")
    return make


def _check_round_trip(dest: Path, result: dict) -> nn.Module:
    """`load_model(int8=True)` scores exactly what `quantize_export` reported; the file is weights_only-safe."""
    assert set(result) == RESULT_KEYS and result["quantized"] is True and result["split"] == "test"
    assert result["size_bytes_before"] == (dest / "model.pt").stat().st_size
    assert result["size_bytes_after"] == (dest / INT8_FILE).stat().st_size
    assert abs(result["accuracy_after"] - result["accuracy_before"]) <= 0.05
    record = json.loads((dest / "model.json").read_text())
    assert record["int8"] == result
    with warnings.catch_warnings():  # torch warns that quantised tensors load through deprecated storage code
        warnings.simplefilter("ignore")
        torch.load(dest / INT8_FILE, weights_only=True)

    quantized = load_model(dest, int8=True)
    assert not quantized.training
    data = load_dataset(record["data"], record["seed"])
    assert result["samples"] == len(data.y_test)
    loss, accuracy = evaluate(quantized, data.x_test, data.y_test)
    assert accuracy == result["accuracy_after"]
    assert loss == pytest.approx(result["loss_after"], rel=1e-6)
    float_accuracy = evaluate(load_model(dest), data.x_test, data.y_test)[1]
    assert float_accuracy == result["accuracy_before"]
    for name in result["quantized_modules"]:
        assert type(quantized.get_submodule(name)) not in (nn.Linear, nn.LSTM, nn.GRU), name
    return quantized


def test_an_mlp_becomes_a_smaller_int8_model_that_scores_about_the_same(exported, recwarn) -> None:
    dest = exported("mlp", "wine", {"lr": 3e-3}, epochs=8)
    result = quantize_export(dest)
    assert result["quantized_modules"] == ["features.1", "features.3", "classifier"]
    assert result["size_bytes_after"] < 0.5 * result["size_bytes_before"]
    _check_round_trip(dest, result)
    noise = [str(w.message) for w in recwarn if "quantiz" in str(w.message) or "TypedStorage" in str(w.message)]
    assert noise == []  # torch's deprecation notices for eager-mode quantisation are not the user's business


def test_a_cnn_quantises_its_dense_layers_and_keeps_its_convolutions_float(exported) -> None:
    dest = exported("cnn", "digits", {"lr": 3e-3, "batch_norm": True, "dropout": 0.1}, epochs=3)
    result = quantize_export(dest, split="val")
    assert result["split"] == "val"
    assert result["quantized_modules"] == ["features.10", "classifier"]
    assert result["size_bytes_after"] < result["size_bytes_before"]
    quantized = load_model(dest, int8=True)
    assert [type(m) for m in quantized.features if isinstance(m, nn.Conv2d)] == [nn.Conv2d, nn.Conv2d]
    record = json.loads((dest / "model.json").read_text())
    x, y = load_dataset(record["data"], record["seed"]).split("val")
    assert evaluate(quantized, x, y)[1] == result["accuracy_after"]


def test_the_int8_copy_goes_when_the_export_is_replaced_and_is_asked_for_by_name(exported) -> None:
    dest = exported("mlp", "wine", {"lr": 3e-3}, epochs=1)
    with pytest.raises(FileNotFoundError, match=r"no model_int8\.pt in .*; write it with quantize_export"):
        load_model(dest, int8=True)
    quantize_export(dest)
    checkpoint = next(dest.parent.glob("run-*/epoch-1"))
    export_best(checkpoint, dest)  # new weights: the old int8 copy no longer matches them
    assert sorted(p.name for p in dest.iterdir()) == ["model.json", "model.pt"]
    with pytest.raises(FileNotFoundError, match="not an export folder"):
        quantize_export(checkpoint)


# --- recurrent layers: no rnn family needed to check that LSTM and GRU quantise and load back ---

@dataclass(frozen=True, kw_only=True)
class SequenceConfig(ModelConfig):
    hidden: int = 16


def write_export(tmp_path, model: nn.Module, record: dict) -> Path:
    """An export folder as `export_best` lays it out, for a model trained here."""
    dest = tmp_path / "best"
    dest.mkdir()
    torch.save(model.state_dict(), dest / "model.pt")
    (dest / "model.json").write_text(json.dumps(record))
    return dest


class SequenceModel(nn.Module):
    """Reads a wine sample's 13 features as a sequence: a 2-layer bidirectional LSTM, then a GRU."""

    def __init__(self, config: SequenceConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, config.hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(2 * config.hidden, config.hidden, batch_first=True)
        self.classifier = nn.Linear(config.hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x.unsqueeze(-1))
        out, _ = self.gru(out)
        return self.classifier(out[:, -1])


def test_lstm_and_gru_layers_quantise_and_load_back(tmp_path, monkeypatch) -> None:
    family = replace(FAMILIES["mlp"], config=SequenceConfig, module=SequenceModel)  # whatever else a Family holds
    monkeypatch.setitem(FAMILIES, "sequence", family)
    data = load_dataset({"name": "wine"}, 0)
    torch.manual_seed(0)
    model = SequenceModel(SequenceConfig(), data.input_shape, data.n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(data.x_train), data.y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    dest = write_export(tmp_path, model, {"trainable": "sequence", "knobs": {}, "model_config": {},
                                          "input_shape": list(data.input_shape), "n_classes": data.n_classes,
                                          "data": {"name": "wine"}, "seed": 0, "epoch": 1, "metrics": {}})

    result = quantize_export(dest)
    assert result["quantized_modules"] == ["lstm", "gru", "classifier"]
    assert result["accuracy_before"] > 0.8
    assert result["size_bytes_after"] < 0.5 * result["size_bytes_before"]
    quantized = _check_round_trip(dest, result)
    assert type(quantized.lstm).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(quantized.gru).__module__.startswith("torch.ao.nn.quantized.dynamic")


def test_a_text_rnn_quantises_on_its_own_text_encoding(tmp_path) -> None:
    if "rnn" not in FAMILIES:
        pytest.skip("no rnn family yet")
    config = {"cell": "lstm", "vocab_size": 500, "max_len": 40, "embedding_dim": 16, "hidden_size": 16,
              "bidirectional": True}
    data_spec = {"name": "bbc_news"}
    data = load_dataset(data_spec, 0, vocab_size=500, max_len=40)
    torch.manual_seed(0)
    model = build_model("rnn", config, data.input_shape, data.n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for batch in torch.randperm(len(data.y_train)).split(64):
        loss = nn.functional.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    record = {"trainable": "rnn", "knobs": config, "model_config": config, "input_shape": list(data.input_shape),
              "n_classes": data.n_classes, "data": data_spec, "seed": 0,
              "data_options": {"vocab_size": 500, "max_len": 40}, "vocab": list(data.vocab)}
    dest = write_export(tmp_path, model, record)

    result = quantize_export(dest)  # rebuilds the test split with vocab_size 500 and max_len 40, as trained
    assert result["quantized_modules"] == ["features.rnn", "features.dense.0", "classifier"]
    assert result["samples"] == len(data.y_test)
    quantized = load_model(dest, int8=True)
    assert evaluate(quantized, data.x_test, data.y_test)[1] == result["accuracy_after"]
    assert evaluate(load_model(dest), data.x_test, data.y_test)[1] == result["accuracy_before"]
    assert json.loads((dest / "model.json").read_text())["vocab"] == list(data.vocab)
    # an older record, without data_options: the encoding knobs are found in model_config
    del record["data_options"]
    (dest / "model.json").write_text(json.dumps(record))
    assert quantize_export(dest) == result
