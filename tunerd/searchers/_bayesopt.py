"""Bayesian optimisation for Ray Tune on bayes_opt's ask/tell API.

Ray's own `BayesOptSearch` imports `UtilityFunction`, which bayesian-optimization >= 2 removed; this
searcher drives `BayesianOptimization(f=None, ...)` with `suggest()`/`register()` instead.

Encoding of tunerd's space (see `tunerd/space.py`) into bayes_opt parameters, one per node:

- uniform, quniform: a float on [lo, hi]; quniform rounds to the nearest multiple of q inside [lo, hi].
- loguniform, qloguniform: a float on [log10 lo, log10 hi], decoded by 10**u (qloguniform then rounds to q).
- lograndint: a float on [log10 lo, log10(hi + 1)], decoded by floor(10**u) -> int in [lo, hi] (Ray's rule).
- randint: a bayes_opt integer on [lo, hi]; qrandint: a bayes_opt integer k on the multiples k*q inside
  [lo, hi], so every value the GP sees is a valid one.
- normal(mean, sd): a float on [mean - 3 sd, mean + 3 sd]; random points draw N(mean, sd) clipped to that
  box, the GP searches the box uniformly (a GP has no prior over inputs).
- choice: a bayes_opt categorical over the option *indices* as strings ("0", "1", ...): bayes_opt's own
  categories must be hashable and unique, and a list of two numbers or bools is read as float bounds.
  Each option is a sub-tree with its own parameters, named by path (`model[1]/lr`); all branches are
  searched, only the chosen branch's values reach the config.

A node with a single possible value (one option, `randint [3, 3]`) is a constant, not a parameter.
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from bayes_opt import BayesianOptimization
from bayes_opt.acquisition import (
    AcquisitionFunction,
    ExpectedImprovement,
    ProbabilityOfImprovement,
    UpperConfidenceBound,
)
from ray.tune.search import Searcher
from sklearn.gaussian_process.kernels import Matern, WhiteKernel

from trainables.files import write_atomic
from tunerd.ray_internals import acquisition_maximised_by, bayes_opt_regressor
from tunerd.searchers._best_epoch import LearnsBestEpoch
from tunerd.space import Choice, Distribution, Grid, iter_nodes, quantize

logger = logging.getLogger(__name__)

ACQUISITIONS = ("ei", "ucb", "poi")
#: EI's smallest margin: 0, its variance term explores enough (on Branin, xi = 1% of the target range ended
#: ~0.1 above the minimum after 60 evaluations, xi = 0 within 0.001); the learned noise's standard deviation
#: raises it on noisy metrics (see `_gp_point`)
EI_XI = 0.0
#: PoI's margin, as a fraction of the observed target range (PoI with 0 only exploits)
POI_XI_FRACTION = 0.01
UCB_KAPPA = 2.576
#: the fewest random trials before the GP (see `default_random_initial`)
BAYESOPT_MIN_RANDOM = 5
#: the white-noise term's start and bounds, as a variance relative to the targets' (bayes_opt normalises them)
NOISE_START = 1e-2
NOISE_BOUNDS = (1e-10, 1.0)
#: each parameter's length scale starts at its box's width and is fitted within these multiples of it
LENGTH_SCALE_RANGE = (1e-2, 1e2)
#: the GP's hyperparameters are fitted from scratch (with bayes_opt's 5 restarts) every this many
#: suggestions, and in between from the previous fit, once (see `_fit_noise`)
FULL_FIT_EVERY = 10
FULL_FIT_RESTARTS = 2
#: in between, the hyperparameters are refitted (warm) every this many suggestions and kept as they are
#: for the others
REFIT_EVERY = 2
#: the acquisition's maximisation (`maximise_acquisition`)
RANDOM_CANDIDATES = 3_000
NEAR_CANDIDATES = 2_000
NEAR_BEST = 5
MIXED_CANDIDATES = 10_000
LOCAL_STARTS = 3
_STATE_VERSION = 1


@dataclass(frozen=True)
class _Num:
    """A numeric node bound to its bayes_opt parameter `name`."""

    name: str
    dist: Distribution


@dataclass(frozen=True)
class _Pick:
    """A choice bound to its categorical `name`; `branches[i]` is option i compiled as a sub-tree."""

    name: str
    branches: tuple[Any, ...]


class _Mismatch(Exception):
    """An initial point does not fit the space (turned into a ValueError naming the point)."""


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 (YAML options can mix them)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


@dataclass(frozen=True)
class KernelStart:
    """The fitted length scales and noise level of the last suggestion's GP: the next fit starts there."""

    length_scales: np.ndarray
    noise: float


