"""THE training loop, shared by every built-in: one model, an ensemble, or k cross-validation folds of either.

A trial trains *learners* (a model, its optimizer and its view of the training split: which rows, with
which weights) and advances all of them one epoch together, so a scheduler judges the whole trial every
epoch. The learners of one data fold form a *committee* whose predictions combine into one predictor:

    cnn / mlp / rnn          one committee of one learner (the model itself)
    ensemble                 one committee of M learners: bagging (a bootstrap sample each, probabilities
                             averaged) or boosting (SAMME sample weights, alpha-weighted probabilities)
    data.folds = k > 1       k committees, one per fold; the k fold predictors averaged are what is kept

Each epoch: every learner trains one epoch (shuffled index batches from memory, augment, step, clip,
penalise); every committee is scored on its fold (boosting recomputes its weights first); the folds'
scores are averaged; the predictor's costs are added (`trainables.cost`); report; checkpoint. With
`prune`, the last epochs train under pruning masks (`trainables.pruning`). Reporting and the starting
checkpoint are injected, so the loop runs the same under Ray Tune (`builtin.train_builtin`), in each Ray
Train worker of a multi-worker trial (`distributed.train_worker`, with `ranks`: data-parallel over DDP, see
`trainables.ranks`) and in plain tests. On CUDA the training steps run in mixed precision unless `amp:
false` (`optim.amp_enabled`); evaluation stays in float32, so the reported scores are those of the exported
model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.augment import augment_batch
from trainables.catalog import SEARCHABLE_METRICS
from trainables.checkpoint import load_checkpoint, model_record, restore_rng, rng_state, save_checkpoint
from trainables.context import TrialContext
from trainables.cost import fixed_costs, nonzero_params
from trainables.data import Dataset, DataSpec, load_dataset
from trainables.features import FeatureFit, feature_metrics
from trainables.knobs import Knobs, TrainingConfig, parse_knobs
from trainables.models import Ensemble, Recoded, build_model, new_recode, require_data_kind
from trainables.models.ensemble import combine
from trainables.models.rnn import sequence_lengths
from trainables.optim import (
    amp_enabled,
    load_optimizer_state,
    lr_factor,
    make_optimizer,
    new_scaler,
    penalised_weights,
    set_lr,
    weight_penalty,
)
from trainables.pruning import PruneSchedule, masked, still_to_prune
from trainables.quantize import quantize, quiet
from trainables.ranks import Ranks
from trainables.transfer import apply_init_from, freeze_features, keep_frozen_in_eval, trainable_parameters
from trainables.validation import require

#: `report(metrics, checkpoint_dir)`: checkpoint_dir is None, or a folder that exists only during the call
Reporter = Callable[[dict[str, Any], Path | None], None]

#: rows per forward pass when scoring: large batches keep a GPU busy, but on the CPU activations that no
#: longer fit in cache make them slower (a 28x28 cnn scores 1,000 images 2.5x faster in batches of 128
#: than of 1,024 on one thread; text and tables alike or better), hence a smaller batch there
EVAL_BATCH_SIZE = 1024
CPU_EVAL_BATCH_SIZE = 128
#: SAMME's weighted error is kept in [ERR_CLIP, 1 - ERR_CLIP], so a perfect member gets a large, finite alpha
ERR_CLIP = 1e-6


@dataclass(frozen=True)
class Split:
    """One split's tensors on the trial's device.

    For text, also each row's token count on the CPU, with the rows sorted longest first: a batch of rows
    in ascending order is then sorted by length, which `pack_padded_sequence` takes with no host sync.
    """

    x: Tensor
    y: Tensor
    lengths: Tensor | None = None

    @classmethod
    def of(cls, x: Tensor, y: Tensor, kind: str) -> Split:
        if kind != "text":
            return cls(x, y)
        lengths = sequence_lengths(x).cpu()  # one host sync per split and trial
        order = lengths.argsort(descending=True, stable=True)
        on_device = order.to(x.device)
        return cls(x[on_device], y[on_device], lengths[order])

    def model_inputs(self, x: Tensor, rows: Tensor | slice) -> tuple[Tensor, ...]:
        """What the model takes for rows `rows` whose inputs are `x`: `(x,)`, or `(x, lengths)` for text."""
        return (x,) if self.lengths is None else (x, self.lengths[rows])


@dataclass
class Learner:
    """One model in training, its optimizer, and the training rows it learns from."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    penalised: list[nn.Parameter]
    #: indices into the training split, on the CPU (bagging's bootstrap sample); None: every row
    rows: Tensor | None = None
    #: boosting: each training row's weight in the loss (mean 1); None: unweighted
    sample_weight: Tensor | None = None
    #: the module training calls: `model` in DDP for a multi-worker trial (`Ranks.wrap`); None: `model`
    net: nn.Module | None = None
    #: mixed precision's loss scaler; disabled (a pass-through) without `amp`
    scaler: torch.amp.GradScaler = field(default_factory=lambda: new_scaler(torch.device("cpu"), False))


