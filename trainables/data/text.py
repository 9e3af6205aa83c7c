"""Text to token ids: one tokenizer, a vocabulary from training documents only, and fixed-length encoding.

Training and prediction call the same functions, so a model always sees text encoded the way it was
trained on.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

#: a token is a run of letters or digits (any script, no underscore); apostrophes inside a word are kept
#: ("don't", "google's"), everything else (spaces, punctuation, #, @, /) separates tokens
TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
#: web links are removed first: their pieces ("http", "t", "co") would crowd the vocabulary of tweets
URL = re.compile(r"(?:https?://|www\.)\S+")


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-case word tokens of `text` (see `TOKEN`), links removed; typographic apostrophes become plain."""
    return tuple(TOKEN.findall(URL.sub(" ", text.lower()).replace("\u2019", "'")))


def build_vocab(documents: Iterable[Sequence[str]], vocab_size: int) -> tuple[str, ...]:
    """Index -> token: `<pad>`, `<unk>`, then the `vocab_size - 2` most frequent tokens of `documents`.

    Frequency is the total count over all documents; ties go to the alphabetically smaller token, so the
    same documents always give the same vocabulary. Pass training documents only: a token seen only in
    val or test must map to `<unk>`, as an unseen word would in use.
    """
    if vocab_size < 3:
        raise ValueError(f"vocab_size: must be >= 3 (<pad>, <unk> and one word), got {vocab_size!r}")
    counts = Counter(token for document in documents for token in document)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return (PAD, UNK, *(token for token, _ in ranked[:vocab_size - 2]))


def encode_tokens(documents: Sequence[Sequence[str]], vocab: Sequence[str], max_len: int) -> Tensor:
    """(N, max_len) int64 ids: the first `max_len` tokens of each document, unknown ones as `<unk>`,
    right-padded with `<pad>` (0). An empty document becomes a single `<unk>`, so no row is all padding
    (a recurrent model would otherwise see no input at all)."""
    if max_len < 1:
        raise ValueError(f"max_len: must be >= 1, got {max_len!r}")
    index = {token: i for i, token in enumerate(vocab)}
    ids = np.zeros((len(documents), max_len), dtype=np.int64)
    for row, document in enumerate(documents):
        encoded = [index.get(token, UNK_ID) for token in document[:max_len]] or [UNK_ID]
        ids[row, :len(encoded)] = encoded
    import torch  # here, not at the top: tokenising a user's .csv while checking a file needs no torch

    return torch.from_numpy(ids)


def encode_texts(texts: Sequence[str], vocab: Sequence[str], max_len: int) -> Tensor:
    """Raw strings to the (N, max_len) ids a text model takes: the prediction-time twin of training."""
    return encode_tokens([tokenize(text) for text in texts], vocab, max_len)
