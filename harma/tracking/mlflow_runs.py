"""MLflow tracking of a study, when asked for: one run per trial nested under a run for the study.

The study's runs live in the MLflow experiment named after the study, at the tracking URI of the study file
(`tracking: {mlflow: URI}`) or of `MLFLOW_TRACKING_URI` with `harma study run|resume --mlflow`.  The study's run
(tag `harma_study`) is found again by a later driver, and so is each trial's run (tag `harma_trial_id`, parent
`mlflow.parentRunId`), so a resumed study keeps one run per trial.  A trial's run gets its overrides (and arm)
as params when it is created, every epoch's curves as metrics under the TensorBoard tags (`val/r_mean`,
`train/loss_contr`, ..., step = epoch) plus `best/<objective column>`, skipping epochs it already holds (tag
`harma_last_epoch`: a resumed trial reports its epochs again), and at its end its status (FINISHED for
COMPLETE and PRUNED, FAILED for FAILED, tag `harma_status`) and its `best.pt` as the artifact
`checkpoint/best.pt` when the driver can read that file.  Only the MLflow client API is used.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from harma.progress.events import EpochReported, Event, StudyBegan, StudyEnded, TrialEnded, TrialStarted

STUDY_TAG, TRIAL_TAG, LAST_EPOCH_TAG, STATUS_TAG = "harma_study", "harma_trial_id", "harma_last_epoch", "harma_status"
PARENT_TAG = "mlflow.parentRunId"


def _ms(at: float) -> int:
    return int(at * 1000)


class MlflowSink:
    """Logs a driver's events to MLflow at `tracking_uri`; `checkpoint_of(trial_id)` is the trial's best.pt."""
    name = "mlflow"

    def __init__(self, tracking_uri: str, checkpoint_of: Callable[[str], Path]) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.uri, self.checkpoint_of = tracking_uri, checkpoint_of
        self.experiment_id = self.study_run = None
        self.objective = "objective"
        self.runs: dict[str, str] = {}          # trial id -> run id
        self.last: dict[str, int] = {}          # trial id -> last epoch the run holds

    def handle(self, event: Event) -> None:
        if isinstance(event, StudyBegan):
            self._begin(event)
        elif isinstance(event, TrialStarted):
            self._trial(event)
        elif isinstance(event, EpochReported):
            self._epoch(event)
        elif isinstance(event, TrialEnded):
            self._end(event)
        elif isinstance(event, StudyEnded):
            self._finish(event)

    def _find(self, tag: str, value: str) -> Any | None:
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.{tag} = '{value}'",
                                       max_results=1)
        return runs[0] if runs else None

    def _begin(self, event: StudyBegan) -> None:
        self.objective = event.objective
        experiment = self.client.get_experiment_by_name(event.name)
        self.experiment_id = (experiment.experiment_id if experiment is not None
                              else self.client.create_experiment(event.name))
        found = self._find(STUDY_TAG, event.name)
        self.study_run = (found.info.run_id if found is not None else self.client.create_run(
            self.experiment_id, run_name=event.name, tags={STUDY_TAG: event.name, "harma_kind": event.kind},
            start_time=_ms(event.at)).info.run_id)
        self.client.update_run(self.study_run, status="RUNNING")

    def _trial(self, event: TrialStarted) -> None:
        from mlflow.entities import Param

        if event.trial_id in self.runs:
            return
        found = self._find(TRIAL_TAG, event.trial_id)
        if found is not None:
            run_id = found.info.run_id
            self.last[event.trial_id] = int(found.data.tags.get(LAST_EPOCH_TAG, 0))
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_id = self.client.create_run(self.experiment_id, run_name=event.trial_id, start_time=_ms(event.at),
                                            tags={PARENT_TAG: self.study_run, TRIAL_TAG: event.trial_id}).info.run_id
            params = {**{k: str(v) for k, v in event.params.items()}, **({"arm": event.arm} if event.arm else {})}
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in sorted(params.items())])
            self.last[event.trial_id] = 0
        self.runs[event.trial_id] = run_id

    def _epoch(self, event: EpochReported) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self.runs.get(event.trial_id)
        if run_id is None or event.epoch <= self.last.get(event.trial_id, 0):
            return
        values = {f"{split}/{m}": v for split, metrics in event.curves.items() for m, v in metrics.items()}
        if event.best is not None:
            values[f"best/{self.objective}"] = event.best
        metrics = [Metric(k, float(v), _ms(event.at), event.epoch) for k, v in sorted(values.items())]
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(LAST_EPOCH_TAG, str(event.epoch))])
        self.last[event.trial_id] = event.epoch

    def _end(self, event: TrialEnded) -> None:
        run_id = self.runs.pop(event.trial_id, None)
        if run_id is None:
            return
        best = self.checkpoint_of(event.trial_id)
        if best.is_file():
            self.client.log_artifact(run_id, str(best), artifact_path="checkpoint")
        self.client.set_tag(run_id, STATUS_TAG, event.status)
        self.client.set_terminated(run_id, "FAILED" if event.status == "FAILED" else "FINISHED",
                                   end_time=_ms(event.at))

    def _finish(self, event: StudyEnded) -> None:
        if self.study_run is not None:
            status = "KILLED" if event.interrupted else "FINISHED"
            self.client.set_terminated(self.study_run, status, end_time=_ms(event.at))

    def close(self) -> None:
        """Runs of trials still open (the driver stopped before they ended) are marked KILLED."""
        for run_id in self.runs.values():
            self.client.set_terminated(run_id, "KILLED", end_time=_ms(time.time()))
        self.runs.clear()
