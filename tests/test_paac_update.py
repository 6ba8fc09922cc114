"""PAAC's update wired right: the loss of a window against numpy, learning on a bandit."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.optimizers import RMSProp
from agents_gin.algorithms.paac import PAAC
from agents_gin.checks import ConfigError
from agents_gin.networks.feed_forward import FeedForwardCategorical, FeedForwardGaussian

OBSERV = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
T_MAX, NUM_ENVS = 4, 3


def small(network_class):
    """A network factory with small layers, as PAAC calls it."""
    def make(observation_space, action_space, seed=0):
        return network_class(observation_space, action_space, policy_layers=(8,),
                             value_layers=(8,), seed=seed)
    return make


def numpy_n_step(reward, terminated, truncated, next_value, discount):
    """Returns [T, N]: each env's return walked back from the window's end."""
    steps, envs = reward.shape
    returns = np.zeros_like(reward)
    for env in range(envs):
        following = None
        for t in reversed(range(steps)):
            if following is None or truncated[t, env]:
                following = next_value[t, env]  # Bootstrap: window end or time limit.
            if terminated[t, env]:
                following = 0.0
            following = reward[t, env] + discount * following
            returns[t, env] = following
    return returns


def window(action_space, seed=0):
    """A random window with a termination and a truncation in the middle."""
    rng = np.random.default_rng(seed)
    if isinstance(action_space, gym.spaces.Discrete):
        action = rng.integers(0, action_space.n, (T_MAX, NUM_ENVS)).astype(np.int32)
    else:
        action = rng.uniform(-1, 1, (T_MAX, NUM_ENVS) + action_space.shape).astype(np.float32)
    terminated, truncated = np.zeros((2, T_MAX, NUM_ENVS), bool)
    terminated[1, 0] = True
    truncated[2, 1] = True
    return {'observ': rng.normal(size=(T_MAX, NUM_ENVS, 3)).astype(np.float32),
            'next_observ': rng.normal(size=(T_MAX, NUM_ENVS, 3)).astype(np.float32),
            'action': action, 'reward': rng.normal(size=(T_MAX, NUM_ENVS)).astype(np.float32),
            'terminated': terminated, 'truncated': truncated}


def log_prob_and_entropy(policy, action):
    """numpy log pi(a) and entropy from the network's distribution parameters."""
    if 'logits' in policy.parameters():
        logits = policy.logits.numpy()
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        chosen = np.take_along_axis(log_probs, action[:, None], 1)[:, 0]
        return chosen, -np.sum(np.exp(log_probs) * log_probs, -1)
    mean, std = policy.mean.numpy(), policy.std.numpy()
    log_prob = np.sum(-0.5 * ((action - mean) / std) ** 2 - np.log(std)
                      - 0.5 * np.log(2 * np.pi), -1)
    return log_prob, np.sum(0.5 * np.log(2 * np.pi * np.e * std ** 2), -1)


@pytest.mark.parametrize('network, action_space', [
    (small(FeedForwardCategorical), gym.spaces.Discrete(3)),
    (small(FeedForwardGaussian), gym.spaces.Box(-1, 1, (2,), np.float32))])
def test_window_loss_equals_a_numpy_reference(network, action_space):
    agent = PAAC(OBSERV, action_space, NUM_ENVS, network=network, t_max=T_MAX, discount=0.9,
                 entropy_coef=0.05, value_coef=0.3, loss_scale=2.0, learning_rate_decay=None)
    data = window(action_space)
    terms = {key: value.numpy() for key, value in agent._loss(
        {key: tf.constant(value) for key, value in data.items()}).items()}
    flat = lambda array: array.reshape((T_MAX * NUM_ENVS,) + array.shape[2:])  # noqa: E731
    next_value = agent.network.value(flat(data['next_observ'])).numpy().reshape(T_MAX,
                                                                               NUM_ENVS)
    returns = flat(numpy_n_step(data['reward'], data['terminated'], data['truncated'],
                                next_value, 0.9))
    np.testing.assert_allclose(terms['return'], returns, rtol=1e-5, atol=1e-6)
    policy, value = agent.network(flat(data['observ']))
    log_prob, entropy = log_prob_and_entropy(policy, flat(data['action']))
    advantage = returns - value.numpy()
    expected = {'policy_loss': -np.mean(log_prob * advantage), 'entropy': np.mean(entropy),
                'value_loss': np.mean(advantage ** 2)}
    expected['loss'] = 2.0 * (expected['policy_loss'] - 0.05 * expected['entropy']
                              + 0.3 * expected['value_loss'])
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_n_step_returns_by_hand():
    # One env, window of 3, discount 0.5: r = (1, 2, 4), V(s'_t) = (10, 20, 40).
    from agents_gin.algorithms.paac import n_step_returns
    reward = tf.constant([[1.0], [2.0], [4.0]])
    next_value = tf.constant([[10.0], [20.0], [40.0]])
    no = tf.constant([[False]] * 3)

    def returns(terminated=no, truncated=no):
        return n_step_returns(reward, terminated, truncated, next_value, 0.5).numpy()[:, 0]

    # Bootstrapped from V(s'_2) = 40 at the window's end: 4 + 20 = 24, 2 + 12 = 14, 1 + 7 = 8.
    np.testing.assert_allclose(returns(), [8.0, 14.0, 24.0])
    # Terminated at t=1: nothing follows it; t=2 starts a new episode.
    terminated = tf.constant([[False], [True], [False]])
    np.testing.assert_allclose(returns(terminated=terminated), [2.0, 2.0, 24.0])
    # Truncated at t=1: V(s'_1) = 20 follows it.
    np.testing.assert_allclose(returns(truncated=terminated), [1 + 0.5 * 12, 12.0, 24.0])