def maximise_acquisition(acq: Any, space: Any, random_state: np.random.RandomState) -> np.ndarray:
    """The point maximising the acquisition (`acq` returns its negative, for a batch of points).

    bayes_opt's own way, at a fraction of its cost: the best of many candidates, then L-BFGS-B over the
    continuous dimensions from the LOCAL_STARTS best of them. bayes_opt draws 10,000 candidates at random
    and starts 10 local searches whose numerical gradients ask the GP for one point at a time (about 2,000
    predictions per suggestion: 0.28 s at 100 observations). Here the candidates are RANDOM_CANDIDATES
    random points and NEAR_CANDIDATES Gaussian steps (a twentieth of each width) around the NEAR_BEST best
    observations, where the acquisition's maximum usually is; and each local step's value and finite
    differences are one batched prediction. On a conditional space (`acq.random_candidates_only`, set by
    the searcher) the candidates are MIXED_CANDIDATES random points only: steps around the best
    observations keep their branch, and on the benchmark's conditional problem they held the search in the
    branch it found first (median regret 0.20 against 0.02); on the mnist benchmark's unconditional mixed
    space the steps pay (bayesopt + ASHA needed 50% of random search's trial-epochs without them, 17-19%
    with). Integer and categorical dimensions keep the candidates' values (bayes_opt rounds them in its
    kernel)."""
    moving = np.asarray(space.continuous_dimensions, dtype=bool)
    low, high = space.bounds[:, 0], space.bounds[:, 1]
    near = not getattr(acq, "random_candidates_only", False)
    x = space.random_sample(RANDOM_CANDIDATES if near else MIXED_CANDIDATES, random_state=random_state)
    if near and moving.any() and len(space.target):
        best = space.params[np.argsort(space.target)[-NEAR_BEST:]]
        around = best[random_state.randint(len(best), size=NEAR_CANDIDATES)]
        around = around + random_state.normal(size=around.shape) * (high - low) * moving / 20
        x = np.vstack([x, np.clip(around, low, high)])
    ys = np.asarray(acq(x)).ravel()
    starts = np.argsort(ys)[:LOCAL_STARTS]
    winner, winner_y = x[starts[0]], ys[starts[0]]
    if not moving.any():
        return winner
    for start in x[starts]:
        point, value = _polish(acq, start, low, high, moving)
        if value < winner_y:
            winner, winner_y = point, value
    return winner


def _polish(acq: Any, start: np.ndarray, low: np.ndarray, high: np.ndarray,
            moving: np.ndarray) -> tuple[np.ndarray, float]:
    """L-BFGS-B over the continuous dimensions from `start`; the value and its forward differences come
    from one batched prediction per step (a backward difference at an upper bound)."""
    from scipy.optimize import minimize

    index = np.flatnonzero(moving)
    step = 1e-6 * (high[index] - low[index])

    def value_and_gradient(z: np.ndarray) -> tuple[float, np.ndarray]:
        point = start.copy()
        point[index] = z
        sign = np.where(z + step > high[index], -1.0, 1.0)
        batch = np.repeat(point[None, :], len(index) + 1, axis=0)
        batch[np.arange(1, len(index) + 1), index] += sign * step
        values = np.asarray(acq(batch)).ravel()
        return float(values[0]), (values[1:] - values[0]) / (sign * step)

    result = minimize(value_and_gradient, start[index], jac=True, method="L-BFGS-B",
                      bounds=list(zip(low[index], high[index])))
    point = start.copy()
    point[index] = np.clip(result.x, low[index], high[index])
    return point, float(result.fun)


#: bayes_opt's acquisitions, maximised by `maximise_acquisition`
_EI = acquisition_maximised_by(ExpectedImprovement, maximise_acquisition)
_PoI = acquisition_maximised_by(ProbabilityOfImprovement, maximise_acquisition)
_UCB = acquisition_maximised_by(UpperConfidenceBound, maximise_acquisition)


