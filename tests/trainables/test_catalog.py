"""The catalog of the built-ins (`trainables.catalog`, `trainables.configs`) is read without torch, and holds
exactly what the torch modules implement: the names of each choice, the families, the data sets' kinds."""
from __future__ import annotations

import subprocess
import sys

import pytest

from trainables import configs
from trainables.catalog import BUILTINS, DATA_KINDS, KNOB_CHOICES, knob_names


def test_reading_the_catalog_loads_neither_torch_nor_the_data_libraries():
    code = ("import sys, trainables.catalog as c; c.knob_names('ensemble'); c.DataSpec.from_dict({}); "
            "print(sorted(m for m in ('torch', 'pandas', 'sklearn', 'ray') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_name_table_is_its_implementations_keys():
    from trainables.models import FAMILIES
    from trainables.models.common import ACTIVATIONS
    from trainables.models.rnn import CELLS
    from trainables.optim import OPTIMIZERS

    assert configs.ACTIVATIONS == tuple(ACTIVATIONS)
    assert configs.OPTIMIZERS == tuple(OPTIMIZERS)
    assert configs.CELLS == tuple(CELLS)
    assert tuple(FAMILIES) == tuple(configs.FAMILY_SPECS) == configs.BASES
    assert BUILTINS == (*configs.FAMILY_SPECS, configs.ENSEMBLE)
    assert all(FAMILIES[name].config is spec.config for name, spec in configs.FAMILY_SPECS.items())


def test_the_lr_schedules_named_are_the_ones_the_loop_computes():
    from trainables.optim import lr_factor

    for schedule in configs.LR_SCHEDULES:
        assert 0 < lr_factor(schedule, 0, 10) <= 1
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor("linear", 0, 10)


@pytest.mark.parametrize("name", sorted(DATA_KINDS))
def test_each_data_set_is_of_the_kind_the_catalog_says(name):
    from trainables.data import SOURCES, sources

    assert set(SOURCES) == set(DATA_KINDS)
    if name == "fashion_mnist" and not (sources.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    assert SOURCES[name]().kind == DATA_KINDS[name]


def test_knob_choices_cover_every_enum_knob():
    assert set(KNOB_CHOICES) <= knob_names("ensemble")
    assert KNOB_CHOICES["optimizer"] == configs.OPTIMIZERS
