"""Data-parallel training in the shared loop, in plain PyTorch: two local processes in a gloo group, as
the Ray Train workers of a `resources.workers: 2` trial are (the Ray side: tests/test_multiworker.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.fixtures.ddp import Collector, run_ranks
from trainables import TrialContext, load_dataset, run_training
from trainables.checkpoint import load_checkpoint
from trainables.knobs import parse_knobs
from trainables.loop import Learner, Split, train_epoch
from trainables.models import build_model
from trainables.optim import make_optimizer, penalised_weights
from trainables.ranks import Ranks

KNOBS = {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "units": 16, "l2": 1e-3}


def test_a_shard_is_every_world_th_row_and_every_rank_gets_as_many() -> None:
    order = torch.arange(11)
    shards = [Ranks(rank, 3).shard(order) for rank in range(3)]
    assert [s.tolist() for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert Ranks().shard(order) is order and Ranks(1, 3).local_batch_size(64) == 22
    with pytest.raises(ValueError, match="rank must be in"):
        Ranks(2, 2)


def one_epoch(rank: int, world: int, wrap: bool) -> dict[str, torch.Tensor]:
    """One epoch of an mlp on wine on this rank's shard, its model in DDP or not; the weights after it."""
    ranks = Ranks(rank, world)
    data = load_dataset({"name": "wine"}, seed=0)
    knobs = parse_knobs("mlp", KNOBS)
    torch.manual_seed(0)
    model = build_model("mlp", knobs.model, data.input_shape, data.n_classes)
    optimizer = make_optimizer("adam", model.parameters(), 0.01, 0.9)
    learner = Learner(model, optimizer, penalised_weights(model), net=ranks.wrap(model) if wrap else None)
    train_epoch(learner, Split(data.x_train, data.y_train), knobs.training, torch.Generator().manual_seed(0),
                ranks=ranks)
    return {key: value.clone() for key, value in model.state_dict().items()}


def on_each_rank(rank: int, world: int, root: str) -> dict[str, Any]:
    """Everything the tests below look at, from one start of two processes (a start costs seconds)."""
    return {"ddp": one_epoch(rank, world, True), "apart": one_epoch(rank, world, False),
            **train_and_resume(rank, world, root)}


@pytest.fixture(scope="module")
def ranks_ran(tmp_path_factory) -> list[dict[str, Any]]:
    return run_ranks(2, on_each_rank, str(tmp_path_factory.mktemp("ranks")))


def test_ddp_keeps_the_ranks_identical_and_steps_as_one_process_with_the_global_batch(ranks_ran) -> None:
    """Each rank sees other rows, so identical weights after an epoch mean the gradients were averaged;
    with the global batch split between the ranks the steps are those of one process (up to rounding)."""
    (synced, apart), (synced_1, apart_1) = ((r["ddp"], r["apart"]) for r in ranks_ran)
    assert all(torch.equal(synced[key], synced_1[key]) for key in synced)
    alone = one_epoch(0, 1, False)
    for key in alone:
        torch.testing.assert_close(synced[key], alone[key], atol=1e-5, rtol=1e-4)
    # without DDP each rank learns from its own half only
    assert not all(torch.equal(apart[key], apart_1[key]) for key in apart)


def train_and_resume(rank: int, world: int, root: str) -> dict[str, Any]:
    """Three epochs; the same crashed after two and resumed from rank 0's checkpoint; a boosted ensemble
    with 2 folds. Every rank's reports and the checkpoints it was handed."""
    ranks = Ranks(rank, world)
    knobs = {**KNOBS, "batch_norm": True, "dropout": 0.2, "augment": 1.0}
    context = TrialContext(trainable="mlp", data={"name": "wine"}, max_epochs=3)
    whole, crashed = Collector(Path(root, f"whole{rank}")), Collector(Path(root, f"crashed{rank}"), stop_after=2)
    run_training(knobs, context, report=whole, ranks=ranks)
    try:
        run_training(knobs, context, report=crashed, ranks=ranks)
    except KeyboardInterrupt:
        pass
    torch.distributed.barrier()  # rank 0 has written its checkpoint
    resumed = Collector(Path(root, f"resumed{rank}"))
    run_training(knobs, context, report=resumed, ranks=ranks, start_checkpoint=Path(root, "crashed0", "epoch-2"))
    ensemble = Collector(Path(root, f"ensemble{rank}"))
    run_training({"method": "boosting", "members": 2, "units": 8, "batch_size": 16},
                 TrialContext(trainable="ensemble", data={"name": "wine", "folds": 2}, max_epochs=2),
                 report=ensemble, ranks=ranks)
    return {"whole": whole.reports, "crashed": crashed.reports, "resumed": resumed.reports,
            "ensemble": ensemble.reports,
            "checkpoints": {name: c.checkpoints for name, c in
                            [("whole", whole), ("resumed", resumed), ("ensemble", ensemble)]}}


def test_every_rank_reports_the_same_only_rank_0_checkpoints_and_a_resume_is_exact(ranks_ran) -> None:
    first, second = ranks_ran
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    for name in ("whole", "crashed", "resumed", "ensemble"):
        assert strip(first[name]) == strip(second[name]), name
    latency = lambda reports: [r["latency_ms"] for r in reports]
    assert latency(first["whole"]) == latency(second["whole"])  # rank 0's timing on every rank
    assert [r["epoch"] for r in first["whole"]] == [1, 2, 3] and not first["whole"][-1]["diverged"]
    assert strip(first["crashed"] + first["resumed"]) == strip(first["whole"])
    assert set(first["checkpoints"]["whole"]) == {1, 2, 3} and second["checkpoints"]["whole"] == {}
    assert second["checkpoints"]["ensemble"] == {} and "fold1_val_accuracy" in first["ensemble"][-1]
    final, again = (load_checkpoint(first["checkpoints"][name][3]) for name in ("whole", "resumed"))
    assert all(torch.equal(t, again["model"][k]) for k, t in final["model"].items())
    # the train scores are every rank's rows (all 106 but none of the odd one out), not rank 0's half
    assert first["whole"][0]["train_accuracy"] * 106 == pytest.approx(round(first["whole"][0]["train_accuracy"] * 106))