@dataclass
class Committee:
    """The learners of one data fold, and the predictor their models make together."""

    train: Split
    val: Split
    learners: list[Learner]
    method: str  # "single" | "bagging" | "boosting"
    #: the learner's model, or an `Ensemble` of the learners' models (its `weights`: SAMME's alphas)
    predictor: nn.Module


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float
    samples: int
    seconds: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


@dataclass(frozen=True)
class Progress:
    """How far a trial got, and its best value of the experiment's metric so far (for early stopping)."""

    epoch: int = 0
    best: float | None = None
    best_epoch: int = 0

    def after(self, epoch: int, value: float, mode: str) -> Progress:
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        return Progress(epoch, value, epoch) if better else Progress(epoch, self.best, self.best_epoch)

    @property
    def epochs_without_improvement(self) -> int:
        return self.epoch - self.best_epoch


def run_training(config: Mapping[str, Any], context: TrialContext, *, report: Reporter,
                 start_checkpoint: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", ranks: Ranks = Ranks()) -> None:
    """Train built-in `context.trainable` with the knobs in `config`, calling `report` once per epoch.

    The trial ends itself after `planned_epochs`, after `early_stopping_patience` epochs without an
    improvement of `context.metric`, or at the end of the first epoch with a non-finite training or
    validation loss (one last report with `diverged: True` and no checkpoint; no exception, so the
    experiment goes on). With `prune`, its models are pruned before the last quarter of the epochs, and
    patience running out before that moves the pruning forward instead of ending the trial (the rule:
    `trainables.pruning`); every report then says whether it is `pruned`.
    Every report carries what the predictor costs (`trainables.cost`: `params` counted each epoch,
    `model_bytes` and `latency_ms` measured after the first and carried on, across a resume too); with
    `context.quantize` the last report also scores its int8 copy (`int8_scores`).
    With `start_checkpoint` (a folder holding `checkpoint.pt`) it continues from the epoch after the saved
    one with every learner's model, optimizer, sample weights and the RNG states as they were, so the rest
    of the run matches an uninterrupted one.
    With `ranks` of a process group, this process is one of the trial's data-parallel workers: it trains
    on its shard of the training split, every rank reports the same metrics, and only rank 0 hands
    `report` a checkpoint (every rank calls `report` every epoch, as Ray Train wants).
    """
    require(context.metric in SEARCHABLE_METRICS, "metric", context.metric,
            f"must be one a built-in reports ({', '.join(SEARCHABLE_METRICS)})")
    knobs = parse_knobs(context.trainable, config)
    settings = knobs.training
    device = torch.device(device)
    data = load_dataset(context.data, context.seed, **knobs.model.data_options())
    require_data_kind(context.trainable, knobs.family, data.kind)
    folds = DataSpec.from_dict(context.data).folds
    parts = data.folds(folds, context.seed) if folds > 1 else [data]
    record = model_record(context.trainable, knobs, data.input_shape, data.n_classes, context.data, context.seed,
                          folds=folds)
    if data.vocab is not None:
        record["vocab"] = list(data.vocab)
    resume = load_checkpoint(start_checkpoint) if start_checkpoint is not None else None
    if resume is not None:
        same_model = all(resume[key] == record[key] for key in ("trainable", "input_shape")) and \
            same_model_config(resume["model_config"], record["model_config"], type(knobs.model))
        require(same_model, "start_checkpoint", str(start_checkpoint),
                f"holds a different model ({resume['trainable']} {resume['model_config']}) than this trial's")

    torch.manual_seed(context.seed)
    transfer = Transfer(settings, context.storage, resuming=resume is not None, data=context.data)
    committees = [new_committee(knobs, part, fold, context.seed, device, transfer, ranks)
                  for fold, part in enumerate(parts)]
    predictor = committees[0].predictor if folds <= 1 else cross_validated(committees, data, parts, knobs, device)
    learners = [learner for committee in committees for learner in committee.learners]
    shuffle = torch.Generator().manual_seed(context.seed)
    augment_generator = torch.Generator(device=device).manual_seed(context.seed)
    augment = None
    if settings.augment > 0:
        augment = functools.partial(augment_batch, kind=data.kind, strength=settings.augment,
                                    generator=augment_generator, flips=data.flips)
    planned = settings.planned_epochs(context.max_epochs)
    schedule = PruneSchedule.planned(settings.prune, planned)  # None without `prune`
    progress = Progress()
    costs: dict[str, float | int] | None = None  # model_bytes and latency_ms, measured once
    if resume is not None:
        predictor.load_state_dict(resume["model"])
        for learner, saved in zip(learners, resume["learners"], strict=True):
            load_optimizer_state(learner.optimizer, saved["optimizer"])
            if saved["sample_weight"] is not None:
                learner.sample_weight = saved["sample_weight"].to(device)
            if saved.get("scaler") and learner.scaler.is_enabled():  # {} from a run without amp
                learner.scaler.load_state_dict(saved["scaler"])
        restore_rng(resume["rng"], shuffle, augment_generator)
        best = resume["best"]
        progress = Progress(resume["epoch"], best["value"], best["epoch"])
        schedule = PruneSchedule.resumed(settings.prune, planned, resume.get("prune"), resume["epoch"],
                                         resume["planned_epochs"])
        costs = carried_costs(resume["metrics"])

    for epoch in range(progress.epoch + 1, (schedule.last if schedule is not None else planned) + 1):
        lr = settings.lr * lr_factor(settings.lr_schedule, epoch - 1, planned)
        for learner in learners:
            set_lr(learner.optimizer, lr)
        if schedule is not None and epoch == schedule.start:
            progress = Progress(epoch - 1)  # the pruned model's best is among its pruned epochs
        with masked([learner.model for learner in learners], schedule, epoch):
            scores = run_epoch(committees, settings, shuffle, augment, data.n_classes, ranks)
        metrics = {"epoch": epoch, **scores, "planned_epochs": planned, "early_stopped": False,
                   **feature_metrics(knobs.model, data)}
        if costs is None:  # the architecture is fixed now; every rank reports rank 0's timing
            costs = ranks.from_rank0(fixed_costs(predictor, committees[0].val.x, committees[0].val.lengths), device)
        metrics.update(params=nonzero_params(predictor), **costs)
        if schedule is not None:
            metrics["pruned"] = schedule.pruned(epoch)
            if not metrics["pruned"]:  # what the exported model will have (see `trainables.pruning`)
                metrics["params"] -= still_to_prune([learner.model for learner in learners], schedule.amount)
        if epoch == 1 and transfer.report is not None:
            metrics["transfer_loaded"] = len(transfer.report["loaded"])
            metrics["transfer_skipped"] = len(transfer.report["skipped"])
        if metrics["diverged"]:
            report(metrics, None)  # a diverged model is not worth a checkpoint
            return
        progress = progress.after(epoch, metrics[context.metric], context.mode)
        stop, schedule = stops_early(progress, settings.early_stopping_patience, schedule, planned)
        metrics["early_stopped"] = stop
        if (stop or epoch == planned) and context.quantize:
            metrics.update(int8_scores(predictor, committees, parts, data))
        if (stop or epoch == planned or epoch % context.checkpoint_every == 0) and ranks.writes_checkpoints:
            with tempfile.TemporaryDirectory(prefix="tunerd-ckpt-") as folder:
                save_checkpoint({
                    **record, "epoch": epoch, "planned_epochs": planned, "metrics": metrics,
                    "best": {"metric": context.metric, "mode": context.mode, "value": progress.best,
                             "epoch": progress.best_epoch},
                    "model": predictor.state_dict(),
                    "learners": [{"optimizer": learner.optimizer.state_dict(),
                                  "sample_weight": learner.sample_weight,
                                  "scaler": learner.scaler.state_dict()} for learner in learners],
                    "scheduler": {"lr_schedule": settings.lr_schedule, "base_lr": settings.lr,
                                  "planned_epochs": planned},
                    "rng": rng_state(shuffle, augment_generator),
                    "prune": schedule.as_dict() if schedule is not None else None,
                }, folder)
                report(metrics, Path(folder))
        else:
            report(metrics, None)
        if stop:
            return


def stops_early(progress: Progress, patience: int, schedule: PruneSchedule | None,
                planned: int) -> tuple[bool, PruneSchedule | None]:
    """Whether the trial ends early after epoch `progress.epoch`, and its pruning schedule from then on.

    Patience running out ends a trial, but one that has yet to prune prunes at the next epoch instead; a
    schedule moved forward that way ends the trial when its fine-tuning does (`trainables.pruning`).
    """
    epoch = progress.epoch
    out_of_patience = patience > 0 and progress.epochs_without_improvement >= patience
    if out_of_patience and schedule is not None and not schedule.pruned(epoch):
        return False, schedule.brought_forward(epoch)
    return out_of_patience or (schedule is not None and epoch == schedule.last < planned), schedule


def carried_costs(metrics: Mapping[str, Any]) -> dict[str, float | int] | None:
    """The costs measured once (`cost.fixed_costs`) from a checkpoint's last report; None when it has
    none (written before them): then they are measured again."""
    keys = ("model_bytes", "latency_ms")
    return {key: metrics[key] for key in keys} if all(key in metrics for key in keys) else None


def int8_scores(predictor: nn.Module, committees: list[Committee], parts: list[Dataset],
                data: Dataset) -> dict[str, float | int]:
    """`int8_val_accuracy` and `int8_bytes` of the int8 copy of `predictor` that `export.quantize_export`
    would write (the same `quantize.quantize`, calibrated on the same training rows), scored on the CPU.
    With k folds, as for val_accuracy, each fold's predictor is quantised on its own training rows and
    scored on its own val rows, and the accuracies are averaged; the bytes are the whole predictor's."""
    copies = [quantize(committee.predictor, part.x_train) for committee, part in zip(committees, parts, strict=True)]
    with quiet():
        accuracy = float(np.mean([evaluate(copy.model, part.x_val, part.y_val)[1]
                                  for copy, part in zip(copies, parts, strict=True)]))
    whole = copies[0] if len(parts) == 1 else quantize(predictor, data.x_train)
    return {"int8_val_accuracy": accuracy, "int8_bytes": whole.size_bytes()}


def same_model_config(saved: Mapping[str, Any], current: Mapping[str, Any], family: type) -> bool:
    """Whether a checkpoint's `model_config` describes the trial's model. A knob added to the family after
    the checkpoint was written (`select_features`, `pca`) is missing from it: it counts as its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(family)}
    added = {key: value for key, value in current.items()
             if key not in saved and key in defaults and value == defaults[key]}
    return {**saved, **added} == dict(current)


def run_epoch(committees: list[Committee], settings: TrainingConfig, shuffle: torch.Generator,
              augment: Callable[[Tensor], Tensor] | None, n_classes: int, ranks: Ranks = Ranks()) -> dict[str, Any]:
    """Every learner trains one epoch, every committee is scored; the trial's scores, standard keys first
    (rank 0's on every rank of a multi-worker trial)."""
    stats: list[EpochStats] = []
    scores = []
    for committee in committees:
        trained = [train_epoch(learner, committee.train, settings, shuffle, augment, ranks)
                   for learner in committee.learners]
        stats.extend(trained)
        scores.append(score(committee, trained, n_classes))
    summary = summarise(scores)
    train_loss, train_accuracy = summary.pop("train_loss"), summary.pop("train_accuracy")
    val_loss, val_accuracy = summary.pop("val_loss"), summary.pop("val_accuracy")
    return ranks.from_rank0({
        "train_loss": train_loss, "train_accuracy": train_accuracy, "val_loss": val_loss,
        "val_accuracy": val_accuracy, "generalization_gap": train_accuracy - val_accuracy,
        "samples_per_s": sum(s.samples for s in stats) / max(sum(s.seconds for s in stats), 1e-9),
        # the last step can break the weights too, hence the val loss
        "diverged": not (all(s.finite for s in stats) and math.isfinite(val_loss)),
        **summary,
    }, committees[0].val.y.device)


class Transfer:
    """`init_from` and `freeze_features` applied to each new model (see `trainables.transfer`).

    A resumed trial does not load `init_from` again: its checkpoint holds the weights, and the source may
    be gone. `report` keeps the first model's `{"loaded", "skipped"}` (every model of a trial is alike).
    """

    def __init__(self, settings: TrainingConfig, storage: str | None, *, resuming: bool,
                 data: Mapping[str, Any] | None = None) -> None:
        self.init_from = None if resuming else settings.init_from
        self.freeze = settings.freeze_features
        self.storage = storage
        self.data = data  # the trial's data spec: a head trained on other labels is not loaded
        self.report: dict[str, list[str]] | None = None

    def __call__(self, model: nn.Module) -> None:
        if self.init_from is not None:
            loaded = apply_init_from(model, self.init_from, storage=self.storage, data=self.data)
            if self.report is None:
                self.report = loaded
                skipped = "".join(f"\n  {name}" for name in loaded["skipped"])
                print(f"init_from {self.init_from}: loaded {len(loaded['loaded'])} tensors, skipped "
                      f"{len(loaded['skipped'])}{':' if skipped else ''}{skipped}")
        if self.freeze:
            freeze_features(model)


def new_committee(knobs: Knobs, data: Dataset, fold: int, seed: int, device: torch.device,
                  transfer: Transfer, ranks: Ranks = Ranks()) -> Committee:
    """Fresh learners for one fold: one model, or an ensemble's members with their rows and weights (each
    model in DDP of its own in a multi-worker trial, so ensembles and folds train data-parallel too)."""
    settings, ensemble = knobs.training, knobs.ensemble
    amp = amp_enabled(settings.amp, device)
    data = data.to(device)
    train, val = Split.of(data.x_train, data.y_train, data.kind), Split.of(data.x_val, data.y_val, data.kind)
    method = ensemble.method if ensemble is not None else "single"
    fit_features = FeatureFit(knobs.model, data, seed)  # select_features / pca, on this fold's training rows
    learners = []
    for member in range(ensemble.members if ensemble is not None else 1):
        model = build_model(knobs.family, knobs.model, data.input_shape, data.n_classes)
        transfer(model)
        fit_features(model)
        model.to(device)
        optimizer = make_optimizer(settings.optimizer, trainable_parameters(model), settings.lr, settings.momentum,
                                   fused=amp)
        learner = Learner(model, optimizer, penalised_weights(model), net=ranks.wrap(model),
                          scaler=new_scaler(device, amp))
        if ensemble is not None:
            learner.rows = member_rows(method, ensemble.sample_fraction, len(train.y), (seed, fold, member))
        if method == "boosting":
            learner.sample_weight = torch.ones(len(train.y), device=device)
        learners.append(learner)
    predictor = learners[0].model if ensemble is None else Ensemble([learner.model for learner in learners]).to(device)
    return Committee(train, val, learners, method, predictor)


def member_rows(method: str, fraction: float, n: int, seeds: tuple[int, ...]) -> Tensor | None:
    """An ensemble member's training rows, drawn once, seeded by (trial seed, fold, member): bagging, a
    bootstrap sample (with replacement) of round(fraction * n); boosting, all rows, or at fraction < 1 a
    sample of that size without replacement. At least 2 rows (a batch-norm batch)."""
    size = max(2, round(fraction * n))
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(list(seeds)).generate_state(1)[0]))
    if method == "bagging":
        return torch.randint(n, (size,), generator=generator)
    return torch.randperm(n, generator=generator)[:size] if size < n else None


