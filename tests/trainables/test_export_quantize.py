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
from trainables.quantize import quantize, quantized_layers

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


def test_a_cnn_quantises_its_convolutions_statically_and_reloads_exactly(exported) -> None:
    dest = exported("cnn", "digits", {"lr": 3e-3, "batch_norm": True, "dropout": 0.1}, epochs=3)
    result = quantize_export(dest, split="val")
    assert result["split"] == "val"
    # conv + batch norm + relu fused into each conv's int8 module; the dense layers int8 as well
    assert result["quantized_modules"] == ["features.0", "features.4", "features.10", "classifier"]
    assert result["size_bytes_after"] < 0.4 * result["size_bytes_before"]  # the convolutions shrink too
    assert abs(result["accuracy_after"] - result["accuracy_before"]) <= 0.05
    quantized = load_model(dest, int8=True)
    assert not any(isinstance(m, nn.Conv2d) for m in quantized.modules())
    record = json.loads((dest / "model.json").read_text())
    data = load_dataset(record["data"], record["seed"])
    assert evaluate(quantized, data.x_val, data.y_val)[1] == result["accuracy_after"]
    # the same conversion again, calibrated on the same training rows: what quantize_export saved
    fresh = quantize(load_model(dest), data.x_train).model
    saved, loaded = fresh.state_dict(), quantized.state_dict()
    scales = [key for key in saved if key.endswith(("scale", "zero_point", "scale_0", "zero_point_0"))]
    assert len(scales) >= 8 and all(torch.equal(saved[key], loaded[key]) for key in scales)
    with torch.no_grad():
        assert torch.equal(quantized(data.x_val), fresh(data.x_val))


def test_an_ensemble_of_cnns_quantises_each_member_statically(exported) -> None:
    dest = exported("ensemble", {"name": "digits", "folds": 2},
                    {"base": "cnn", "members": 2, "filters": 4, "dense_units": 16}, epochs=1)
    result = quantize_export(dest)
    convs = [f"members.{f}.model.members.{m}.features.{i}" for f in range(2) for m in range(2) for i in (0, 3)]
    assert set(convs) <= set(result["quantized_modules"])
    _check_round_trip(dest, result)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's, on the float conv
def test_an_even_kernel_same_conv_stays_float_and_the_rest_quantises() -> None:
    model = build_model("cnn", {"kernel_size": 2, "conv_layers": 1, "filters": 4}, (1, 8, 8), 10).eval()
    x = torch.rand(32, 1, 8, 8)
    copy = quantize(model, x)
    assert quantized_layers(model, copy.model) == ["features.4", "classifier"]
    conv = copy.model.get_submodule("features.0")  # 'same' pads one side more: float (fused with its relu)
    assert "quantized" not in type(conv).__module__ and isinstance(conv[0], nn.Conv2d)
    with torch.no_grad():
        assert (copy.model(x) - model(x)).abs().max() < 0.1


def test_a_format_1_file_still_loads(exported) -> None:
    dest = exported("mlp", "wine", {"lr": 3e-3}, epochs=1)
    result = quantize_export(dest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = torch.load(dest / INT8_FILE, weights_only=True)
        assert saved["format"] == 2 and saved["static"] == []
        del saved["static"]  # format 1: dynamic quantisation only
        torch.save({**saved, "format": 1}, dest / INT8_FILE)
    data = load_dataset({"name": "wine", "val_fraction": 0.2, "test_fraction": 0.2, "folds": 0}, 0)
    assert evaluate(load_model(dest, int8=True), data.x_test, data.y_test)[1] == result["accuracy_after"]


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
