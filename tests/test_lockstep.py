"""The epoch bookkeeping both engines share (engines/base.py), driven by a fake trainer.

No framework: ``run_epoch`` returns losses from a table and ``freeze`` records its calls, so
the stop rule, freezing, the early end and each epoch's wall time are checked in a few
milliseconds. make mutate's engine-tf group guards base.py with these beside test_engine
and test_shuffle, which train for real but never with a stop rule.
"""

from __future__ import annotations

import math
import types

import pytest

from aeexp.engines import base


class Clock:
    """base.py's perf_counter, which only the fake trainer moves (not from 0: a sum shows)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakeTrainer:
    """Trains nothing: member i's epoch-e losses are ``losses[e][i]``; calls are recorded.

    Epoch e (0-based) takes ``step * (e + 1)`` seconds on the clock.
    """

    def __init__(self, losses: list[list[tuple[float, float]]], clock: Clock, step: float) -> None:
        self.losses, self.clock, self.step = losses, clock, step
        self.epochs: list[tuple[list[int], int]] = []
        self.freezes: list[tuple[list[int], list[int]]] = []

    def run_epoch(self, active, epoch):
        self.epochs.append((list(active), epoch))
        self.clock.now += self.step * (epoch + 1)
        return {i: self.losses[epoch][i] for i in active}

    def freeze(self, frozen, active):
        self.freezes.append((list(frozen), list(active)))


def steady(members: int, epochs: int) -> list[list[tuple[float, float]]]:
    """Finite, falling losses for every member and epoch."""
    return [[(1.0 / (e + 1) + i, 0.5 / (e + 1) + i) for i in range(members)] for e in range(epochs)]


@pytest.fixture
def clock(monkeypatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(base, "time", types.SimpleNamespace(perf_counter=found))
    return found


class Rule:
    """A stop rule that names ``plan[epoch]`` (and a member not training) and logs its calls."""

    def __init__(self, plan: dict[int, list[int]]) -> None:
        self.plan = plan
        self.asked: list[tuple[int, tuple[int, ...]]] = []

    def __call__(self, epoch, histories, survivors):
        self.asked.append((epoch, survivors))
        return [*self.plan.get(epoch, []), 99]  # 99: no such member, never frozen


def test_each_epoch_records_its_own_wall_time(clock):
    trainer = FakeTrainer(steady(2, 3), clock, step=0.25)
    histories = base.train_lockstep(trainer, members=2, epochs=3)
    for history in histories:
        assert history.seconds == [0.25, 0.5, 0.75]
        assert history.diverged_epoch is None and history.stopped_epoch is None
    assert [h.loss for h in histories] == [[1.0, 0.5, 1 / 3], [2.0, 1.5, 4 / 3]]


def test_the_stop_rule_freezes_the_members_it_names_after_that_epoch(clock):
    trainer = FakeTrainer(steady(3, 4), clock, step=0.1)
    rule = Rule({2: [1]})
    seen = []
    histories = base.train_lockstep(trainer, 3, 4, on_epoch=lambda e, h: seen.append(e), stop=rule)
    assert trainer.freezes == [([1], [0, 2])]
    assert trainer.epochs == [([0, 1, 2], 0), ([0, 1, 2], 1), ([0, 2], 2), ([0, 2], 3)]
    assert [len(h.loss) for h in histories] == [4, 2, 4]
    assert [h.stopped_epoch for h in histories] == [None, 2, None]
    # Asked after every epoch but the last, with the members still training then.
    assert rule.asked == [(1, (0, 1, 2)), (2, (0, 1, 2)), (3, (0, 2))]
    assert seen == [1, 2, 3, 4]


def test_the_stop_rule_is_not_asked_after_the_last_epoch(clock):
    """A member that trained every epoch is finished, not stopped, whatever the rule says."""
    trainer = FakeTrainer(steady(2, 2), clock, step=0.1)
    rule = Rule({2: [0, 1]})
    histories = base.train_lockstep(trainer, 2, 2, stop=rule)
    assert rule.asked == [(1, (0, 1))]
    assert trainer.freezes == []
    assert [h.stopped_epoch for h in histories] == [None, None]


def test_a_diverged_member_is_frozen_and_not_offered_to_the_stop_rule(clock):
    losses = steady(2, 3)
    losses[1][1] = (math.nan, 0.5)  # member 1, epoch 2
    trainer = FakeTrainer(losses, clock, step=0.1)
    rule = Rule({})
    histories = base.train_lockstep(trainer, 2, 3, stop=rule)
    assert histories[1].diverged_epoch == 2 and histories[1].stopped_epoch is None
    assert trainer.freezes == [([1], [0])]
    assert rule.asked == [(1, (0, 1)), (2, (0,))]


def test_when_every_member_is_frozen_training_ends_early_with_their_histories(clock):
    trainer = FakeTrainer(steady(2, 5), clock, step=0.1)
    seen = []
    histories = base.train_lockstep(
        trainer, 2, 5, on_epoch=lambda e, h: seen.append(e), stop=Rule({2: [0, 1]})
    )
    assert [len(h.loss) for h in histories] == [2, 2]
    assert [h.stopped_epoch for h in histories] == [2, 2]
    assert trainer.freezes == [([0, 1], [])]
    assert len(trainer.epochs) == 2 and seen == [1, 2]
