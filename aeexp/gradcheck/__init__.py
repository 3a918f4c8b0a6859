"""Check the reference documents' hand-derived gradients against automatic differentiation.

Each closed-form gradient (thesis sections 2.4.3-2.4.14; the entropy-loss note's eqs. 1-5 and
11-14; the cross-entropy notes' softmax and weight gradients) is evaluated in NumPy as the
document writes it and compared with the gradient that TensorFlow's ``GradientTape`` computes,
in float64, for the function the formula claims to differentiate. Inputs are random, seeded,
and drawn where the derivation's assumptions hold: positive targets where a log needs them,
pre-activations at least 0.05 away from a ReLU kink, and losses summed as the derivations
write them (not averaged), never clipped.

Errors are taken entry by entry over the entries a formula covers (for a case-split formula,
only the entries in its case)::

    abs_error = |closed - autodiff|
    rel_error = abs_error / max(|closed|, |autodiff|, 1e-12)

A formula ``agrees`` when the largest relative error is below 1e-6 and ``disagrees`` otherwise,
or when either side is not finite. Float64 round-off leaves about 1e-15 and a wrong formula is
off by order one, so the tolerance sits many orders of magnitude from both.

The thesis text and its code differ on two activations. Verdicts use the activations the
derivation itself works with: the logistic sigmoid 1/(1+exp(-u)) (eq. 65 uses
f'(u) = f(u)(1 - f(u)), which holds only for it) and ReLU max(u, eps), eps = 1e-7 (section 2.2
adopts it so that the denominator in eq. 58 is never zero). The other reading of each,
1/(1+exp(u)) as eq. 28 prints it and max(u, 0) as the code has it, is checked as well and
reported in the result's note, with which reading the derivation matches.
"""

from __future__ import annotations

from aeexp.gradcheck.core import Check, CheckResult, run_check
from aeexp.gradcheck.crossentropy import CROSS_ENTROPY_CHECKS
from aeexp.gradcheck.entropy import entropy_checks
from aeexp.gradcheck.rendering import FORMATS, render
from aeexp.gradcheck.thesis import THESIS_EQUATIONS, thesis_check

__all__ = ["CHECKS", "FORMATS", "render", "run_checks"]

CHECKS: tuple[Check, ...] = (
    *(thesis_check(eq) for eq in THESIS_EQUATIONS),
    *entropy_checks(),
    *CROSS_ENTROPY_CHECKS,
)


def run_checks(seed: int = 0) -> list[CheckResult]:
    """Run every check on inputs drawn from ``seed``; the same seed gives the same results."""
    return [run_check(check, seed) for check in CHECKS]
