"""PPO's update wired right: the loss of a batch against numpy, ratio 1 at the start, learning.

The parts (GAE, normaliser, distributions, objectives) have their own references in
test_ppo_parts.py; these tests check that PPO feeds them the right tensors: signs,
targets, bootstraps, coefficients, the stored acting policy and recurrent state.
"""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.ppo import PPO
from agents_gin.algorithms.ppo.objectives import ClippedSurrogate, KLPenalty
from agents_gin.checks import ConfigError
from agents_gin.networks.feed_forward import FeedForwardCategorical, FeedForwardGaussian
from agents_gin.networks.recurrent import RecurrentGaussian

OBSERV = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACTION = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def small(network_class, **kwargs):
    """A network factory with small layers, as PPO calls it."""
    def make(observation_space, action_space, seed=0):
        return network_class(observation_space, action_space, policy_layers=(8, 6),
                             value_layers=(8,), seed=seed, **kwargs)
    return make


def play(agent, episodes, rng):
    """Plays scripted episodes through the agent interface, one per environment, side by side.

    `episodes[i]` = (length, ending) for environment i; ending is 'terminated' or
    'truncated'. Observations and rewards are random. Returns each episode's
    observations [L+1, 3] (the last is the final next observation), actions and
    rewards, in the order the episodes finished (the order of PPO's batch rows).
    """
    num_envs = len(episodes)
    agent.begin_episode(tf.range(num_envs))
    record = [{'observ': [rng.normal(size=3).astype(np.float32)], 'action': [], 'reward': []}
              for _ in episodes]
    finished = []
    for t in range(max(length for length, _ in episodes)):
        active = [i for i, (length, _) in enumerate(episodes) if t < length]
        indices = tf.constant(active, tf.int32)
        observ = np.stack([record[i]['observ'][-1] for i in active])
        action = agent.perform(indices, tf.constant(observ)).numpy()
        reward = rng.normal(size=len(active)).astype(np.float32)
        next_observ = rng.normal(size=(len(active), 3)).astype(np.float32)
        last = [episodes[i][0] == t + 1 for i in active]
        terminated = [end and episodes[i][1] == 'terminated' for end, i in zip(last, active)]
        truncated = [end and episodes[i][1] == 'truncated' for end, i in zip(last, active)]
        agent.experience(indices, tf.constant(observ), tf.constant(action),
                         tf.constant(reward), tf.constant(terminated), tf.constant(truncated),
                         tf.constant(next_observ))
        for row, i in enumerate(active):
            record[i]['observ'].append(next_observ[row])
            record[i]['action'].append(action[row])
            record[i]['reward'].append(reward[row])
        ended = [i for i, end in zip(active, last) if end]
        if ended:
            agent.end_episode(tf.constant(ended, tf.int32))
            finished += ended
    return [dict({key: np.array(value) for key, value in record[i].items()},
                 ending=episodes[i][1]) for i in finished]


def numpy_gae(rewards, values, bootstrap, discount, lambda_):
    """Advantages of one episode, step by step."""
    advantages, following = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(rewards) else bootstrap
        following = rewards[t] + discount * next_value - values[t] + discount * lambda_ * following
        advantages[t] = following
    return advantages


def gaussian_log_prob(x, mean, std):
    return np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), -1)


def gaussian_kl(mean0, std0, mean1, std1):
    return np.sum(np.log(std1 / std0) + (std0 ** 2 + (mean0 - mean1) ** 2) / (2 * std1 ** 2)
                  - 0.5, -1)


def make_ppo(**kwargs):
    settings = dict(network=small(FeedForwardGaussian), update_every=100, update_epochs=1,
                    max_length=8, discount=0.9, gae_lambda=0.8, entropy_coef=0.03,
                    value_coef=0.7, normalize_observ=True, normalize_reward=True, seed=3)
    settings.update(kwargs)
    return PPO(OBSERV, ACTION, num_envs=3, **settings)


