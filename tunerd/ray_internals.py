"""Every place tunerd relies on a private part of Ray (and of the libraries around it), in one module.

Each use is one function here, with the reason no public API does it, and a test in
`tests/test_ray_internals.py` that fails loudly, naming the function, when a Ray release moves or changes
what it touches. `pyproject.toml` bounds Ray to the versions those tests passed on. The libraries are
imported inside the functions: importing this module costs nothing.

(The built-in trainables' multi-worker trial needs one of them too, `train_controller_callback`; it lives
here with the others rather than in a second such module.)
"""
from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

#: the Ray versions the tests of this module passed on (pyproject.toml's bound)
TESTED_RAY = ("2.60",)


# --- Tune ---------------------------------------------------------------------------------------------------

def replace_restored_callbacks(tuner: Any, callbacks: list[Any]) -> None:
    """Give a restored Tuner new callbacks. Ray pickles the run config, callbacks included, into tuner.pkl
    when the Tuner is created, so `Tuner.restore` brings back callbacks holding the record as it was then;
    `restore` takes no callbacks, and the run config `fit` uses is only reachable through the private
    `_local_tuner`."""
    tuner._local_tuner.get_run_config().callbacks = callbacks


def extend_restored_search(tuner: Any, *, trials: int, samples: int) -> None:
    """Let a restored Tuner's search create `trials` more trials (`tunerd resume --extend`; `samples`: the
    samples those are, a random search with grid axes making a whole grid of trials per sample).

    Ray restores a search algorithm's budget (how many trials it may create) from its saved state inside
    `fit`, after `restore` returned; no public API changes it, and the search algorithm is only reachable
    through the private `_local_tuner`. Here it is replaced by one that, once Ray has restored it, grows the
    budget and is no longer finished; the searcher's own state (its model, its random state) is restored
    as it was, so it goes on where it stopped."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher, SearchGenerator

    config = tuner._local_tuner._tune_config
    search_alg = config.search_alg
    if isinstance(search_alg, Searcher):
        if config.max_concurrent_trials:  # as `tune.run` wraps a Searcher (it leaves a SearchGenerator alone)
            search_alg = ConcurrencyLimiter(search_alg, max_concurrent=config.max_concurrent_trials)
            config.max_concurrent_trials = None
        config.search_alg = _extended(SearchGenerator, trials=trials, samples=samples)(search_alg)
    elif isinstance(search_alg, BasicVariantGenerator):
        extended = _extended(BasicVariantGenerator, trials=trials, samples=samples)()
        extended.__dict__.update(search_alg.__dict__)  # Ray's restore replaces it with the saved state
        config.search_alg = extended
    else:
        raise TypeError(f"cannot extend a {type(search_alg).__name__} search")


def _extended(base: type, *, trials: int, samples: int) -> type:
    from ray.tune.search import BasicVariantGenerator

    class Extended(base):  # type: ignore[misc, valid-type]
        def restore_from_dir(self, dirpath: str) -> None:
            super().restore_from_dir(dirpath)
            self._total_samples += trials
            if isinstance(self, BasicVariantGenerator):  # a random search: its last iterator draws on
                self._iterators[-1].num_samples_left += samples
                self._iterators[-1].num_samples += samples
            self._finished = False

    return Extended


#: Ray Tune's loggers and messages for an errored trial (a traceback through Tune's internals each time)
TRIAL_ERROR_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")
TRIAL_ERROR_MESSAGES = ("Trial task failed", "Trials did not complete")


class _TrialErrorLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRIAL_ERROR_MESSAGES)


@contextlib.contextmanager
def quiet_trial_tracebacks() -> Iterator[None]:
    """Drop Ray Tune's log records about errored trials ("Trial task failed for trial ...", "Trials did not
    complete: [...]"): tunerd reports each errored trial in one line with the path of its full traceback
    (the trial's error.txt, which Ray Tune writes either way). Ray has no switch for them; the logger names
    and messages are its internals."""
    loggers = [logging.getLogger(name) for name in TRIAL_ERROR_LOGGERS]
    dropper = _TrialErrorLogFilter()
    for logger in loggers:
        logger.addFilter(dropper)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(dropper)


@functools.cache
def median_rule_without_pauses() -> type:
    """Ray's MedianStoppingRule without its time-sharing. Ray's rule *pauses* a trial whenever fewer than
    `min_samples_required` other trials have reached its epoch and some are pending (its `min_time_slice`
    cannot prevent the first pause), which restarts trials that do not checkpoint and churns actors. Here
    such a trial runs on until there are enough trials to compare it with: the private hook
    `_on_insufficient_samples` is the only place that decision is made."""
    from ray.tune.schedulers import MedianStoppingRule, TrialScheduler

    class MedianStopping(MedianStoppingRule):
        def _on_insufficient_samples(self, tune_controller: Any, trial: Any, time: float) -> str:
            return TrialScheduler.CONTINUE

    return MedianStopping


@functools.cache
def hyperopt_search_with_points() -> type:
    """Ray's HyperOptSearch whose first trials are given points in hyperopt's own labels (`points=` keyword:
    a list of {label: value}, a choice's value its option index), and which starts with `observed=` points
    already evaluated (a list of ({label: value}, the metric's value): a warm start, never run again).
    Ray's `points_to_evaluate` cannot reach inside a chosen branch of a conditional space, and Ray's
    HyperOptSearch takes no evaluated values; hyperopt's own `generate_trials_to_calculate` can do both (a
    point it holds as done, with its result, is an observation TPE models and counts towards its random
    start). The searcher's trial store is set up in the private `_setup_hyperopt` (`_hpopt_trials`, whose
    first `_points_to_evaluate` entries are handed out as trials, last first), and its sign in `metric_op`."""
    from ray.tune.search.hyperopt import HyperOptSearch

    class HyperOptSearchWithPoints(HyperOptSearch):
        def __init__(self, *args: Any, points: list[dict[str, Any]] = (),
                     observed: list[tuple[dict[str, Any], float]] = (), **kwargs: Any) -> None:
            self._labelled_points = list(points)
            self._observed = list(observed)
            super().__init__(*args, points_to_evaluate=None, **kwargs)

        def _setup_hyperopt(self) -> None:
            super()._setup_hyperopt()
            if self._labelled_points or self._observed:
                import hyperopt
                from hyperopt.fmin import generate_trials_to_calculate

                # hyperopt takes initial points last-in first-out: reverse them so they run in file order
                labels = [*reversed(self._labelled_points), *(point for point, _ in self._observed)]
                self._hpopt_trials = generate_trials_to_calculate(labels)
                self._hpopt_trials.refresh()
                for trial, (_, value) in zip(self._hpopt_trials.trials[len(self._labelled_points):], self._observed):
                    trial["state"] = hyperopt.JOB_STATE_DONE
                    trial["result"] = {"loss": self.metric_op * value, "status": hyperopt.STATUS_OK}
                self._hpopt_trials.refresh()
                self._points_to_evaluate = len(self._labelled_points)

    return HyperOptSearchWithPoints


def optuna_study(searcher: Any) -> Any:
    """The Optuna study inside Ray's `OptunaSearch`, for observations of earlier trials (`study.add_trial`):
    Ray's own `add_evaluated_point` refuses a define-by-run space (tunerd's), and the study is its private
    `_ot_study` (created when the searcher has its space, metric and mode)."""
    return searcher._ot_study


def ga_generation_key(sampler: Any) -> str:
    """The system attribute in which Optuna's genetic-algorithm samplers (NSGA-II) keep a trial's generation:
    a completed trial added to the study with generation 0 is a parent of the next (a warm start). Optuna
    names the key only through its private `_get_generation_key`."""
    return sampler._get_generation_key()


# --- Ray Train ----------------------------------------------------------------------------------------------

def train_controller_callback() -> type:
    """Ray Train V2's `ControllerCallback`: the only way to run code in a Train run's controller (a public
    `UserCallback` is called through a handler that knows no controller events; Ray's own workarounds use
    internal callbacks the same way)."""
    from ray.train.v2._internal.execution.callback import ControllerCallback

    return ControllerCallback


# --- Ray core: authentication, the embedded node, placement groups ------------------------------------------

def use_token_if_present() -> None:
    """`ray.init(address=...)`, Ray Client and the job client send the cluster's token only in `token` mode:
    turn that mode on when Ray's own loader finds a token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH,
    ~/.ray/auth_token), the way `ray start` does, unless RAY_AUTH_MODE says otherwise. The token itself is
    never read here, printed or stored. Ray exposes this step only privately."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def force_token_auth() -> None:
    """Token authentication on for the Ray this process starts (the environment of the processes Ray starts,
    and Ray's cached configuration here), whatever RAY_AUTH_MODE says: only privately available."""
    from ray._private.authentication.authentication_token_setup import _enable_token_auth

    _enable_token_auth()


