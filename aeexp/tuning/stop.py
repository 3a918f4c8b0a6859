"""The stop rule a tuning job carries: Optuna's own pruner, run where the group trains.

The driver asks a cell's trials in batches. With each batch's job it ships, per cell, a
snapshot of the study's finished trials and the pruner object; at every epoch boundary the
worker rebuilds an in-memory study from the snapshot once and asks ``pruner.prune`` about each
member, exactly as Optuna would in a trial's own loop. The only difference is staleness: the
members of one batch do not see each other's progress, only trials finished before it.

A trial's intermediate value at epoch e is its validation loss on the holdout after epoch e
(what the engine computes anyway), comparable within a cell because the loss is the same. It
is negated when the study maximizes, so that it always points the study's way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aeexp.registry.vocab import Status

# The Optuna state a run's aeexp status is told as; a diverged run is pruned (its NaN loss
# ranks it last), so the sampler learns that its region diverges.
STATES = {
    Status.COMPLETED: "COMPLETE",
    Status.PRUNED: "PRUNED",
    Status.DIVERGED: "PRUNED",
    Status.FAILED: "FAIL",
}


def intermediate_values(val_losses: Sequence[float], maximize: bool) -> dict[int, float]:
    """Return a trial's intermediate value per epoch (1-based): the validation loss, signed."""
    sign = -1.0 if maximize else 1.0
    return {epoch: sign * float(loss) for epoch, loss in enumerate(val_losses, start=1)}


def quiet_optuna() -> None:
    """Keep Optuna's INFO lines (a study made, a trial told) off the user's terminal."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class TrialRef:
    """Which trial a run is: its study (cell) and number."""

    study: str
    number: int


@dataclass(frozen=True)
class Snapshot:
    """A study as a batch's worker sees it: its direction, pruner and finished trials."""

    maximize: bool
    pruner: Any  # an optuna.pruners.BasePruner: plain data, it pickles
    trials: tuple[Any, ...]  # optuna FrozenTrials, COMPLETE or PRUNED, when the batch was asked


class PruningRule:
    """Stops the runs whose trial Optuna's pruner would prune; records each run's trial."""

    def __init__(self, trials: Mapping[str, TrialRef], studies: Mapping[str, Snapshot]) -> None:
        self.trials = dict(trials)  # run id -> its trial
        self.studies = dict(studies)  # study name -> its snapshot
        self._built: dict[str, Any] = {}  # study name -> in-memory study, rebuilt where it runs

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the in-memory studies: a worker builds its own."""
        return {"trials": self.trials, "studies": self.studies}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled rule."""
        self.__init__(state["trials"], state["studies"])  # type: ignore[misc]

    def only(self, run_ids: Collection[str]) -> PruningRule:
        """Return the rule for these runs alone (a job ships only what its group needs)."""
        trials = {r: t for r, t in self.trials.items() if r in run_ids}
        studies = {t.study: self.studies[t.study] for t in trials.values()}
        return PruningRule(trials, studies)

    def _study(self, name: str) -> Any:
        """Return the in-memory copy of a study's snapshot, built once."""
        if name not in self._built:
            import optuna

            quiet_optuna()
            snapshot = self.studies[name]
            study = optuna.create_study(
                storage=optuna.storages.InMemoryStorage(),
                direction="maximize" if snapshot.maximize else "minimize",
                sampler=optuna.samplers.RandomSampler(seed=0),  # never asked; cheapest to make
            )
            study.add_trials(snapshot.trials)
            self._built[name] = study
        return self._built[name]

    def stop(self, epoch: int, val_losses: Mapping[str, Sequence[float]]) -> set[str]:
        """Return the runs whose trial the pruner prunes after ``epoch``."""
        import optuna

        stopped = set()
        for run_id, losses in val_losses.items():
            ref = self.trials.get(run_id)
            if ref is None:  # not a trial of this rule (cannot happen in a tuning job)
                continue
            snapshot = self.studies[ref.study]
            running = optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING,
                intermediate_values=intermediate_values(losses, snapshot.maximize),
            )
            if snapshot.pruner.prune(self._study(ref.study), running):
                stopped.add(run_id)
        return stopped

    def record(self, run_id: str, status: str) -> dict[str, Any]:
        """Return the ``tune`` entry of a run's metrics.json: its study, trial and state."""
        ref = self.trials.get(run_id)
        if ref is None:
            return {}
        state = STATES.get(status, "FAIL")  # Status members hash as their strings
        return {"tune": {"study": ref.study, "trial": ref.number, "state": state}}