# Env 0 terminates after 4 steps, env 1 is truncated after 3, env 2 after 5.
EPISODES = [(4, 'terminated'), (3, 'truncated'), (5, 'truncated')]


def policy_of(network, observ):
    """(mean, std) of the policy on one episode's observations [T, ...], from its start."""
    if hasattr(network, 'state_size'):
        policy = network.policy_sequence(observ[None], network.initial_state(1))
        return policy.mean.numpy()[0], policy.std.numpy()[0]
    policy = network.policy(observ)
    return policy.mean.numpy(), policy.std.numpy()


def clipped():
    return ClippedSurrogate(0.1)


def penalty():
    return KLPenalty(target=0.01, cutoff_factor=1.5, cutoff_coef=50.0, init_penalty=0.7)


@pytest.mark.parametrize('network, objective, value_target, bootstrap_truncated', [
    (FeedForwardGaussian, clipped, 'lambda_return', True),
    (FeedForwardGaussian, penalty, 'lambda_return', True),
    (FeedForwardGaussian, clipped, 'discounted_return', True),
    (FeedForwardGaussian, clipped, 'lambda_return', False),
    (RecurrentGaussian, clipped, 'lambda_return', True),
    (RecurrentGaussian, penalty, 'discounted_return', True),
])
def test_minibatch_loss_equals_a_numpy_reference(network, objective, value_target,
                                                 bootstrap_truncated):
    agent = make_ppo(network=small(network), objective=objective, value_target=value_target,
                     bootstrap_truncated=bootstrap_truncated)
    episodes = play(agent, EPISODES, np.random.default_rng(0))
    network = agent.network
    # What the acting policy and the value were, before training changes anything.
    for episode in episodes:
        observ = tf.constant(episode['observ'])
        episode['old_mean'], episode['old_std'] = policy_of(network, observ[:-1])
        episode['value'] = network.value(observ).numpy()  # Includes V(final observation).
    batch, old, _ = agent._prepare_batch()
    # Move the policy and value off the acting ones, so that every term is non-trivial.
    for variable in network.trainable_variables:
        variable.assign_add(0.15 * tf.random.stateless_normal(variable.shape, [1, 2]))
    terms = {key: float(value) for key, value in agent._loss(batch, old).items()}

    rewards = np.concatenate([episode['reward'] for episode in episodes])
    scale = 1 / (rewards.std(ddof=1) + 1e-8)  # The reward normaliser: scaled, not centred.
    advantages, targets, segments = [], [], []
    for index, episode in enumerate(episodes):
        value = episode['value']
        bootstrap = value[-1] if (episode['ending'] == 'truncated' and bootstrap_truncated) \
            else 0.0
        reward = np.clip(episode['reward'] * scale, -10, 10)
        advantage = numpy_gae(reward, value[:-1], bootstrap, 0.9, 0.8)
        if value_target == 'discounted_return':
            targets.append(numpy_gae(reward, value[:-1], bootstrap, 0.9, 1.0) + value[:-1])
        else:
            targets.append(advantage + value[:-1])
        advantages.append(advantage)
        segments += [index] * len(reward)
    advantage = np.concatenate(advantages)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    target = np.concatenate(targets)
    segments = np.array(segments)
    # Observations pass through the normaliser unchanged: it has no statistics yet.
    observ = tf.constant(np.concatenate([episode['observ'][:-1] for episode in episodes]))
    action = np.concatenate([episode['action'] for episode in episodes])
    old_mean = np.concatenate([episode['old_mean'] for episode in episodes])
    old_std = np.concatenate([episode['old_std'] for episode in episodes])
    new = [policy_of(network, tf.constant(episode['observ'][:-1])) for episode in episodes]
    mean = np.concatenate([episode_mean for episode_mean, _ in new])
    std = np.concatenate([episode_std for _, episode_std in new])
    log_ratio = gaussian_log_prob(action, mean, std) - gaussian_log_prob(action, old_mean,
                                                                         old_std)
    ratio = np.exp(log_ratio)
    kl = gaussian_kl(old_mean, old_std, mean, std)
    if isinstance(agent.objective, ClippedSurrogate):
        policy_loss = -np.mean(np.minimum(ratio * advantage,
                                          np.clip(ratio, 0.9, 1.1) * advantage))
    else:
        episode_kl = np.array([kl[segments == index].mean() for index in range(len(episodes))])
        policy_loss = (-np.mean(ratio * advantage) + 0.7 * kl.mean()
                       + 50.0 * np.mean(np.maximum(episode_kl - 0.015, 0) ** 2))
        assert (episode_kl > 0.015).any()  # The cutoff term is exercised.
    value_loss = 0.5 * np.mean((network.value(observ).numpy() - target) ** 2)
    entropy = np.mean(np.sum(0.5 * np.log(2 * np.pi * np.e * std ** 2), -1))
    expected = {'policy_loss': policy_loss, 'value_loss': value_loss, 'entropy': entropy,
                'loss': policy_loss + 0.7 * value_loss - 0.03 * entropy, 'kl': kl.mean(),
                'approx_kl': np.mean(ratio - 1 - log_ratio),
                'clip_fraction': np.mean(np.abs(ratio - 1) > 0.1)}
    if not isinstance(agent.objective, ClippedSurrogate):
        expected.pop('clip_fraction')
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=2e-4, abs=1e-6), name
    assert 0 < expected['clip_fraction' if 'clip_fraction' in expected else 'kl'] < 1