def start_loopback_ray(**init: Any) -> None:
    """`ray.init(**init)` of a local Ray whose servers bind to 127.0.0.1 alone. Ray's switch for "this node
    may join a multi-node cluster" must be off while it starts (else Ray replaces a node IP of 127.0.0.1
    with the machine's network address and listens on every interface): the processes Ray starts read it
    from the environment (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER), this driver from a constant read at import
    time; and the node IP is `ray.init`'s private `_node_ip_address`."""
    import os

    import ray
    from ray._private import ray_constants

    variable = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    saved = os.environ.get(variable), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[variable], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        ray.init(_node_ip_address="127.0.0.1", **init)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]
        if saved[0] is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved[0]


def local_ray_processes() -> tuple[str, list[int]]:
    """The session folder and the pids of the core processes of the Ray this driver started (GCS, raylet,
    ...): no public API lists a local Ray's processes."""
    import ray

    node = ray._private.worker._global_node
    pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
    return node.get_session_dir_path(), pids


def placement_groups_of_dead_actors(job_id: str) -> list[str]:
    """Hex ids of the job's placement groups, not removed, that an actor created and that actor is dead.
    The public `placement_group_table()` leaves out the creator; the GCS's own records, read the way
    `ray._private.state` reads them (no dashboard needed), hold it."""
    from ray._private import state
    from ray.core.generated import gcs_pb2

    removed = gcs_pb2.PlacementGroupTableData.REMOVED
    found = []
    for raw in state.state._connect_and_get_accessor().get_placement_group_table():
        group = gcs_pb2.PlacementGroupTableData.FromString(raw)
        by_an_actor = group.creator_actor_id != b"\xff" * len(group.creator_actor_id)  # nil: the driver
        if (group.state != removed and by_an_actor and group.creator_actor_dead and not group.is_detached
                and group.creator_job_id.hex() == job_id):
            found.append(group.placement_group_id.hex())
    return found


