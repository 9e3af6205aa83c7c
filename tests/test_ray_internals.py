"""Each private part of Ray (and bayes_opt) tunerd relies on, checked where it lives (`tunerd.ray_internals`):
when a release moves or changes one, the test named after it fails, rather than a run somewhere deep."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import tomllib

from tunerd import ray_internals

REPO = Path(__file__).resolve().parents[1]


def test_the_installed_ray_is_one_these_tests_passed_on_and_pyproject_bounds_it():
    import ray

    assert ray.__version__.startswith(ray_internals.TESTED_RAY), (
        f"Ray {ray.__version__} is not one of {ray_internals.TESTED_RAY}: run tests/test_ray_internals.py on it, "
        "then add it to TESTED_RAY and to the bound in pyproject.toml")
    requirement = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
                       if r.startswith("ray["))
    low, high = re.search(r">=([\d.]+),<([\d.]+)", requirement).groups()
    assert low == min(ray_internals.TESTED_RAY) and tuple(map(int, high.split("."))) == \
        (2, max(int(v.split(".")[1]) for v in ray_internals.TESTED_RAY) + 1), requirement


def test_replace_restored_callbacks():
    from ray import tune
    from ray.tune import RunConfig

    tuner = tune.Tuner(lambda config: None, run_config=RunConfig(callbacks=[]))
    callbacks = [tune.Callback()]
    ray_internals.replace_restored_callbacks(tuner, callbacks)
    assert tuner._local_tuner.get_run_config().callbacks is callbacks


def _tuner_with(search_alg, max_concurrent=None):
    from ray import tune
    from ray.tune import TuneConfig

    return tune.Tuner(lambda config: None, tune_config=TuneConfig(search_alg=search_alg, num_samples=2,
                                                                  max_concurrent_trials=max_concurrent))


def test_extend_restored_search_grows_a_restored_searchers_budget(tmp_path):
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator
    from ray.tune.search.hyperopt import HyperOptSearch

    searcher = HyperOptSearch(metric="loss", mode="min")
    saved = SearchGenerator(searcher)
    saved.set_state({"counter": 2, "total_samples": 2, "finished": True, "experiment": None})
    saved.save_to_dir(str(tmp_path), session_str="s")
    tuner = _tuner_with(searcher, max_concurrent=2)
    ray_internals.extend_restored_search(tuner, trials=3, samples=3)
    config = tuner._local_tuner._tune_config
    extended = config.search_alg
    assert isinstance(extended, SearchGenerator) and config.max_concurrent_trials is None
    assert isinstance(extended.searcher, ConcurrencyLimiter) and extended.searcher.max_concurrent == 2
    extended.restore_from_dir(str(tmp_path))  # as Ray's TuneController.resume does
    assert extended.total_samples == 5 and not extended.is_finished()


def test_extend_restored_search_draws_more_samples_from_a_restored_variant_generator(ray_session, tmp_path):
    from ray import tune
    from ray.tune.experiment import Experiment
    from ray.tune.search import BasicVariantGenerator

    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations(Experiment("e", lambda config: None, num_samples=2,
                                            config={"x": tune.uniform(0, 1)}))
    drawn = [generator.next_trial().config["x"] for _ in range(2)]
    assert generator.next_trial() is None and generator.is_finished()
    generator.save_to_dir(str(tmp_path), session_str="s")
    tuner = _tuner_with(BasicVariantGenerator(random_state=0))
    ray_internals.extend_restored_search(tuner, trials=2, samples=2)
    extended = tuner._local_tuner._tune_config.search_alg
    extended.restore_from_dir(str(tmp_path))
    assert extended.total_samples == 4 and not extended.is_finished()
    more = [extended.next_trial().config["x"] for _ in range(2)]
    assert extended.next_trial() is None and extended.is_finished()
    assert len(set(drawn + more)) == 4  # the random state went on: nothing drawn again


def test_quiet_trial_tracebacks_names_loggers_and_messages_ray_still_uses():
    import importlib

    sources = "".join(inspect.getsource(importlib.import_module(name))
                      for name in ray_internals.TRIAL_ERROR_LOGGERS)
    for message in ray_internals.TRIAL_ERROR_MESSAGES:
        assert message in sources, f"Ray Tune no longer logs {message!r}"
    import logging

    with ray_internals.quiet_trial_tracebacks():
        logger = logging.getLogger(ray_internals.TRIAL_ERROR_LOGGERS[0])
        assert not all(f.filter(logging.makeLogRecord({"msg": "Trial task failed for trial x"}))
                       for f in logger.filters)
    assert not logging.getLogger(ray_internals.TRIAL_ERROR_LOGGERS[0]).filters


def test_median_rule_without_pauses_overrides_the_hook_ray_calls():
    from ray.tune.schedulers import MedianStoppingRule, TrialScheduler

    assert "_on_insufficient_samples(" in inspect.getsource(MedianStoppingRule.on_trial_result)
    rule = ray_internals.median_rule_without_pauses()(metric="m", mode="max")
    assert rule._on_insufficient_samples(None, None, 1) == TrialScheduler.CONTINUE


def test_hyperopt_search_with_points_starts_with_the_points_in_order():
    from hyperopt import hp

    searcher = ray_internals.hyperopt_search_with_points()(
        space={"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b"])}, metric="m", mode="max",
        points=[{"x": 0.25, "c": 1}, {"x": 0.75, "c": 0}], random_state_seed=0)
    assert searcher.suggest("t1") == {"x": 0.25, "c": "b"}
    assert searcher.suggest("t2") == {"x": 0.75, "c": "a"}
    assert 0 <= searcher.suggest("t3")["x"] <= 1


def test_hyperopt_search_with_points_holds_observed_points_as_done_without_running_them():
    from hyperopt import hp

    searcher = ray_internals.hyperopt_search_with_points()(
        space={"x": hp.uniform("x", 0, 1)}, metric="m", mode="max", points=[{"x": 0.25}],
        observed=[({"x": 0.5}, 3.0), ({"x": 0.9}, 1.0)], n_initial_points=2, random_state_seed=0)
    done = [t for t in searcher._hpopt_trials.trials if t["result"].get("status") == "ok"]
    # mode max: hyperopt minimises the negated value
    assert [(t["misc"]["vals"]["x"], t["result"]["loss"]) for t in done] == [([0.5], -3.0), ([0.9], -1.0)]
    assert searcher.suggest("t1") == {"x": 0.25}  # the initial point first, the observations never
    assert searcher.suggest("t2")["x"] not in (0.5, 0.9)


def test_optuna_study_is_the_study_of_ray_optuna_search():
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space=lambda trial: {"x": trial.suggest_float("x", 0, 1)}, metric="m", mode="min")
    assert isinstance(ray_internals.optuna_study(searcher), optuna.Study)


def test_ga_generation_key_is_the_attribute_nsga2_reads():
    import optuna

    sampler = optuna.samplers.NSGAIISampler(seed=0, population_size=2)
    study = optuna.create_study(sampler=sampler, directions=["minimize", "minimize"])
    for x in (0.1, 0.9, 0.5):
        study.add_trial(optuna.trial.create_trial(
            values=[x, 1 - x], params={"x": x}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            system_attrs={ray_internals.ga_generation_key(sampler): 0}))
    study.optimize(lambda trial: [trial.suggest_float("x", 0, 1)] * 2, n_trials=1)
    assert study.trials[-1].system_attrs[ray_internals.ga_generation_key(sampler)] == 1  # bred from generation 0


def test_train_controller_callback_has_the_controller_start_hook():
    callback = ray_internals.train_controller_callback()
    assert inspect.isclass(callback) and hasattr(callback, "after_controller_start")


def test_token_authentication_functions_are_where_ray_keeps_them():
    from ray._private.authentication import authentication_token_setup as setup

    assert callable(setup.maybe_enable_token_auth_if_token_available) and callable(setup._enable_token_auth)
    assert "warn_if_disabled" in inspect.signature(setup.maybe_enable_token_auth_if_token_available).parameters


def test_start_loopback_ray_switches_exist():
    import ray
    from ray._private import ray_constants

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)
    assert 'kwargs.pop("_node_ip_address"' in inspect.getsource(ray.init)  # a private keyword of ray.init


def test_local_ray_processes_lists_the_running_ray(ray_session):
    import psutil

    session, pids = ray_internals.local_ray_processes()
    assert Path(session).is_dir() and pids and all(psutil.pid_exists(pid) for pid in pids)


def test_placement_groups_and_their_handles(ray_session):
    import ray
    from ray.core.generated import gcs_pb2
    from ray.util.placement_group import placement_group, remove_placement_group

    assert gcs_pb2.PlacementGroupTableData.REMOVED == 3
    group = placement_group([{"CPU": 0.01}])
    ray.get(group.ready(), timeout=60)
    try:
        assert ray_internals.placement_group(group.id.hex()).id == group.id
        # created by this driver, not by an actor: never an orphan
        assert group.id.hex() not in ray_internals.placement_groups_of_dead_actors(
            ray.get_runtime_context().get_job_id())
    finally:
        remove_placement_group(group)


def test_bayes_opt_regressor_is_the_gp_suggest_fits():
    from bayes_opt import BayesianOptimization
    from sklearn.gaussian_process import GaussianProcessRegressor

    optimizer = BayesianOptimization(f=None, pbounds={"x": (0, 1)}, verbose=0, random_state=0)
    for x in (0.1, 0.5, 0.9):
        optimizer.register(params={"x": x}, target=-(x - 0.4) ** 2)
    optimizer.suggest()
    regressor = ray_internals.bayes_opt_regressor(optimizer)
    assert isinstance(regressor, GaussianProcessRegressor) and hasattr(regressor, "kernel_")


@pytest.mark.parametrize("module", ["tunerd", "trainables"])
def test_no_other_module_touches_a_private_part_of_ray(module):
    """`ray._private`, `ray._raylet`, `._internal` and the private attributes above appear in ray_internals only."""
    pattern = re.compile(r"ray\._private|ray\._raylet|\._internal\b|_local_tuner|_setup_hyperopt|_hpopt_trials"
                         r"|_on_insufficient_samples|_trial_writer|_clean_tag|\._gp\b|_node_ip_address|temporary_state"
                         r"|_ot_study|_get_generation_key|metric_op")
    offenders = [f"{path.relative_to(REPO)}:{i}" for path in sorted((REPO / module).rglob("*.py"))
                 if path.name != "ray_internals.py"
                 for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
