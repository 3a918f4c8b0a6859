"""The gradient checker: its machinery on hand-built cases, its verdicts against NumPy finite
differences, and the shape of its report."""

import dataclasses
import json

import numpy as np
import pytest

from aeexp import gradcheck as gc
from aeexp.errors import UserError
from aeexp.gradcheck import core, thesis
from aeexp.gradcheck import crossentropy as ce
from aeexp.gradcheck import entropy as ent
from aeexp.registry.vocab import EPSILON

tf = core.tf
EPS = EPSILON

REQUIRED_IDS = (
    [f"thesis-eq{n}" for n in (44, 45, 57, 58, 65, 71)]
    + [f"thesis-eq{n}" for n in (48, 49, 59, 60, 66, 67, 72, 73)]
    + [f"thesis-eq{n}" for n in (52, 53, 54, 55, 61, 62, 63, 64, 68, 69, 70, 74, 75, 76)]
    + [f"entropy-eq{n}" for n in (5, 12, 13, 14)]
    + ["crossentropy-softmax", "crossentropy-weights"]
)
KEYS = {"id", "source", "formula", "max_abs_error", "max_rel_error", "verdict", "note"}


@pytest.fixture(scope="module")
def results():
    return gc.run_checks(0)


@pytest.fixture(scope="module")
def by_id(results):
    return {r.id: r for r in results}


def check(check_id):
    return next(c for c in gc.CHECKS if c.id == check_id)


# ------------------------------------------------------------- independent NumPy oracle

NP_ACT = {
    "relu_eps": lambda u: np.maximum(u, EPS),
    "relu0": lambda u: np.maximum(u, 0.0),
    "sigmoid": lambda u: 1.0 / (1.0 + np.exp(-u)),
    "sigmoid_text": lambda u: 1.0 / (1.0 + np.exp(u)),
}