def placement_group(group_id: str) -> Any:
    """The PlacementGroup handle of a hex id (for `remove_placement_group`): its id type is private."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    return PlacementGroup(PlacementGroupID(bytes.fromhex(group_id)))


# --- bayes_opt ----------------------------------------------------------------------------------------------

def acquisition_maximised_by(base: type, maximise: Any) -> type:
    """bayes_opt acquisition class `base` whose maximisation is `maximise(acq, space, random_state)`, returning
    the point. bayes_opt finds the maximum in its private `_acq_min`: random candidates, then L-BFGS-B with
    numerical gradients from 10 of them (a GP prediction per point and step: 0.28 s of a 0.55 s suggestion
    at 100 observations), or differential evolution on mixed spaces (seconds). No public hook replaces it."""

    class Maximised(base):  # type: ignore[misc, valid-type]
        def _acq_min(self, acq: Any, space: Any, random_state: Any, n_random: int = 0, n_smart: int = 0) -> Any:
            return maximise(acq, space, random_state)

    Maximised.__name__ = Maximised.__qualname__ = f"Maximised{base.__name__}"
    return Maximised


def bayes_opt_regressor(optimizer: Any) -> Any:
    """The Gaussian process a `BayesianOptimization` fits in `suggest`: bayes_opt 3 has no public handle on
    it, and tunerd predicts with it (the believed values of running trials) and reads its fitted kernel."""
    return optimizer._gp


def kill_trial_actor(trial: Any) -> bool:
    """Kill the actor running `trial` (a hung trial, `tunerd.hangs`): Ray Tune then handles it as a crashed
    trial (retried from its last checkpoint). The actor is only reachable through the trial's private
    `temporary_state.ray_actor`; False when the trial has none (not started, or already stopped)."""
    import ray

    actor = getattr(getattr(trial, "temporary_state", None), "ray_actor", None)
    if actor is None:
        return False
    ray.kill(actor, no_restart=True)
    return True