@pytest.mark.parametrize('network, action, chunk_length', [
    (small(FeedForwardGaussian), ACTION, None),
    (small(FeedForwardCategorical), gym.spaces.Discrete(3), None),
    (small(RecurrentGaussian), ACTION, None), (small(RecurrentGaussian), ACTION, 2)])
def test_first_minibatch_has_ratio_one_and_no_kl(network, action, chunk_length):
    agent = PPO(OBSERV, action, num_envs=3, network=network, update_every=100, max_length=8,
                chunk_length=chunk_length, seed=1)
    play(agent, EPISODES, np.random.default_rng(1))
    play(agent, [(2, 'terminated'), (6, 'truncated'), (1, 'terminated')],
         np.random.default_rng(2))
    batch, old, _ = agent._prepare_batch()
    step = agent._evaluate(batch, old)
    assert step['log_ratio'].shape == (4 + 3 + 5 + 2 + 6 + 1,)
    # The stored policy (and, recurrent, the stored state at each chunk's start) rebuilds
    # the acting policy exactly.
    np.testing.assert_allclose(step['log_ratio'].numpy(), 0, atol=2e-6)
    np.testing.assert_allclose(step['kl'].numpy(), 0, atol=2e-6)
    terms = agent._loss(batch, old)
    assert float(terms['approx_kl']) == pytest.approx(0, abs=1e-6)
    assert float(terms['clip_fraction']) == 0


def run_bandit(network, action_space, reward_of, objective=ClippedSurrogate, rounds=1,
               **kwargs):
    """One-step episodes from a constant observation; returns the agent and its batches."""
    settings = dict(network=network, objective=objective, update_every=16, update_epochs=8,
                    learning_rate=1e-2, max_length=4, normalize_observ=False, seed=0)
    settings.update(kwargs)
    agent = PPO(gym.spaces.Box(-1, 1, (2,), np.float32), action_space, 16, **settings)
    observ = tf.constant(np.tile([[0.5, -0.5]], (16, 1)).astype(np.float32))
    indices = tf.range(16)
    for _ in range(rounds):
        agent.begin_episode(indices)
        action = agent.perform(indices, observ)
        agent.experience(indices, observ, action, reward_of(action), tf.fill([16], True),
                         tf.fill([16], False), observ)
        agent.end_episode(indices)
    return agent, observ