def play_bandit(agent, reward_of, windows):
    """Windows of one-step episodes from a constant observation, through `experience`."""
    observ = tf.constant(np.tile([[0.5, -0.5, 1.0]], (NUM_ENVS, 1)).astype(np.float32))
    indices = tf.range(NUM_ENVS)
    for _ in range(windows * T_MAX):
        action = agent.perform(indices, observ)
        agent.experience(indices, observ, action, reward_of(action), tf.fill([NUM_ENVS], True),
                         tf.fill([NUM_ENVS], False), observ)
    return observ


# The original's initialisation (mean square 1) takes much smaller first steps.
@pytest.mark.parametrize('optimizer, learning_rate', [
    (RMSProp, 0.01), (lambda v: RMSProp(v, initial_mean_square=1.0), 0.1)])
def test_updates_raise_the_better_actions_probability_and_fit_the_value(optimizer,
                                                                        learning_rate):
    agent = PAAC(OBSERV, gym.spaces.Discrete(3), NUM_ENVS, network=small(FeedForwardCategorical),
                 optimizer=optimizer, t_max=T_MAX, learning_rate=learning_rate,
                 learning_rate_decay=None, entropy_coef=0.0, max_gradient_norm=None, seed=0)
    observ = play_bandit(agent, lambda a: tf.zeros(NUM_ENVS), 0)
    probability_before = float(tf.exp(agent.network.policy(observ).log_probs)[0, 2])
    value_error_before = float(tf.reduce_mean(tf.square(agent.network.value(observ) - 1)))
    # Reward 1 for action 2, 0.5 for the others; episodes of one step, so the value's
    # target is the mean reward, about 2/3 under the initial policy.
    play_bandit(agent, lambda a: tf.where(tf.equal(a, 2), 1.0, 0.5), 10)
    assert int(agent.updates) == 10 and int(agent.nonfinite_steps) == 0
    assert float(tf.exp(agent.network.policy(observ).log_probs)[0, 2]) > probability_before + 0.1
    value_error = float(tf.reduce_mean(tf.square(agent.network.value(observ) - 0.67)))
    assert value_error < 0.5 * value_error_before


def test_gaussian_update_statistics_are_written_per_update(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    agent = PAAC(OBSERV, gym.spaces.Box(-1, 1, (2,), np.float32), NUM_ENVS,
                 network=small(FeedForwardGaussian), t_max=T_MAX, learning_rate_decay=0.5,
                 total_steps=10 * T_MAX * NUM_ENVS)
    with writer.as_default():
        play_bandit(agent, lambda a: a[:, 0], 3)
    writer.flush()
    tags = {}
    for path in tmp_path.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    for tag in ('losses/policy_loss', 'losses/value_loss', 'losses/entropy',
                'losses/explained_variance', 'charts/action_std', 'charts/update_seconds'):
        assert [step for step, _ in tags[tag]] == [12, 24, 36], tag
    # Annealed over half of a 120-step run, by the steps before each window: 0, 12, 24.
    rates = [rate for _, rate in tags['charts/learning_rate']]
    np.testing.assert_allclose(rates, [0.0224, 0.0224 * 0.8, 0.0224 * 0.6], rtol=1e-5)


@pytest.mark.parametrize('binding, value, message', [
    ('t_max', 0, 'PAAC.t_max = 0 is invalid: expected an integer >= 1.'),
    ('discount', 1.01, 'PAAC.discount = 1.01 is invalid: expected a number in (0, 1].'),
    ('entropy_coef', -1, 'PAAC.entropy_coef = -1 is invalid: expected a number >= 0.'),
    ('loss_scale', 0, 'PAAC.loss_scale = 0 is invalid: expected a number > 0.'),
    ('reward_clip', -1, 'PAAC.reward_clip = -1 is invalid: expected a number > 0 or None.'),
])
def test_paac_values_are_validated(binding, value, message):
    with pytest.raises(ConfigError) as error:
        PAAC(OBSERV, gym.spaces.Discrete(3), NUM_ENVS, network=small(FeedForwardCategorical),
             total_steps=1000, **{binding: value})
    assert str(error.value).splitlines()[0] == message