def cross_validated(committees: list[Committee], data: Dataset, parts: list[Dataset], knobs: Knobs,
                    device: torch.device) -> Ensemble:
    """The fold predictors averaged, each behind the map from `data`'s input encoding (what the test split
    is scored with) to the encoding its fold was fitted with: vocabulary for text, scaling for tabular."""
    members = []
    for committee, part in zip(committees, parts, strict=True):
        recode = new_recode(knobs.family, knobs.model.data_options(), data.input_shape)
        if data.kind == "text":
            recode.fit(data.vocab, part.vocab)
        else:
            recode.fit(data.scaling, part.scaling)  # None for images: not rescaled
        members.append(Recoded(recode, committee.predictor))
    return Ensemble(members).to(device)


def train_epoch(learner: Learner, split: Split, settings: TrainingConfig, shuffle: torch.Generator,
                augment: Callable[[Tensor], Tensor] | None = None, ranks: Ranks = Ranks()) -> EpochStats:
    """One pass over the learner's training rows in shuffled mini-batches indexed straight from memory.

    `loss` and `accuracy` are running means over the epoch's batches (unweighted cross-entropy without
    the l1/l2 penalty, so they compare with val_loss), measured while training: cheaper than a second
    pass, and the usual Keras-style numbers. Each batch's logits are kept (detached, on the device) and
    scored once when the epoch ends, so a batch costs nothing beyond its step and there is no per-batch
    host sync; a non-finite loss is therefore noticed at the end of its epoch.
    A trailing batch of one sample is skipped (batch norm cannot train on it); which sample that is
    changes every epoch.
    Data-parallel (`ranks`): this rank steps through its shard of the order with its share of the batch,
    DDP averages the gradients, and the scores are the means over every rank's rows.
    """
    model, optimizer, weight, lengths = learner.model, learner.optimizer, learner.sample_weight, split.lengths
    net, scaler = model if learner.net is None else learner.net, learner.scaler
    penalised = learner.penalised if settings.l1 > 0 or settings.l2 > 0 else None
    clip = settings.grad_clip
    model.train()
    keep_frozen_in_eval(model)
    order = torch.randperm(len(split.y) if learner.rows is None else len(learner.rows), generator=shuffle)
    if learner.rows is not None:
        order = learner.rows[order]
    order = ranks.shard(order)
    batches = list(order.split(ranks.local_batch_size(settings.batch_size)))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    if lengths is not None:
        batches = [batch.sort().values for batch in batches]  # rows are longest first: so is each batch
    sizes = [len(batch) for batch in batches]
    order = torch.cat(batches).to(split.x.device)  # the epoch's one host-to-device copy
    outputs: list[Tensor] = []
    # Without amp (always on the CPU) a step is exactly the plain PyTorch step: no autocast context built per
    # batch and no pass-through scaler calls, which cost a small model ~1% of its epoch
    # (benchmarks/throughput.py). One autocast object serves every batch: it is entered one batch at a time.
    amp = scaler.is_enabled()
    autocast = torch.autocast(split.x.device.type, dtype=torch.float16) if amp else contextlib.nullcontext()
    started = time.perf_counter()
    for rows, index in zip(batches, order.split(sizes)):
        inputs, targets = split.x[index], split.y[index]
        if augment is not None:
            inputs = augment(inputs)
        with autocast:
            logits = net(inputs) if lengths is None else net(inputs, lengths[rows])
            if weight is None:
                objective = F.cross_entropy(logits, targets)
            else:
                objective = (F.cross_entropy(logits, targets, reduction="none") * weight[index]).mean()
            if penalised is not None:
                objective = objective + weight_penalty(penalised, settings.l1, settings.l2)
        optimizer.zero_grad(set_to_none=True)
        if amp:
            scaler.scale(objective).backward()
            if clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            objective.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        outputs.append(logits.detach())
    ranks.sync_buffers(model)
    with torch.no_grad():
        scores = torch.stack(loss_and_accuracy(torch.cat(outputs).float(), split.y[order]))
        means, samples = ranks.weighted_mean(scores, len(order))
        loss, accuracy, samples = to_floats(*means, samples)
    elapsed = time.perf_counter() - started  # after .item(): waits for queued GPU work
    return EpochStats(loss, accuracy, int(samples), elapsed)


