"""TensorBoard logging per trial: per-epoch scalars and HParams that show while trials run.

Why not Ray's `TBXLoggerCallback` as is: it writes HParams only when a trial ends, drops constants and
list values, and writes an *experiment* summary per trial (TensorBoard then shows one trial's columns).
This subclass (so Ray does not add its own) writes each trial's session-start HParams, every config value
included, the moment the trial starts, and no experiment summary: TensorBoard infers the columns from
all trials. Scalars use the plain metric names so the HParams table shows them as metric columns.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.logger import TBXLoggerCallback

from tunerd.space import flatten

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

#: Ray's bookkeeping keys: not worth a TensorBoard chart
_SKIP = {"epoch", "training_iteration", "timestamp", "pid", "time_total_s", "time_since_restore",
         "iterations_since_restore", "timesteps_since_restore", "done", "planned_epochs", "trial_id",
         "experiment_id", "date", "hostname", "node_ip", "checkpoint_dir_name", "should_checkpoint",
         "time_this_iter_s"}


def hparam_values(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """Every config value as an HParams-compatible scalar: nested keys as `a/b`, others as text."""
    values: dict[str, bool | int | float | str] = {}
    for key, value in flatten(config).items():
        if isinstance(value, (bool, int, float, str)):
            values[key] = value
        elif hasattr(value, "item"):
            values[key] = value.item()
        else:
            values[key] = str(value)
    return values


def trial_log_dir(trial: Trial) -> str:
    """The trial's folder in storage when storage is local (TensorBoard sees it at once), else Ray's staging."""
    from pyarrow.fs import LocalFileSystem

    if isinstance(trial.storage.storage_filesystem, LocalFileSystem):
        Path(trial.path).mkdir(parents=True, exist_ok=True)
        return trial.path
    trial.init_local_path()
    return trial.local_path


class HParamsTensorBoardCallback(TBXLoggerCallback):
    """Ray's TBX logger, reworked so the HParams dashboard is complete and live."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric

    def log_trial_start(self, trial: Trial) -> None:
        from tensorboardX.summary import hparams

        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        writer = self._summary_writer_cls(trial_log_dir(trial), flush_secs=5)
        _, session_start, _ = hparams(hparam_dict=hparam_values(trial.config), metric_dict={self.metric: 0.0})
        writer.file_writer.add_summary(session_start)
        writer.flush()
        self._trial_writer[trial] = writer
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        writer = self._trial_writer[trial]
        step = int(result.get("epoch") or result.get("training_iteration") or iteration)
        for key, value in result.items():
            if key in _SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                writer.add_scalar(key, value, global_step=step)
        writer.flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        from tensorboardX.summary import hparams

        writer = self._trial_writer.pop(trial, None)
        self._trial_result.pop(trial, None)
        if writer is None:
            return
        _, _, session_end = hparams(hparam_dict=hparam_values(trial.config), metric_dict={self.metric: 0.0})
        if failed:  # tensorboardX always writes status SUCCESS; mark failures for the HParams filter
            from tensorboardX.proto.api_pb2 import Status

            session_end.value[0].metadata.plugin_data.content = _session_end_content(Status.STATUS_FAILURE)
        writer.file_writer.add_summary(session_end)
        writer.close()


def _session_end_content(status: int) -> bytes:
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo

    return HParamsPluginData(version=0, session_end_info=SessionEndInfo(status=status)).SerializeToString()