def value_error(agent, observ, target):
    return float(tf.reduce_mean(tf.square(agent.network.value(observ) - target)))


@pytest.mark.parametrize('objective', [ClippedSurrogate, KLPenalty])
@pytest.mark.parametrize('network', [small(FeedForwardGaussian), small(RecurrentGaussian)])
def test_one_update_moves_a_gaussian_policy_towards_the_better_action(network, objective):
    # The reward is 1 + the first action coordinate: larger is better, the second does not
    # matter, and the value should move from about 0 towards about 1.
    reward_of = lambda action: 1.0 + action[:, 0]  # noqa: E731
    before, observ = run_bandit(network, ACTION, reward_of, objective, rounds=0,
                                normalize_reward=False)
    mean_before = before.network.policy(observ).mean.numpy()[0, 0]
    agent, _ = run_bandit(network, ACTION, reward_of, objective, normalize_reward=False)
    assert int(agent.updates) == 1 and int(agent.nonfinite_steps) == 0
    mean_after = agent.network.policy(observ).mean.numpy()[0, 0]
    assert mean_after > mean_before + 0.02
    assert value_error(agent, observ, 1.0) < 0.7 * value_error(before, observ, 1.0)
    assert agent.stats['learning_rate'].numpy() == pytest.approx(1e-2)


def test_one_update_raises_the_better_actions_probability_and_fits_the_value():
    network = small(FeedForwardCategorical)
    reward_of = lambda action: tf.cast(tf.equal(action, 2), tf.float32)  # noqa: E731
    before, observ = run_bandit(network, gym.spaces.Discrete(3), reward_of, rounds=0,
                                normalize_reward=False)
    probability_before = float(tf.exp(before.network.policy(observ).log_probs)[0, 2])
    value_error_before = value_error(before, observ, 1 / 3)  # The mean reward under random play.
    agent, _ = run_bandit(network, gym.spaces.Discrete(3), reward_of, normalize_reward=False)
    probability_after = float(tf.exp(agent.network.policy(observ).log_probs)[0, 2])
    assert probability_after > probability_before + 0.03
    assert value_error(agent, observ, 1 / 3) < 0.5 * value_error_before