def score(committee: Committee, trained: list[EpochStats], n_classes: int) -> dict[str, float]:
    """The committee's train and val loss and accuracy on its fold (for an ensemble, also each member's).

    One model: train scores are its running means from training. An ensemble never trains as one, so its
    train scores come from a pass over the whole training split in eval mode, as its val scores do, and
    each member's are measured on the same rows. Boosting recomputes its weights from that pass first.
    """
    if committee.method == "single":
        loss, accuracy = loss_and_accuracy(predict(committee.predictor, committee.val), committee.val.y)
        return {"train_loss": trained[0].loss, "train_accuracy": trained[0].accuracy,
                **as_floats({"val_loss": loss, "val_accuracy": accuracy})}
    train_logits = [predict(learner.model, committee.train) for learner in committee.learners]
    if committee.method == "boosting":
        boost(committee, train_logits, n_classes)
    val_logits = [predict(learner.model, committee.val) for learner in committee.learners]
    weights = committee.predictor.weights
    values: dict[str, Tensor] = {}
    values["train_loss"], values["train_accuracy"] = loss_and_accuracy(combine(train_logits, weights),
                                                                       committee.train.y)
    values["val_loss"], values["val_accuracy"] = loss_and_accuracy(combine(val_logits, weights), committee.val.y)
    for i, (train, val) in enumerate(zip(train_logits, val_logits)):
        values[f"member{i}_train_accuracy"] = loss_and_accuracy(train, committee.train.y)[1]
        values[f"member{i}_val_accuracy"] = loss_and_accuracy(val, committee.val.y)[1]
        if committee.method == "boosting":
            values[f"member{i}_alpha"] = weights[i]
    return as_floats(values)


