"""The hand-written optimizers step by step against Keras's and TF1's, and the LR schedule."""

import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.optimizers import Adam, RMSProp, apply_if_finite, linear_decay
from agents_gin.checks import ConfigError


def gradient_sequence(steps=6, seed=0):
    """Gradients for a [3, 2] and a [2] variable, of varied scales and signs."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(0, scale, (3, 2)).astype(np.float32),
             rng.normal(0, scale, (2,)).astype(np.float32)]
            for scale in np.geomspace(0.01, 10, steps)]


def initial_values():
    return [np.arange(6, dtype=np.float32).reshape(3, 2) / 7, np.array([0.5, -0.25], np.float32)]


def run_ours(make, learning_rates, gradients):
    variables = [tf.Variable(value) for value in initial_values()]
    optimizer = make(variables)
    history = []
    for rate, grads in zip(learning_rates, gradients):
        optimizer.apply([tf.constant(g) for g in grads], variables, tf.constant(rate))
        history.append([v.numpy().copy() for v in variables])
    return history


def run_keras(optimizer, learning_rates, gradients):
    variables = [tf.Variable(value) for value in initial_values()]
    history = []
    for rate, grads in zip(learning_rates, gradients):
        optimizer.learning_rate.assign(rate)
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables))
        history.append([v.numpy().copy() for v in variables])
    return history


def assert_same_history(ours, theirs):
    for step, (mine, reference) in enumerate(zip(ours, theirs)):
        for variable, expected in zip(mine, reference):
            np.testing.assert_allclose(variable, expected, atol=1e-6, rtol=0,
                                       err_msg=f'step {step}')


# Rates vary from step to step because our schedules feed a new rate on each update.
RATES = [1e-2, 3e-2, 5e-3, 1e-1, 2e-2, 1e-2]


@pytest.mark.parametrize('beta1, beta2, epsilon', [(0.9, 0.999, 1e-5), (0.5, 0.9, 1e-3)])
def test_adam_matches_keras_step_by_step(beta1, beta2, epsilon):
    gradients = gradient_sequence()
    ours = run_ours(lambda v: Adam(v, beta1, beta2, epsilon), RATES, gradients)
    keras = tf.keras.optimizers.Adam(1.0, beta_1=beta1, beta_2=beta2, epsilon=epsilon)
    assert_same_history(ours, run_keras(keras, RATES, gradients))


@pytest.mark.parametrize('decay, epsilon', [(0.99, 0.1), (0.9, 1e-4)])
def test_rmsprop_matches_keras_step_by_step(decay, epsilon):
    gradients = gradient_sequence(seed=1)
    ours = run_ours(lambda v: RMSProp(v, decay, epsilon), RATES, gradients)
    keras = tf.keras.optimizers.RMSprop(1.0, rho=decay, epsilon=epsilon)
    assert_same_history(ours, run_keras(keras, RATES, gradients))


def test_rmsprop_with_the_originals_initialisation_matches_tf1():
    # PAAC's original used TF1's RMSPropOptimizer(decay=0.99, epsilon=0.1): mean square at 1.
    gradients = gradient_sequence(seed=2)
    ours = run_ours(lambda v: RMSProp(v, 0.99, 0.1, initial_mean_square=1.0), RATES, gradients)
    variables = [tf.Variable(value) for value in initial_values()]
    rate = tf.Variable(1.0)
    tf1 = tf.compat.v1.train.RMSPropOptimizer(lambda: rate.read_value(), decay=0.99,
                                              epsilon=0.1)
    theirs = []
    for value, grads in zip(RATES, gradients):
        rate.assign(value)
        tf1.apply_gradients(zip([tf.constant(g) for g in grads], variables))
        theirs.append([v.numpy().copy() for v in variables])
    assert_same_history(ours, theirs)
    # And the default (0, as Keras) really differs from it on the first step.
    default = run_ours(lambda v: RMSProp(v, 0.99, 0.1), RATES[:1], gradients[:1])
    assert np.abs(default[0][0] - theirs[0][0]).max() > 1e-4


@pytest.mark.parametrize('make', [Adam, RMSProp])
def test_optimizers_step_inside_a_tf_function_and_resume_from_a_checkpoint(make, tmp_path):
    gradients = [[tf.constant(g) for g in grads] for grads in gradient_sequence()]
    variables = [tf.Variable(value) for value in initial_values()]
    optimizer = make(variables)
    step = tf.function(lambda grads, rate: optimizer.apply(grads, variables, rate))
    for grads in gradients[:3]:
        step(grads, tf.constant(0.01))
    path = tf.train.Checkpoint(optimizer=optimizer, variables=variables).save(
        str(tmp_path / 'ckpt'))
    step(gradients[3], tf.constant(0.01))
    fresh_variables = [tf.Variable(tf.zeros_like(value)) for value in initial_values()]
    fresh = make(fresh_variables)
    tf.train.Checkpoint(optimizer=fresh, variables=fresh_variables).restore(path)
    fresh.apply(gradients[3], fresh_variables, tf.constant(0.01))
    # The resumed step equals the uninterrupted one only if every slot was restored.
    for resumed, continued in zip(fresh_variables + list(fresh.variables),
                                  variables + list(optimizer.variables)):
        np.testing.assert_allclose(resumed.numpy(), continued.numpy(), rtol=1e-6)


def test_apply_if_finite_clips_by_global_norm_and_skips_nonfinite():
    variable = tf.Variable([0.0, 0.0])
    optimizer, skipped = RMSProp([variable], decay=0.0, epsilon=1e-12), tf.Variable(0)
    norm = apply_if_finite(optimizer, tf.constant(1.0), [tf.constant([3.0, 4.0])], [variable],
                           1.0, 1.0, skipped)
    assert float(norm) == pytest.approx(5.0)
    # Clipped to norm 1: g = (0.6, 0.8); decay 0 makes the step g / |g| elementwise = 1.
    np.testing.assert_allclose(variable.numpy(), [-1.0, -1.0], rtol=1e-5)
    apply_if_finite(optimizer, tf.constant(np.nan), [tf.constant([1.0, 1.0])], [variable], 1.0,
                    None, skipped)
    assert int(skipped) == 1
    np.testing.assert_allclose(variable.numpy(), [-1.0, -1.0], rtol=1e-5)


def test_linear_decay_is_a_fraction_of_the_run():
    assert float(linear_decay(0.1, 0, 0.5, 1000)) == pytest.approx(0.1)
    assert float(linear_decay(0.1, 250, 0.5, 1000)) == pytest.approx(0.05)
    assert float(linear_decay(0.1, 900, 0.5, 1000)) == 0.0
    assert float(linear_decay(0.1, 900, None, 1000)) == pytest.approx(0.1)


@pytest.mark.parametrize('make, message', [
    (lambda: Adam([], beta1=1.0), 'Adam.beta1 = 1.0 is invalid: expected a number in [0, 1).'),
    (lambda: Adam([], epsilon=0), 'Adam.epsilon = 0 is invalid: expected a number > 0.'),
    (lambda: RMSProp([], decay=-0.1),
     'RMSProp.decay = -0.1 is invalid: expected a number in [0, 1).'),
    (lambda: RMSProp([], initial_mean_square=-1),
     'RMSProp.initial_mean_square = -1 is invalid: expected a number >= 0.'),
])
def test_optimizer_values_are_validated(make, message):
    with pytest.raises(ConfigError) as error:
        make()
    assert str(error.value).splitlines()[0] == message  # gin appends where it was called.
