"""The rnn family: shapes, packing (padding cannot change a prediction), init, learning, and data kinds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainables import run_training
from trainables.configs import RNNConfig
from trainables.models import RNN, build_model
from trainables.models.rnn import sequence_lengths

VOCAB = 50


def padded_batch(lengths: list[int], max_len: int = 12, seed: int = 0) -> torch.Tensor:
    """Random token ids >= 2 (neither padding nor <unk>), right-padded with 0 to `max_len`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max_len, dtype=torch.long)
    for row, length in enumerate(lengths):
        x[row, :length] = torch.randint(2, VOCAB, (length,), generator=generator)
    return x


@pytest.mark.parametrize("config", [
    {},
    {"cell": "gru"},
    {"bidirectional": True},
    {"num_layers": 2, "dropout": 0.3, "batch_norm": True},
    {"cell": "gru", "bidirectional": True, "num_layers": 3, "init": "xavier"},
    {"init": "kaiming", "activation": "tanh"},
])
def test_shapes_and_parts(config: dict) -> None:
    model = build_model("rnn", {"vocab_size": VOCAB, "hidden_size": 8, "embedding_dim": 6, **config}, (12,), 4)
    assert isinstance(model, RNN) and isinstance(model.classifier, nn.Linear)
    assert model.features.rnn.bidirectional == config.get("bidirectional", False)
    assert type(model.features.rnn) is {"lstm": nn.LSTM, "gru": nn.GRU}[config.get("cell", "lstm")]
    x = padded_batch([12, 3, 7, 1, 5])
    assert model.train()(x).shape == (5, 4)
    assert model.eval()(x).shape == (5, 4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_padded_batch_gives_each_sequence_its_own_logits(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = RNN(RNNConfig(vocab_size=VOCAB, hidden_size=8, embedding_dim=6, cell=cell, num_layers=2,
                          bidirectional=bidirectional, batch_norm=True), (12,), 3).eval()
    lengths = [5, 12, 1, 8, 3]
    x = padded_batch(lengths)
    batch = model(x)
    alone = torch.cat([model(x[i:i + 1, :n]) for i, n in enumerate(lengths)])
    assert torch.allclose(batch, alone, atol=1e-5)
    # the loop's path: rows sorted longest first with their lengths given on the CPU
    order = torch.tensor(lengths).argsort(descending=True)
    given = model(x[order], sequence_lengths(x[order]).cpu())
    assert torch.allclose(given, batch[order], atol=1e-5)


def test_lengths_count_real_tokens_and_an_all_padding_row_reads_one() -> None:
    x = torch.tensor([[3, 4, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    assert sequence_lengths(x).tolist() == [2, 1, 4]


def test_xavier_and_kaiming_init_the_gates_and_open_the_forget_gate() -> None:
    torch.manual_seed(0)
    default = RNN(RNNConfig(vocab_size=VOCAB), (12,), 2)
    for init in ("xavier", "kaiming"):
        model = RNN(RNNConfig(vocab_size=VOCAB, init=init, hidden_size=8), (12,), 2)
        rnn = model.features.rnn
        hidden = rnn.hidden_size
        assert torch.equal(rnn.bias_ih_l0[hidden:2 * hidden], torch.ones(hidden))  # LSTM gates: i, f, g, o
        assert rnn.bias_ih_l0[:hidden].abs().sum() == 0 and rnn.bias_hh_l0.abs().sum() == 0
        assert torch.all(model.classifier.bias == 0)
    assert default.features.rnn.bias_hh_l0.abs().sum() > 0  # default keeps PyTorch's own init


def test_learns_a_tiny_synthetic_text_task() -> None:
    """Label: does token 7 occur? Sequences of 2..10 tokens, padded to 12; plain PyTorch training."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 11, (512,), generator=generator).tolist()
    x = padded_batch(lengths, seed=1)
    x[x == 7] = 8
    has = torch.randint(0, 2, (512,), generator=generator).bool()  # balance the classes
    position = (torch.rand(512, generator=generator) * torch.tensor(lengths)).long()
    x[has, position[has]] = 7
    y = (x == 7).any(dim=1).long()
    torch.manual_seed(0)
    model = RNN(RNNConfig(vocab_size=VOCAB, embedding_dim=8, hidden_size=16, cell="gru"), (12,), 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    train, test = slice(0, 384), slice(384, 512)
    for _ in range(15):
        for batch in torch.randperm(384, generator=generator).split(32):
            optimizer.zero_grad()
            F.cross_entropy(model(x[train][batch]), y[train][batch]).backward()
            optimizer.step()
    accuracy = (model.eval()(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy > 0.9


def test_the_rnn_trains_in_the_loop_and_reports_every_metric(recorder, trial_context, small_text) -> None:
    data, knobs = small_text
    run_training({**knobs, "lr": 0.01, "bidirectional": True}, trial_context("rnn", data, max_epochs=2),
                 report=recorder)
    assert [r["epoch"] for r in recorder.reports] == [1, 2] and not recorder.last["diverged"]
    assert 0.0 <= recorder.last["val_accuracy"] <= 1.0


@pytest.mark.parametrize("trainable, data, knobs, message", [
    ("rnn", "wine", {}, "trainable 'rnn' needs text data, but this data set is tabular \\(use mlp\\)"),
    ("mlp", "text", {}, "trainable 'mlp' needs image or tabular data, but this data set is text \\(use rnn\\)"),
    ("cnn", "text", {}, "trainable 'cnn' needs image data"),
    ("ensemble", "wine", {"base": "rnn"}, "trainable 'ensemble' with base 'rnn' needs text data"),
    ("ensemble", "wine", {"base": "cnn"}, "trainable 'ensemble' with base 'cnn' needs image data"),
])
def test_a_family_on_the_wrong_kind_of_data_is_a_value_error(trainable: str, data: str, knobs: dict, message: str,
                                                             recorder, trial_context, small_text) -> None:
    if data == "text":
        data = small_text[0]
    with pytest.raises(ValueError, match=message):
        run_training(knobs, trial_context(trainable, data), report=recorder)
