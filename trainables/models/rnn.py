"""A recurrent text classifier over token ids (N, max_len), 0 = padding: the `rnn` built-in."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from trainables.configs import RNNConfig
from trainables.models.common import dense_block, init_weights
from trainables.validation import require

CELLS: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}
#: the padding id (`trainables.data.text.PAD_ID`); sequences are right-padded with it
PAD = 0


def sequence_lengths(x: Tensor) -> Tensor:
    """Each row's count of non-padding tokens, at least 1 (on `x`'s device)."""
    return (x != PAD).sum(dim=1).clamp_(min=1)


class TextFeatures(nn.Module):
    """Embedding, [dropout], LSTM/GRU over packed sequences, then a dense layer on the final hidden state.

    The recurrent layers see only each sequence's real tokens (packing), so padding cannot change a
    prediction. The final hidden representation is the last layer's final state (both directions
    concatenated when bidirectional), then linear -> [batch norm] -> activation -> [dropout]. Dropout also
    acts between stacked recurrent layers.
    """

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = CELLS[config.cell](config.embedding_dim, config.hidden_size, config.num_layers, batch_first=True,
                                      dropout=config.dropout if config.num_layers > 1 else 0.0,
                                      bidirectional=config.bidirectional)
        self.directions = 2 if config.bidirectional else 1
        self.dense = nn.Sequential(*dense_block(config.hidden_size * self.directions, config.hidden_size, config))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """`lengths`: each row's token count as a CPU int64 tensor, or None to count them here (which waits
        for the device on a GPU: the training loop passes them, sorted longest first, to avoid that)."""
        if lengths is None:
            lengths = sequence_lengths(x).cpu()
        longest_first = bool((lengths[:-1] >= lengths[1:]).all())  # a CPU check: no device sync
        x = x[:, :int(lengths.max())]  # nothing after the longest sequence is read
        packed = pack_padded_sequence(self.dropout(self.embedding(x)), lengths, batch_first=True,
                                      enforce_sorted=longest_first)
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):  # LSTM: (h, c)
            hidden = hidden[0]
        final = torch.cat(list(hidden[-self.directions:]), dim=1)  # the last layer, both directions
        return self.dense(final)


class RNN(nn.Module):
    """`features` (TextFeatures) then the `classifier` (linear): the same split as every family, so that
    transfer learning can freeze one and train the other."""

    def __init__(self, config: RNNConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        require(len(input_shape) == 1, "rnn input", tuple(input_shape),
                "needs token ids shaped (max_len,): text data")
        self.features = TextFeatures(config)
        self.classifier = nn.Linear(config.hidden_size, n_classes)
        init_weights(self, config.init, config.activation)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits (N, n_classes) for token ids `x` (N, L), right-padded with 0."""
        return self.classifier(self.features(x, lengths))