@torch.no_grad()
def boost(committee: Committee, train_logits: list[Tensor], n_classes: int) -> None:
    """Multi-class AdaBoost, SAMME (Zhu, Zou, Rosset & Hastie 2009), over the members in order.

    With w_1 uniform over the training rows and, for m = 1..M,
        err_m   = sum_i w_m,i [member m misclassifies row i]   (w_m sums to 1; err_m clipped to
                  [ERR_CLIP, 1 - ERR_CLIP])
        alpha_m = max(0, log((1 - err_m) / err_m) + log(K - 1))   (0: no better than chance, 1 - 1/K)
        w_m+1   = w_m * exp(alpha_m [misclassified]), normalised
    member m trains its next epoch on w_m (scaled to mean 1 in its loss), and the ensemble predicts with
    the alpha-weighted mean of the members' probabilities (`models.ensemble.combine`). Members train in
    lockstep, so each epoch's weights come from the previous epoch's members (uniform in epoch 1).
    """
    y = committee.train.y
    n = len(y)
    weight = torch.full((n,), 1.0 / n, device=y.device)
    alphas = []
    for learner, logits in zip(committee.learners, train_logits, strict=True):
        learner.sample_weight = weight * n
        missed = (logits.argmax(dim=1) != y).float()
        error = (weight * missed).sum().clamp(ERR_CLIP, 1.0 - ERR_CLIP)
        alpha = (torch.log((1.0 - error) / error) + math.log(n_classes - 1)).clamp_min(0.0)
        weight = weight * torch.exp(alpha * missed)
        weight = weight / weight.sum()
        alphas.append(alpha)
    committee.predictor.weights.copy_(torch.stack(alphas))