def np_idiv(a, b):
    """Sum over the last axis of a log(a/b) - a + b, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        alog = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0) / b), 0.0)
    return np.sum(alog - a + b, axis=-1)


NP_LOSS = {"E_I1": lambda xh, x: np_idiv(xh, x), "E_I2": lambda xh, x: np_idiv(x, xh)}


def bias(z):
    return np.hstack([np.ones((z.shape[0], 1)), z])


def finite_difference(f, at, h=1e-6):
    """Central differences of f (scalar or vector valued) at ``at``: shape f.shape + at.shape."""
    at = np.asarray(at, float)
    out_shape = np.shape(f(at))
    jac = np.zeros(out_shape + at.shape)
    for idx in np.ndindex(at.shape):
        step = np.zeros_like(at)
        step[idx] = h
        jac[(...,) + idx] = (np.asarray(f(at + step)) - np.asarray(f(at - step))) / (2 * h)
    return jac


def numpy_objective(net, loss, target):
    """The thesis objective written again in NumPy: a function of the target and its point."""
    enc, dec, e = NP_ACT[net.enc], NP_ACT[net.dec], NP_LOSS[loss]

    def decode(y, wt):
        return dec(bias(y) @ wt.T)

    return {
        "delta3": (lambda ut: e(dec(ut), net.x).sum(), net.ut),
        "delta2": (lambda u: e(decode(enc(u), net.wt), net.x).sum(), net.u),
        "W": (lambda w: e(decode(enc(bias(net.x) @ w.T), net.wt), net.x), net.w),
        "Wt": (lambda wt: e(decode(enc(bias(net.x) @ net.w.T), wt), net.x), net.wt),
    }[target]


def fd_verdict(form, eq):
    """Judge a thesis form by NumPy finite differences: agrees, disagrees or undefined."""
    net = form.setup(0)
    f, at = numpy_objective(net, eq.loss, eq.target)
    if not np.all(np.isfinite(f(at))):
        return "undefined"
    fd = finite_difference(f, at)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = np.broadcast_to(np.asarray(form.closed(net), float), fd.shape)
    mask = np.ones(fd.shape, bool)
    if form.where is not None:
        where = form.where(net)
        mask = np.broadcast_to(where.reshape(where.shape + (1,) * (fd.ndim - where.ndim)), fd.shape)
    ok = np.allclose(closed[mask], fd[mask], rtol=1e-5, atol=1e-6)
    return "agrees" if ok else "disagrees"


# ------------------------------------------------------------- the generic comparison


def test_compare_gradient_agrees_for_the_derivative_of_a_sum_of_squares():
    x = np.array([[0.3, -1.2, 2.0], [0.7, -0.1, 1.5]])
    outcome = core.compare_gradient(2 * x, lambda v: tf.reduce_sum(v**2), x)
    assert outcome.verdict == "agrees"
    assert outcome.max_abs_error < 1e-14


def test_compare_gradient_disagrees_for_a_wrong_formula():
    x = np.array([[0.3, -1.2, 2.0], [0.7, -0.1, 1.5]])
    outcome = core.compare_gradient(3 * x, lambda v: tf.reduce_sum(v**2), x)
    assert outcome.verdict == "disagrees"
    # |3x - 2x| / max(|3x|, |2x|) = 1/3 everywhere; the largest abs error is at |x| = 2.
    assert outcome.max_rel_error == pytest.approx(1 / 3)
    assert outcome.max_abs_error == pytest.approx(2.0)


def test_a_small_relative_slip_is_still_caught():
    x = np.linspace(0.5, 2.0, 6)
    outcome = core.compare_gradient(2 * x * (1 + 1e-5), lambda v: tf.reduce_sum(v**2), x)
    assert outcome.verdict == "disagrees"


def test_compare_only_looks_inside_the_case():
    closed, auto = np.array([1.0, 5.0]), np.array([1.0, 0.0])
    assert core.compare(closed, auto, where=np.array([True, False])).verdict == "agrees"
    assert core.compare(closed, auto).verdict == "disagrees"
    with pytest.raises(ValueError, match="nothing to compare"):
        core.compare(closed, auto, where=np.array([False, False]))


def test_a_unit_mask_selects_whole_rows_of_a_weight_gradient():
    auto = np.zeros((2, 3, 4))
    auto[0, 1, 2] = 1.0
    mask = np.ones((2, 3), bool)
    assert core.compare(0.0, auto, where=mask).verdict == "disagrees"
    mask[0, 1] = False
    assert core.compare(0.0, auto, where=mask).verdict == "agrees"


def test_exact_zeros_on_both_sides_agree():
    assert core.compare(np.zeros(3), np.zeros(3)).max_rel_error == 0.0


def test_non_finite_values_never_agree():
    outcome = core.compare([1.0, np.nan], [1.0, 1.0])
    assert not outcome.finite
    assert outcome.verdict == "disagrees"


def test_autodiff_gives_one_gradient_per_sample_for_a_vector_objective():
    w = np.array([[1.0, 2.0], [3.0, -1.0]])
    jac = core.autodiff(lambda v: tf.reduce_sum(v**2, axis=1), w)
    expected = np.zeros((2, 2, 2))
    expected[0, 0], expected[1, 1] = 2 * w[0], 2 * w[1]
    np.testing.assert_allclose(jac, expected)


def test_autodiff_reports_no_gradient_where_the_objective_is_infinite():
    # TensorFlow would say 0 here (the ReLU's select drops the inf); the function has no slope.
    u = np.array([-1.0, 2.0])
    grad = core.autodiff(lambda v: tf.reduce_sum(-tf.math.log(tf.maximum(v, 0.0))), u)
    assert np.isnan(grad).all()


# ------------------------------------------------------------- a hand-built I-divergence case


def test_i_divergence_output_delta_on_a_hand_case():
    ut = np.array([[0.5, 2.0, -0.4]])
    x = np.array([[0.25, 0.5, 0.8]])
    # By hand: dE_I1/dut = log(ut/x) = [log 2, log 4] on live units, dE_I2/dut = 1 - x/ut =
    # [1/2, 3/4]; a dead unit (ut <= 0, output max(ut, eps) = eps) has slope 0.
    hand = {"E_I1": [np.log(2.0), np.log(4.0), 0.0], "E_I2": [0.5, 0.75, 0.0]}
    relu = thesis.ACTIVATIONS["relu_eps"]
    for loss, expected in hand.items():
        grad = core.autodiff(lambda v, e=thesis.LOSSES[loss]: tf.reduce_sum(e(relu(v), x)), ut)
        np.testing.assert_allclose(grad[0], expected, rtol=1e-12, atol=1e-15)
        fd = finite_difference(lambda v, e=NP_LOSS[loss]: e(np.maximum(v, EPS), x).sum(), ut)
        np.testing.assert_allclose(fd[0], expected, rtol=1e-6, atol=1e-8)


def test_the_thesis_closed_forms_evaluate_the_printed_expressions_on_a_hand_net():
    x = np.array([[0.25, 0.5]])
    ut = np.array([[0.5, -0.3]])
    wt = np.array([[0.1, 2.0], [0.2, -3.0]])  # bias column, then one code unit
    net = thesis.Net(
        "relu_eps",
        "relu_eps",
        x,
        np.zeros((1, 3)),
        wt,
        np.array([[0.7]]),
        np.array([[0.7]]),
        ut,
        np.maximum(ut, EPS),
    )
    closed = {eq.eq: eq.closed for eq in thesis.THESIS_EQUATIONS}
    with np.errstate(invalid="ignore"):  # the printed log is taken at the dead unit too
        np.testing.assert_allclose(closed[44](net)[0, 0], np.log(2.0))
        # Eq. 48 sums over I = {k : ut_k > 0} only: 2.0 * log(0.5 / 0.25).
        np.testing.assert_allclose(closed[48](net), [[2.0 * np.log(2.0)]])
    # Eq. 59: -sum_{k in I} Wt_kj (x_k/ut_k - 1) = -2.0 * (0.5 - 1) = 1.0.
    np.testing.assert_allclose(closed[59](net), [[1.0]])
    # Eq. 63: (1 - x/ut) y_j with y_0 = 1 for the bias column.
    np.testing.assert_allclose(closed[63](net)[0, 0], [0.5, 0.35])


def test_a_sum_over_every_k_instead_of_I_is_caught_on_the_sampled_net():
    primary = check("thesis-eq59").forms[0]
    wrong = dataclasses.replace(primary, closed=lambda n: -(n.x / n.ut - 1) @ n.wt[:, 1:])
    assert core.evaluate(wrong, 0).verdict == "disagrees"
    assert core.evaluate(primary, 0).verdict == "agrees"


def test_the_sampled_net_has_every_case_clear_of_the_kink():
    net = thesis.make_net(0, "relu_eps", "relu_eps")
    for a in (net.u, net.ut):
        assert (np.abs(a) > thesis.MARGIN).all()
        assert ((a > 0).any(axis=1) & (a < 0).any(axis=1)).all()


# ------------------------------------------------------------- verdicts against NumPy FD


@pytest.mark.parametrize("eq", thesis.THESIS_EQUATIONS, ids=lambda eq: f"eq{eq.eq}")
def test_thesis_verdicts_match_numpy_finite_differences(eq, by_id):
    thesis_check = check(f"thesis-eq{eq.eq}")
    primary, other = thesis_check.forms
    result = by_id[thesis_check.id]
    assert result.verdict == fd_verdict(primary, eq)
    expected_other = fd_verdict(other, eq)
    assert f"{other.label}: {expected_other}" in result.note


def np_q(x, beta):
    e = np.exp(-beta * x)
    return e / e.sum(axis=1, keepdims=True)


def np_balance(s, x):
    m, n = x.shape
    return s.lam * np.log(n / m * np_q(x, s.beta)).sum()


def np_total(s, x):
    q = np_q(x, s.beta)
    return -(q * np.log(q)).sum() + np_balance(s, x)


def test_entropy_eq3_slip_is_confirmed_by_finite_differences(by_id):
    s, b = ent.make_scores(0), ent.BETA
    fd = finite_difference(lambda x: (b * x * np.exp(-b * x)).sum(), s.x)
    e = np.exp(-b * s.x)
    assert not np.allclose(b * e * (1 - s.x), fd, rtol=1e-5, atol=1e-6)
    assert np.allclose(b * e * (1 - b * s.x), fd, rtol=1e-5, atol=1e-6)
    assert by_id["entropy-eq3"].verdict == "disagrees"
    assert "with (1 - beta X_k) for (1 - X_k): agrees" in by_id["entropy-eq3"].note


@pytest.mark.parametrize(
    "check_id, objective", [("entropy-eq13", np_balance), ("entropy-eq14", np_total)]
)
def test_entropy_lambda_term_is_off_by_n_per_finite_differences(check_id, objective, by_id):
    s = ent.make_scores(0)
    n = s.x.shape[1]
    fd = finite_difference(lambda c: objective(s, s.x + c), np.zeros(n))
    q, b = s.q, ent.BETA
    entropy_part = (b**2 * q * (s.mean_xq - s.x)).sum(axis=0) if check_id.endswith("14") else 0
    as_written = entropy_part + s.lam * (b * (q - 1)).sum(axis=0)
    corrected = entropy_part + s.lam * (b * (n * q - 1)).sum(axis=0)
    assert not np.allclose(as_written, fd, rtol=1e-5, atol=1e-6)
    assert np.allclose(corrected, fd, rtol=1e-5, atol=1e-6)
    assert by_id[check_id].verdict == "disagrees"
    assert "with (N q_{k,m} - 1) for (q_{k,m} - 1): agrees" in by_id[check_id].note


def test_entropy_eq12_agrees_with_finite_differences(by_id):
    s, b = ent.make_scores(0), ent.BETA

    def entropy(x):
        q = np_q(x, b)
        return -(q * np.log(q)).sum()

    fd = finite_difference(entropy, s.x)
    assert np.allclose(b**2 * s.q * (s.mean_xq - s.x), fd, rtol=1e-5, atol=1e-7)
    assert by_id["entropy-eq12"].verdict == "agrees"


def test_cross_entropy_weight_gradient_agrees_with_finite_differences(by_id):
    c = ce.make_classifier(0)

    def total(w):
        f = w @ c.x
        picked = f[c.labels, np.arange(f.shape[1])]
        return (-picked + np.log(np.exp(f).sum(axis=0))).sum() + c.lam / 2 * (w**2).sum()

    fd = finite_difference(total, c.w)
    assert np.allclose((c.yhat - c.onehot) @ c.x.T + c.lam * c.w, fd, rtol=1e-5, atol=1e-7)
    assert by_id["crossentropy-weights"].verdict == "agrees"


# ------------------------------------------------------------- the report


def test_every_required_id_is_present_exactly_once(results):
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids))
    assert set(REQUIRED_IDS) <= set(ids)


def test_verdicts_follow_the_stated_tolerance(results):
    for r in results:
        assert r.verdict in ("agrees", "disagrees")
        assert (r.verdict == "agrees") == (r.max_rel_error < core.RTOL), r.id
        assert r.max_abs_error >= 0 and r.max_rel_error >= 0


def test_every_disagreement_names_a_form_that_agrees(results):
    for r in results:
        if r.verdict == "disagrees":
            assert ": agrees" in r.note, r.id


def test_run_checks_is_deterministic(results):
    assert [r.to_dict() for r in gc.run_checks(0)] == [r.to_dict() for r in results]


def test_json_has_exactly_the_required_keys(results):
    items = json.loads(gc.render(results, "json"))
    assert [item["id"] for item in items] == [r.id for r in results]
    for item in items:
        assert set(item) == KEYS
        assert isinstance(item["max_abs_error"], float)


def test_markdown_explains_the_method_and_has_one_row_per_check(results):
    text = gc.render(results, "md")
    assert "GradientTape" in text and "1e-06" in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| id |")
    ]
    assert len(rows) == len(results)


def test_table_lists_every_check(results):
    text = gc.render(results, "table")
    for r in results:
        assert f"\n{r.id} " in text or text.startswith(f"{r.id} ")


def test_an_unknown_format_is_a_user_error(results):
    with pytest.raises(UserError, match="unknown format"):
        gc.render(results, "html")


# ------------------------------------------------------------- known answers, worked by hand
# Each "as written" closed form is evaluated at a point where the answer can be worked out on
# paper, so a formula swapped for a different expression (even a correct one) is caught.


def closed_form(check_id, label="as written"):
    return next(f for f in check(check_id).forms if f.label == label).closed


def test_the_known_answer_cases_use_these_constants():
    assert (ent.BETA, ent.LAMBDA) == (1.5, 0.25)


def uniform_scores(m=3, n=5, value=0.7):
    """Every image scores every neuron alike: q_{m,k} = 1/N everywhere."""
    return ent.Scores(np.full((m, n), value), ent.BETA, ent.LAMBDA)


def test_entropy_eq12_is_zero_at_uniform_scores():
    # beta^2 q_k (sum_i X_i q_i - X_k) = beta^2 (1/N) (0.7 - 0.7) = 0: H is at its maximum.
    s = uniform_scores()
    np.testing.assert_allclose(closed_form("entropy-eq12")(s), np.zeros((3, 5)), atol=1e-15)
    auto = core.autodiff(lambda x: ent.entropy(s, x), s.x)
    np.testing.assert_allclose(auto, np.zeros((3, 5)), atol=1e-15)


def test_entropy_eq13_and_eq14_as_written_at_uniform_scores():
    # As written: lambda sum_m beta (q_{k,m} - 1) = lambda M beta (1/N - 1)
    #   = 0.25 * 3 * 1.5 * (1/5 - 1) = -0.9 for every k.
    # Corrected: lambda sum_m beta (N q_{k,m} - 1) = lambda M beta (1 - 1) = 0, which is what
    # autodiff finds: uniform q is where A is stationary. Eq. 14 adds eq. 12's 0.
    s = uniform_scores()
    for check_id in ("entropy-eq13", "entropy-eq14"):
        np.testing.assert_allclose(closed_form(check_id)(s), np.full(5, -0.9), rtol=1e-12)
        corrected = closed_form(check_id, "with (N q_{k,m} - 1) for (q_{k,m} - 1)")(s)
        np.testing.assert_allclose(corrected, np.zeros(5), atol=1e-15)
    auto = core.autodiff(lambda c: ent.balance(s, s.x + c), np.zeros(5))
    np.testing.assert_allclose(auto, np.zeros(5), atol=1e-14)


def test_entropy_eq5_at_uniform_scores():
    # beta q (q - 1) = 1.5 * 0.2 * (0.2 - 1) = -0.24.
    s = uniform_scores()
    np.testing.assert_allclose(closed_form("entropy-eq5")(s), np.full((3, 5), -0.24), rtol=1e-12)


def zero_score_classifier():
    """Three classes, two features, two samples (classes 1 and 0), weights all zero: f = 0."""
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    return ce.Classifier(np.zeros((3, 2)), x, np.array([1, 0]), 0.5)


def test_softmax_gradient_at_zero_scores_is_one_over_c_minus_delta():
    # f = 0 gives y_hat = 1/C = 1/3 for every class; the gradient is 1/3 - delta_{j,k}.
    c = zero_score_classifier()
    expected = np.array([[1 / 3, -2 / 3], [-2 / 3, 1 / 3], [1 / 3, 1 / 3]])
    for form in check("crossentropy-softmax").forms:
        np.testing.assert_allclose(form.closed(c), expected, rtol=1e-12)
    np.testing.assert_allclose(core.autodiff(lambda f: ce.nll(c, f), c.f), expected, rtol=1e-12)


def test_cross_entropy_weight_gradient_at_zero_weights():
    # (y_hat - delta) x^T + lambda W with W = 0: columns of 1/3 - delta times x^T.
    c = zero_score_classifier()
    expected = np.array([[1 / 3, -4 / 3], [-2 / 3, 2 / 3], [1 / 3, 2 / 3]])
    np.testing.assert_allclose(closed_form("crossentropy-weights")(c), expected, rtol=1e-12)


def hand_net(dec, ut, x):
    """A one-sample net with the given decoder total inputs; the encoder is not used."""
    act = NP_ACT[dec]
    return thesis.Net(
        "relu_eps",
        dec,
        x,
        np.zeros((1, 3)),
        np.zeros((2, 2)),
        *[np.array([[0.7]])] * 2,
        ut,
        act(ut),
    )


def test_sigmoid_unit_at_zero_for_eqs_65_and_71():
    # f(0) = 1/2 and f'(0) = 1/4. With x = 1/4 and x = 1:
    # eq. 65, f(1 - f) log(f/x) = (1/4) log 2 and (1/4) log(1/2);
    # eq. 71, (1 - f)(f - x) = (1/2)(1/4) = 1/8 and (1/2)(-1/2) = -1/4.
    x = np.array([[0.25, 1.0]])
    net = hand_net("sigmoid", np.zeros((1, 2)), x)
    eq65 = np.log(2.0) / 4 * np.array([[1.0, -1.0]])
    eq71 = np.array([[0.125, -0.25]])
    closed = {eq.eq: eq.closed for eq in thesis.THESIS_EQUATIONS}
    np.testing.assert_allclose(closed[65](net), eq65, rtol=1e-12)
    np.testing.assert_allclose(closed[71](net), eq71, rtol=1e-12)
    sigmoid = thesis.ACTIVATIONS["sigmoid"]
    for loss, expected in (("E_I1", eq65), ("E_I2", eq71)):
        auto = core.autodiff(
            lambda u, e=thesis.LOSSES[loss]: tf.reduce_sum(e(sigmoid(u), x)), net.ut
        )
        np.testing.assert_allclose(auto, expected, rtol=1e-12)


def test_relu_units_for_eqs_44_and_45_split_live_from_dead():
    # Live unit ut = 0.5 > 0 with x = 0.25: eq. 44 gives log(0.5/0.25) = log 2.
    # Dead unit ut = -0.3: the output is the floor eps, slope 0, and eq. 45 gives 0.
    x = np.array([[0.25, 0.5]])
    net = hand_net("relu_eps", np.array([[0.5, -0.3]]), x)
    eqs = {eq.eq: eq for eq in thesis.THESIS_EQUATIONS}
    with np.errstate(invalid="ignore"):  # eq. 44's log is evaluated at the dead unit too
        assert eqs[44].closed(net)[0, 0] == pytest.approx(np.log(2.0), rel=1e-12)
    assert eqs[45].closed(net) == 0.0
    live = check("thesis-eq44").forms[0].where(net)
    dead = check("thesis-eq45").forms[0].where(net)
    np.testing.assert_array_equal(live, [[True, False]])
    np.testing.assert_array_equal(dead, [[False, True]])
    relu = thesis.ACTIVATIONS["relu_eps"]
    auto = core.autodiff(lambda u: tf.reduce_sum(thesis.e_i1(relu(u), x)), net.ut)
    np.testing.assert_allclose(auto, [[np.log(2.0), 0.0]], rtol=1e-12, atol=1e-15)