def test_update_statistics_are_written_once_per_update_under_cleanrl_names(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        agent, _ = run_bandit(small(FeedForwardGaussian), ACTION, lambda a: a[:, 0], rounds=2)
    writer.flush()
    tags = {}
    for path in tmp_path.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert int(agent.updates) == 2
    for tag in ('losses/policy_loss', 'losses/value_loss', 'losses/entropy', 'losses/approx_kl',
                'losses/clip_fraction', 'losses/explained_variance', 'charts/learning_rate',
                'charts/action_std', 'charts/update_seconds'):
        assert tags[tag] == [16, 32], tag
    assert 'charts/kl_penalty' not in tags  # The clipped objective has no penalty.
    assert agent.stats['action_std'].numpy() == pytest.approx(0.35, rel=0.2)


@pytest.mark.parametrize('binding, value, message', [
    ('update_epochs', 2.5, 'PPO.update_epochs = 2.5 is invalid: expected an integer >= 1.'),
    ('update_epochs', 0, 'PPO.update_epochs = 0 is invalid: expected an integer >= 1.'),
    ('update_every', 'abc', "PPO.update_every = 'abc' is invalid: expected an integer >= 1."),
    ('minibatch_size', 0,
     'PPO.minibatch_size = 0 is invalid: expected an integer >= 1 or None.'),
    ('discount', 0.0, 'PPO.discount = 0.0 is invalid: expected a number in (0, 1].'),
    ('discount', 1.5, 'PPO.discount = 1.5 is invalid: expected a number in (0, 1].'),
    ('gae_lambda', -0.1, 'PPO.gae_lambda = -0.1 is invalid: expected a number in [0, 1].'),
    ('learning_rate', 0, 'PPO.learning_rate = 0 is invalid: expected a number > 0.'),
    ('learning_rate_decay', 1.5,
     'PPO.learning_rate_decay = 1.5 is invalid: expected a number in (0, 1] or None.'),
    ('entropy_coef', -0.01, 'PPO.entropy_coef = -0.01 is invalid: expected a number >= 0.'),
    ('max_gradient_norm', 0,
     'PPO.max_gradient_norm = 0 is invalid: expected a number > 0 or None.'),
    ('chunk_length', 3, 'PPO.chunk_length = 3 is invalid: expected a divisor of '
     'PPO.max_length = 8.'),
    ('value_target', 'monte_carlo', "PPO.value_target = 'monte_carlo' is invalid: expected "
     "one of 'lambda_return', 'discounted_return'."),
    ('bootstrap_truncated', 'yes', "PPO.bootstrap_truncated = 'yes' is invalid: expected one "
     "of True, False."),
])
def test_ppo_values_are_validated(binding, value, message):
    with pytest.raises(ConfigError) as error:
        make_ppo(**{binding: value})
    assert str(error.value).splitlines()[0] == message


@pytest.mark.parametrize('make, message', [
    (lambda: ClippedSurrogate(clip=0), 'ClippedSurrogate.clip = 0 is invalid: expected a '
     'number > 0.'),
    (lambda: KLPenalty(target=-1), 'KLPenalty.target = -1 is invalid: expected a number > 0.'),
    (lambda: FeedForwardGaussian(OBSERV, ACTION, policy_layers=(64, 0)),
     'FeedForwardGaussian.policy_layers = (64, 0) is invalid: expected a tuple of positive '
     'integers, e.g. (64, 64).'),
    (lambda: FeedForwardGaussian(OBSERV, ACTION, init_std=0),
     'FeedForwardGaussian.init_std = 0 is invalid: expected a number > 0.'),
    (lambda: FeedForwardCategorical(OBSERV, gym.spaces.Discrete(2), value_layers=64),
     'FeedForwardCategorical.value_layers = 64 is invalid: expected a tuple of positive '
     'integers, e.g. (64, 64).'),
    (lambda: RecurrentGaussian(OBSERV, ACTION, policy_layers=()),
     "RecurrentGaussian.policy_layers = () is invalid: expected at least one size (the last "
     "is the GRU's units)."),
])
def test_objective_and_network_values_are_validated(make, message):
    with pytest.raises(ConfigError) as error:
        make()
    assert str(error.value).splitlines()[0] == message


def test_learning_rate_decay_needs_the_run_length():
    with pytest.raises(ConfigError, match='PPO.learning_rate_decay needs the run length'):
        make_ppo(learning_rate_decay=1.0)


def test_short_cartpole_run_learns_and_writes_one_point_per_update(tmp_path):
    import json
    import os

    from agents_gin import experiment, run_setup
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'configs')
    # Measured with these settings: the untrained greedy policy scores 55 over the same 5
    # eval episodes, a uniformly random one about 22; after 8k steps PPO's greedy policy
    # scores 158 and its last training episodes 83 on average.
    run_setup.parse_config([os.path.join(configs, 'ppo_cartpole.gin')], [
        'train.eval_episodes = 5', 'Loop.total_steps = 8000', 'Loop.eval_every = 8000',
        'PPO.learning_rate = 1e-3'], [configs])
    experiment.train(str(tmp_path), seed=0)
    with open(tmp_path / 'metrics.jsonl') as file:
        final = [json.loads(line) for line in file][-1]
    assert final['eval_return'] > 110 and final['train_return_last100'] > 50
    steps = {}
    for name in os.listdir(tmp_path / 'train'):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / 'train' / name)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    # Tags as given (no graph scopes), one point per update.
    assert len(steps['losses/approx_kl']) == final['updates'] > 3
    assert steps['losses/clip_fraction'] == steps['losses/policy_loss']
    assert 'charts/kl_penalty' not in steps and 'charts/action_std' not in steps