def summarise(scores: list[dict[str, float]]) -> dict[str, float]:
    """One fold: its scores. k folds: each score's mean over the folds, the spread (population std) of the
    val scores, and each fold's val accuracy."""
    if len(scores) == 1:
        return dict(scores[0])
    summary = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    for key in ("val_accuracy", "val_loss"):
        summary[f"{key}_std"] = float(np.std([s[key] for s in scores]))
    summary.update({f"fold{i}_val_accuracy": s["val_accuracy"] for i, s in enumerate(scores)})
    return summary


def eval_batch_size(device: torch.device) -> int:
    return CPU_EVAL_BATCH_SIZE if device.type == "cpu" else EVAL_BATCH_SIZE


@torch.no_grad()
def predict(model: nn.Module, split: Split, batch_size: int | None = None) -> Tensor:
    """`model`'s logits (eval mode) for every row of `split`, in order, on the split's device (in batches of
    `batch_size` rows; None: the device's `eval_batch_size`)."""
    batch_size = batch_size or eval_batch_size(split.x.device)
    model.eval()
    chunks = []
    for start in range(0, len(split.y), batch_size):
        rows = slice(start, start + batch_size)
        chunks.append(model(*split.model_inputs(split.x[rows], rows)))
    return torch.cat(chunks)


def loss_and_accuracy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and accuracy, as 0-d tensors on the device (no host sync).

    The cross-entropy is written out as logsumexp minus the true class's logit: the same value as
    `F.cross_entropy`, whose CPU log-softmax over a few classes is ~4x slower on one thread (0.3 ms for an
    epoch's 3,000 logits of 10 classes, ~1% of a small mlp's epoch; benchmarks/throughput.py).
    """
    picked = logits.gather(1, y[:, None])[:, 0]
    return (logits.logsumexp(dim=1) - picked).mean(), (logits.argmax(dim=1) == y).double().mean()


def to_floats(*values: Tensor) -> list[float]:
    """0-d tensors to Python floats with one host sync."""
    return torch.stack([value.detach().double() for value in values]).tolist()


def as_floats(values: Mapping[str, Tensor]) -> dict[str, float]:
    return dict(zip(values, to_floats(*values.values())))


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (in eval mode) on `(x, y)`."""
    require(len(y) > 0, "split", 0, "has no samples to evaluate")
    loss, accuracy = loss_and_accuracy(predict(model, Split(x, y), batch_size), y)
    return loss.item(), accuracy.item()