class BayesOptSearcher(LearnsBestEpoch, Searcher):
    """GP-based search (bayes_opt) over a parsed tunerd space; `suggest()` returns the full config.

    The first `max(random_initial, len(initial_points))` suggestions are the initial points, then seeded
    random ones (`random_initial` None: `default_random_initial`); after that each suggestion fits a fresh
    optimizer on the completed trials plus the running ones at the GP's own prediction (a kriging believer,
    so concurrent suggestions differ), with the observation noise learned from the data (see `_gp_point`).
    """

    def __init__(self, space: dict, *, metric: str, mode: str, seed: int = 0,
                 initial_points: list[dict] = (), random_initial: int | None = None, acquisition: str = "ei",
                 observations: list[tuple[dict, float]] = ()) -> None:
        """`observations`: earlier trials (whole configs, their values of the metric), registered with the model
        as if they had run here (a warm start); they count towards `random_initial`."""
        if not isinstance(space, dict):
            raise ValueError(f"space={space!r}: must be a dict of parsed nodes")
        _check_metric_mode(metric, mode)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seed={seed!r}: must be an int in [0, 2**32 - 1]")
        if random_initial is not None and (isinstance(random_initial, bool) or not isinstance(random_initial, int)
                                           or random_initial < 0):
            raise ValueError(f"random_initial={random_initial!r}: must be an int >= 0, or None (automatic)")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition={acquisition!r}: must be one of {list(ACQUISITIONS)}")
        if not isinstance(initial_points, (list, tuple)) or not all(isinstance(p, dict) for p in initial_points):
            raise ValueError(f"initial_points={initial_points!r}: must be a list of config dicts")
        super().__init__(metric=metric, mode=mode)
        self._pbounds: dict[str, Any] = {}
        self._normals: dict[str, Distribution] = {}
        self._plan = self._compile(space, "")
        #: a choice whose options are mappings (sub-spaces): see `maximise_acquisition`
        self._conditional = any(isinstance(node, Choice) and any(isinstance(o, dict) for o in node.options)
                                for node in iter_nodes(space))
        self._random_initial = default_random_initial(len(self._pbounds)) if random_initial is None else random_initial
        self._acquisition_name = acquisition
        self._rng = np.random.RandomState(seed)
        self._initial: list[dict[str, Any]] = []
        for i, raw in enumerate(initial_points):
            try:
                self._initial.append(self._encode(self._plan, raw, ""))
            except _Mismatch as e:
                raise ValueError(f"initial_points[{i}]{e}") from None
        self._observed: list[tuple[dict[str, Any], float]] = []  # (point, the trial's best metric)
        for i, (config, value) in enumerate(observations):
            try:
                self._observed.append((self._encode(self._plan, config, ""), float(value)))
            except _Mismatch as e:
                raise ValueError(f"observations[{i}]{e}") from None
        #: how many of `_observed` came from earlier experiments
        self._warm = len(self._observed)
        self._kernel_start: KernelStart | None = None  # the last fit's hyperparameters
        self._fits = 0
        self._pending: dict[str, dict[str, Any]] = {}
        self._best_seen: dict[str, float] = {}
        self._count = 0

    # --- Ray's Searcher interface -------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Accept the Tuner's metric/mode; `config` is ignored (the Tuner's param_space is `{}`)."""
        _check_metric_mode(metric or self._metric, mode or self._mode)
        self._metric, self._mode = metric or self._metric, mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict:
        """The next full config; its internal point stays pending until the trial completes."""
        if self._initial:
            point = {**self._random_point(), **self._initial.pop(0)}
        elif self._count + self._warm < self._random_initial or not self._observed or not self._pbounds:
            point = self._fresh(self._random_point())
        else:
            try:
                point = self._gp_point()
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as e:  # never stop the experiment for it
                logger.warning("bayes_opt could not suggest a point (%s); using a random one", e)
                point = self._random_point()
            point = self._fresh(point)
        self._count += 1
        self._pending[trial_id] = point
        return self._build(self._plan, point)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Record the trial's best metric (`LearnsBestEpoch` puts it in `result`); errored trials, or trials
        without a finite metric, only leave `pending`."""
        result = self.best_result(trial_id, result, error)
        point = self._pending.pop(trial_id, None)
        if point is None or error:
            return
        value = (result or {}).get(self._metric)
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            logger.warning("trial %s: metric %r is %r, not a finite number; not used for the model",
                           trial_id, self._metric, (result or {}).get(self._metric))
            return
        self._observed.append((point, value))

    def save(self, checkpoint_path: str) -> None:
        """Write the whole state as JSON, atomically."""
        name, keys, pos, has_gauss, gauss = self._rng.get_state()
        state = {
            "version": _STATE_VERSION, "space": self._signature(), "metric": self._metric, "mode": self._mode,
            "count": self._count, "warm": self._warm, "observed": self._observed, "pending": self._pending,
            "best_seen": self._best_seen,
            "initial": self._initial, "rng": [name, keys.tolist(), pos, has_gauss, gauss], "fits": self._fits,
            "kernel": None if self._kernel_start is None else [self._kernel_start.length_scales.tolist(),
                                                               self._kernel_start.noise],
        }
        write_atomic(checkpoint_path, json.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        """Load a state written by `save` for the same space; the sequence continues where it stopped."""
        with open(checkpoint_path) as f:
            state = json.load(f)
        if state.get("version") != _STATE_VERSION or state.get("space") != self._signature():
            raise ValueError(f"{checkpoint_path}: saved for a different search space or searcher version")
        self._metric, self._mode, self._count = state["metric"], state["mode"], state["count"]
        self._observed = [(point, value) for point, value in state["observed"]]
        self._pending, self._initial = state["pending"], state["initial"]
        self._best_seen = state.get("best_seen", {})  # absent in states saved before it was kept
        self._warm = state.get("warm", 0)  # absent in states saved before warm starts
        kernel = state.get("kernel")  # the warm start of the next fit (absent before it was kept: a full fit)
        self._kernel_start = KernelStart(np.array(kernel[0]), kernel[1]) if kernel else None
        self._fits = state.get("fits", 0)
        name, keys, pos, has_gauss, gauss = state["rng"]
        self._rng.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))

    # --- the space ----------------------------------------------------------------------------------
    def _compile(self, tree: Any, name: str) -> Any:
        """Mirror `tree` with parameters registered in `_pbounds` under their path names."""
        if isinstance(tree, Grid):
            raise ValueError(f"{tree.path}: grid is not supported by bayesopt (use choice)")
        if isinstance(tree, dict):
            return {k: self._compile(v, f"{name}/{k}" if name else k) for k, v in tree.items()}
        if isinstance(tree, Choice):
            branches = tuple(self._compile(o, f"{name}[{i}]") for i, o in enumerate(tree.options))
            if len(branches) == 1:
                return branches[0]
            self._pbounds[name] = [str(i) for i in range(len(branches))]
            return _Pick(name, branches)
        if isinstance(tree, Distribution):
            bounds = _bounds(tree)
            if bounds is None:  # a single possible value
                return _single(tree)
            self._pbounds[name] = bounds
            if tree.kind == "normal":
                self._normals[name] = tree
            return _Num(name, tree)
        return tree

    def _signature(self) -> str:
        return repr(sorted((k, [getattr(b, "__name__", b) for b in v]) for k, v in self._pbounds.items()))

    def _build(self, plan: Any, point: dict[str, Any]) -> Any:
        """The config for an internal point: constants as is, only the chosen branch of each choice."""
        if isinstance(plan, dict):
            return {k: self._build(v, point) for k, v in plan.items()}
        if isinstance(plan, _Pick):
            return self._build(plan.branches[int(point[plan.name])], point)
        if isinstance(plan, _Num):
            return _decode(plan.dist, point[plan.name])
        return plan

    def _encode(self, plan: Any, value: Any, where: str) -> dict[str, Any]:
        """Internal values for a (partial) config; raises _Mismatch saying where it does not fit."""
        if isinstance(plan, dict):
            if not isinstance(value, dict):
                raise _Mismatch(f"{where}: expected a mapping, got {value!r}")
            unknown = sorted(set(value) - set(plan))
            if unknown:
                raise _Mismatch(f"{where}: unknown keys {unknown} (known: {sorted(plan)})")
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(self._encode(plan[k], v, f"{where}.{k}"))
            return out
        if isinstance(plan, _Pick):
            for i, branch in enumerate(plan.branches):
                try:
                    return {plan.name: str(i), **self._encode(branch, value, where)}
                except _Mismatch:
                    continue
            raise _Mismatch(f"{where}: {value!r} matches none of the choice's options")
        if isinstance(plan, _Num):
            return {plan.name: _encode_number(plan.dist, value, where)}
        if not _same(plan, value):
            raise _Mismatch(f"{where}: {value!r} differs from the constant {plan!r}")
        return {}

    # --- points -------------------------------------------------------------------------------------
    def _random_point(self) -> dict[str, Any]:
        """A seeded random point: uniform in each parameter's box, normal kinds drawn from N(mean, sd)."""
        point: dict[str, Any] = {}
        for name, bounds in self._pbounds.items():
            if isinstance(bounds, list):
                point[name] = bounds[self._rng.randint(len(bounds))]
            elif len(bounds) == 3:
                point[name] = int(self._rng.randint(bounds[0], bounds[1] + 1))
            elif name in self._normals:
                point[name] = float(np.clip(self._rng.normal(*self._normals[name].args), *bounds))
            else:
                point[name] = float(self._rng.uniform(bounds[0], bounds[1]))
        return point

    def _to_target(self, value: float) -> float:
        """The one place the sign lives: bayes_opt maximises, so 'min' metrics are negated."""
        return value if self._mode == "max" else -value

    def _acquisition(self, targets: list[float]) -> AcquisitionFunction:
        """A new acquisition per optimizer; PoI's xi is in target units, so it scales with the observed range.
        On a conditional space it is maximised over random candidates only (see `maximise_acquisition`)."""
        if self._acquisition_name == "ucb":
            acquisition = _UCB(kappa=UCB_KAPPA)
        elif self._acquisition_name == "ei":
            acquisition = _EI(xi=EI_XI)
        else:
            acquisition = _PoI(xi=POI_XI_FRACTION * (max(targets) - min(targets)))
        acquisition.random_candidates_only = self._conditional
        return acquisition

    def _gp_point(self) -> dict[str, Any]:
        """Fit a fresh optimizer on observations (duplicates averaged) plus each pending point at the GP's
        own prediction there (the "kriging believer"), and maximise the acquisition.

        Why the believer: a running trial must not be suggested again, so it is registered with a value it
        has not reported. At the GP's mean, that value leaves the model's picture of the function as it
        was and only removes the uncertainty at the running point, so the acquisition looks elsewhere
        (Ginsbourger, Le Riche & Carraro 2010). The worst observed value, used before, puts a deep fake
        pit next to the best points on functions with a wide range; with 2 trials at once the GP's fit
        broke: Branin, 60 trials, 2 at a time, 5 seeds: median best 0.52 with the worst value, 0.3982
        with the believer (the minimum is 0.397887; one at a time 0.3981).

        Why the noise model (`_fit_noise`): a trial's metric is noisy, and under ASHA a trial stopped at
        epoch 1 reports its epoch-1 score next to a neighbour that trained 9 epochs; bayes_opt's GP assumes
        exact values, and on such data its length scale collapsed to the lower bound (a GP that knows
        nothing between its points). With the noise learned, the fit stays smooth; EI is computed on the
        noise-free function and asks for an improvement of at least one noise standard deviation, so it
        does not spend trials re-measuring the incumbent's neighbourhood. On noise-free functions the
        learned noise is ~0 and nothing changes (Branin above: 0.3979 median).
        """
        by_key: dict[str, tuple[dict[str, Any], list[float]]] = {}
        for point, value in self._observed:
            by_key.setdefault(_key(point), (point, []))[1].append(self._to_target(value))
        targets = [t for _, ts in by_key.values() for t in ts]
        pending = {_key(p): p for p in self._pending.values() if _key(p) not in by_key}
        acquisition = self._acquisition(targets)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Non-float parameters are experimental")
            opt = BayesianOptimization(
                f=None, pbounds=self._pbounds, acquisition_function=acquisition,
                random_state=np.random.RandomState(self._rng.randint(2**31 - 1)),
                verbose=0, allow_duplicate_points=True)
            # space.register, not opt.register: the latter logs, re-listing every point (O(n^2) per rebuild)
            for point, ts in by_key.values():
                opt.space.register(point, float(np.mean(ts)))
            warm = self._kernel_start if self._fits % FULL_FIT_EVERY else None
            noise_sd, self._kernel_start = _fit_noise(opt, warm, optimise=self._fits % REFIT_EVERY == 0)
            self._fits += 1
            if isinstance(acquisition, ExpectedImprovement):
                acquisition.xi = max(EI_XI, noise_sd)
            if pending:
                for point, believed in zip(pending.values(), self._believed(opt, list(pending.values()))):
                    opt.space.register(point, believed)
            suggestion = opt.suggest()
        return {name: (str(suggestion[name]) if isinstance(bounds, list) else
                       int(suggestion[name]) if len(bounds) == 3 else float(suggestion[name]))
                for name, bounds in self._pbounds.items()}

    @staticmethod
    def _believed(opt: BayesianOptimization, points: list[dict[str, Any]]) -> list[float]:
        """The GP's mean at `points`, fitted on what `opt` holds so far (the observations). bayes_opt 3 has
        no public handle on its GP: `_gp` is the regressor `suggest` fits, with bayes_opt's own kernel
        (categoricals one-hot); fitting it here is what its acquisition function does first."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's convergence warnings, as bayes_opt silences them
            bayes_opt_regressor(opt).fit(opt.space.params, opt.space.target)
            mean = bayes_opt_regressor(opt).predict(np.array([opt.space.params_to_array(p) for p in points]))
        return [float(m) for m in mean]

    def _fresh(self, point: dict[str, Any], tries: int = 20) -> dict[str, Any]:
        """`point`, or a random one if its config was already tried or is running (small discrete spaces)."""
        seen = {_config_key(self._build(self._plan, p)) for p in
                [*(p for p, _ in self._observed), *self._pending.values()]}
        for _ in range(tries):
            if _config_key(self._build(self._plan, point)) not in seen:
                return point
            point = self._random_point()
        return point


def default_random_initial(parameters: int) -> int:
    """Random trials before the GP takes over: max(5, 2 x the searched parameters), Ax's rule. With 5 on a
    4-parameter space (lr over five decades x optimizer x width x dropout, mnist under ASHA) the GP settled
    on the first decent region it saw; 8 gave it the whole picture (benchmarks/search_quality.py)."""
    return max(BAYESOPT_MIN_RANDOM, 2 * parameters)


def _fit_noise(opt: BayesianOptimization, start: KernelStart | None = None, *,
               optimise: bool = True) -> tuple[float, KernelStart]:
    """Learn the observation noise of what `opt` holds, and set its GP up to model the noise-free function.

    bayes_opt's GP is a Matern 2.5 kernel with a fixed jitter (alpha 1e-6): values are taken as exact. Here
    a white-noise term is fitted along with the length scale (sklearn's marginal likelihood, as bayes_opt
    fits its own), then both are fixed and the noise goes into `alpha`, where sklearn adds it to the
    training points only: predictions, hence the acquisition, are of the noise-free function. Returns
    the noise's standard deviation in target units, and the fitted hyperparameters.

    The Matern kernel has one length scale per column (automatic relevance determination), each starting
    at its parameter's width: bayes_opt's default is a single length scale for every parameter, although
    a learning rate spans five decades (log10 units), a dropout 0.7 and a category column 1, and the one
    scale fitted the widest. On the mnist search benchmark (lr x optimizer x width x dropout under ASHA)
    seed 0 reached random search's best at 17-18% of its trial-epochs in five runs out of five, against
    34-39% with the single scale; on Branin the median best went from 0.3980 to 0.39790.

    `start`: the previous suggestion's fitted hyperparameters. One more point moves them little, so the fit
    starts there and runs once instead of from 3 starting points, and with `optimise` false they are
    taken as they are (the GP still conditions on every observation): the fit took 0.28 s of a 0.55 s
    suggestion at 100 observations. Every `FULL_FIT_EVERY`-th fit starts afresh, with the restarts, so a fit
    cannot stay in a poor local optimum.
    """
    if start is not None and not optimise:
        _use(opt, start.length_scales, start.noise)
        return float(math.sqrt(start.noise) * np.std(opt.space.target)), start
    widths = np.maximum(opt.space.bounds[:, 1] - opt.space.bounds[:, 0], 1e-9)
    scales, noise = (start.length_scales, start.noise) if start is not None else (widths, NOISE_START)
    matern = Matern(length_scale=scales, nu=2.5,
                    length_scale_bounds=np.stack([widths * LENGTH_SCALE_RANGE[0], widths * LENGTH_SCALE_RANGE[1]], 1))
    opt.set_gp_params(kernel=matern + WhiteKernel(noise, NOISE_BOUNDS),
                      n_restarts_optimizer=0 if start is not None else FULL_FIT_RESTARTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's convergence warnings, as bayes_opt silences them
        bayes_opt_regressor(opt).fit(opt.space.params, opt.space.target)
    fitted = bayes_opt_regressor(opt).kernel_  # the wrapped Matern + WhiteKernel, fitted
    _use(opt, fitted.k1.length_scale, fitted.k2.noise_level)
    noise_sd = float(math.sqrt(fitted.k2.noise_level) * np.std(opt.space.target))  # normalize_y: relative units
    return noise_sd, KernelStart(np.atleast_1d(fitted.k1.length_scale).copy(), float(fitted.k2.noise_level))


def _use(opt: BayesianOptimization, length_scales: Any, noise: float) -> None:
    """The GP `opt.suggest` fits: these hyperparameters fixed, the noise in `alpha` (the training points only)."""
    opt.set_gp_params(kernel=Matern(length_scale=length_scales, length_scale_bounds="fixed", nu=2.5),
                      alpha=noise + 1e-6)


def _check_metric_mode(metric: Any, mode: Any) -> None:
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric={metric!r}: must be a non-empty string")
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}: must be 'min' or 'max'")


def _bounds(d: Distribution) -> tuple | None:
    """bayes_opt bounds for a distribution, or None when it can take only one value (an integer lo == hi)."""
    lo, hi, q = d.low, d.high, d.q
    if d.kind in ("uniform", "quniform"):
        return (float(lo), float(hi))
    if d.kind in ("loguniform", "qloguniform"):
        return (math.log10(lo), math.log10(hi))
    if d.kind == "normal":
        return (lo - 3 * hi, lo + 3 * hi)
    if lo == hi:
        return None
    if d.kind == "lograndint":
        return (math.log10(lo), math.log10(hi + 1))
    if d.kind == "qrandint":
        kmin, kmax = -(-lo // q), hi // q
        return (kmin, kmax, int) if kmin < kmax else None
    return (lo, hi, int)  # randint


def _single(d: Distribution) -> int:
    """The one value of an integer distribution `_bounds` found degenerate."""
    if d.kind == "qrandint" and -(-d.low // d.q) * d.q <= d.high:
        return -(-d.low // d.q) * d.q
    return d.low  # lo == hi


def _decode(d: Distribution, x: Any) -> int | float:
    lo, hi, q = d.low, d.high, d.q
    if d.kind in ("uniform", "normal"):
        return float(x)
    if d.kind == "quniform":
        return quantize(x, q, lo, hi)
    if d.kind == "loguniform":
        return float(min(max(10.0**x, lo), hi))
    if d.kind == "qloguniform":
        return quantize(10.0**x, q, lo, hi)
    if d.kind == "lograndint":
        return int(min(max(math.floor(10.0**x), lo), hi))
    if d.kind == "qrandint":
        return int(x) * q
    return int(x)


def _encode_number(d: Distribution, v: Any, where: str) -> int | float:
    """The internal value whose decoding is `v`; rejects values the space cannot produce."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Mismatch(f"{where}: expected a number, got {v!r}")
    lo, hi = _bounds(d)[:2] if d.kind == "normal" else (d.low, d.high)
    if not lo <= v <= hi:
        raise _Mismatch(f"{where}: {v!r} is outside [{lo}, {hi}]" + (" (mean +- 3 sd)" if d.kind == "normal" else ""))
    if d.is_integer and (float(v) != int(v) or (d.kind == "qrandint" and int(v) % d.q)):
        raise _Mismatch(f"{where}: {v!r} is not an integer" + (f" multiple of {d.q}" if d.q else ""))
    if d.kind in ("loguniform", "qloguniform"):
        return math.log10(v)
    if d.kind == "lograndint":
        return min(math.log10(v + 0.5), math.log10(d.high + 1))  # cell middle, so floor(10**u) == v
    if d.kind == "qrandint":
        return int(v) // d.q
    return int(v) if d.is_integer else float(v)


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def _config_key(config: Any) -> str:
    try:
        return json.dumps(config, sort_keys=True, default=repr)
    except TypeError:  # mixed key types inside a constant
        return repr(config)
