"""The text pipeline: tokenizer, a vocabulary from the training split only, fixed-length ids."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.data import (
    SOURCES,
    BuildOptions,
    RawData,
    build_dataset,
    build_vocab,
    encode_texts,
    encode_tokens,
    load_dataset,
    tokenize,
)
from trainables.data.sources import token_array


def test_tokenizer_lower_cases_words_and_keeps_inner_apostrophes() -> None:
    assert tokenize("I DON'T trust Google’s #driverless cars_now... 2015!") == (
        "i", "don't", "trust", "google's", "driverless", "cars", "now", "2015")
    assert tokenize("  ,,, ") == ()
    assert tokenize("Café au lait") == ("café", "au", "lait")


def test_vocab_is_most_frequent_first_with_alphabetical_ties_and_counts_pad_and_unk() -> None:
    documents = [("b", "a", "c"), ("c", "b"), ("d", "c")]
    assert build_vocab(documents, 5) == ("<pad>", "<unk>", "c", "b", "a")  # a and d tie: a first
    assert build_vocab(documents, 100) == ("<pad>", "<unk>", "c", "b", "a", "d")
    with pytest.raises(ValueError, match="vocab_size"):
        build_vocab(documents, 2)


def test_encoding_truncates_pads_and_marks_unknown_and_empty_documents() -> None:
    vocab = ("<pad>", "<unk>", "the", "cat")
    ids = encode_texts(["The cat the cat the", "the dog", ""], vocab, max_len=4)
    assert ids.dtype == torch.int64
    assert ids.tolist() == [[2, 3, 2, 3], [2, 1, 0, 0], [1, 0, 0, 0]]
    assert torch.equal(ids, encode_tokens([tokenize(t) for t in ["The cat the cat the", "the dog", ""]], vocab, 4))


def test_vocabulary_comes_from_the_training_split_only() -> None:
    texts = ["good film", "good good plot", "bad film", "bad plot", "zebra only in test", "walrus only in val"]
    raw = RawData(token_array(texts), np.array([0, 0, 1, 1, 0, 1]), "text", ("pos", "neg"))
    data = build_dataset(raw, np.array([0, 1, 2, 3]), np.array([5]), np.array([4]),
                         options=BuildOptions(vocab_size=50, max_len=6))
    assert data.vocab == ("<pad>", "<unk>", "good", "bad", "film", "plot")
    assert data.x_test.tolist() == [[1, 1, 1, 1, 0, 0]] and data.x_val.tolist() == [[1, 1, 1, 1, 0, 0]]
    assert data.input_shape == (6,) and data.kind == "text" and data.class_names == ("pos", "neg")


def test_built_in_text_vocab_holds_only_training_tokens() -> None:
    data = load_dataset({"name": "bbc_news"}, seed=1, vocab_size=100000, max_len=30)
    origin = data.origin
    train_tokens = {t for doc in origin.raw.x[origin.train] for t in doc}
    assert set(data.vocab[2:]) == train_tokens  # all of them fit in 100,000
    test_only = {t for doc in origin.raw.x[origin.test] for t in doc} - train_tokens
    assert test_only and not test_only & set(data.vocab)
    # the test split's first 30 tokens, re-encoded by hand
    doc = origin.raw.x[origin.test[0]][:30]
    index = {t: i for i, t in enumerate(data.vocab)}
    assert data.x_test[0, :len(doc)].tolist() == [index.get(t, 1) for t in doc]


def test_vocab_size_and_max_len_shape_the_tensors_and_are_ignored_for_other_kinds() -> None:
    data = load_dataset({"name": "sentiment"}, seed=0, vocab_size=300, max_len=12)
    assert len(data.vocab) == 300 and int(data.x_train.max()) == 299 and data.x_train.shape[1] == 12
    assert (data.x_train[:, 0] != 0).all()  # no document is all padding
    digits = load_dataset({"name": "digits"}, seed=0, vocab_size=300, max_len=12)
    assert digits.input_shape == (1, 8, 8) and digits.vocab is None
    assert SOURCES["sentiment"]().kind == "text"
