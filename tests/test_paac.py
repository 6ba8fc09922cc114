"""PAAC: n-step returns, networks, Atari through workers, a tiny run."""

import json
import os

import gin
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents_gin import experiment, run_setup
from agents_gin.algorithms.paac import n_step_returns
from agents_gin.envs import BatchEnv, make_env
from agents_gin.networks.conv import nature_network, nips_network

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')


def numpy_n_step(reward, terminated, truncated, next_value, discount):
    steps, envs = reward.shape
    returns = np.zeros_like(reward)
    for env in range(envs):
        following = next_value[-1, env]
        for t in reversed(range(steps)):
            if t == steps - 1 or truncated[t, env]:
                following = next_value[t, env]
            if terminated[t, env]:
                following = 0.0
            following = reward[t, env] + discount * following
            returns[t, env] = following
    return returns


def test_n_step_returns_with_terminated_and_truncated_endings():
    rng = np.random.default_rng(0)
    reward, next_value = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    terminated = np.zeros((5, 4), bool)
    truncated = np.zeros((5, 4), bool)
    terminated[1, 0] = True   # Env 0: termination mid-window, nothing follows it.
    truncated[2, 1] = True    # Env 1: truncation mid-window, bootstrap from V(s').
    terminated[4, 2] = True   # Env 2: termination at the window's last step.
    truncated[3, 3] = terminated[3, 3] = True  # Both: termination wins.
    result = n_step_returns(tf.constant(reward, tf.float32), tf.constant(terminated),
                            tf.constant(truncated), tf.constant(next_value, tf.float32), 0.9)
    expected = numpy_n_step(reward, terminated, truncated, next_value, 0.9)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5)
    # Spot check by hand: env 0 at t=1 is just its reward.
    assert result.numpy()[1, 0] == pytest.approx(reward[1, 0])


def atari_env():
    gin.parse_config_files_and_bindings([os.path.join(CONFIGS, 'common', 'paac_atari.gin')],
                                        ["make_env.env_id = 'ALE/Pong-v5'"])
    return make_env


@pytest.mark.parametrize('factory, outputs', [(nips_network, 256), (nature_network, 512)])
def test_network_output_shapes(factory, outputs):
    observ_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    network = factory(observ_space, gym.spaces.Discrete(6))
    policy, value = network(tf.zeros((3, 4, 84, 84), tf.uint8))
    assert policy.logits.shape == (3, 6) and value.shape == (3,)
    assert network.hidden.kernel.shape[1] == outputs
    assert policy.sample(tf.random.Generator.from_seed(0)).shape == (3,)


def test_atari_steps_through_workers_with_uint8_frames():
    constructor = atari_env()
    batch = BatchEnv([constructor] * 4, num_workers=2, seed=0)
    try:
        observ = batch.reset()
        assert observ.shape == (4, 4, 84, 84) and observ.dtype == np.uint8
        assert batch.action_space == gym.spaces.Discrete(6)
        for _ in range(3):
            observ, reward, terminated, truncated, _ = batch.step(np.array([0, 1, 2, 3]))
        assert observ.shape == (4, 4, 84, 84) and observ.dtype == np.uint8
        assert observ.max() > 0
    finally:
        batch.close()


def test_continuous_network_on_pong_is_refused(tmp_path):
    run_setup.parse_config([os.path.join(CONFIGS, 'paac_pong.gin')],
                           ['PAAC.network = @FeedForwardGaussian', 'train.num_envs = 2'],
                           [CONFIGS])
    with pytest.raises(ValueError, match=r'FeedForwardGaussian needs a Box action space, but '
                       r'the env has Discrete\(6\)'):
        experiment.train(str(tmp_path))


def test_conv_network_on_vector_observations_is_refused():
    with pytest.raises(ValueError, match='ConvCategorical takes image observations of rank 3'):
        nips_network(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))


def scalars(folder):
    """{tag: [(step, value)]} of the TensorBoard events in `folder`."""
    found = {}
    for name in sorted(os.listdir(folder)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == 'scalars':
                    found.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor))))
    return found


def evaluations(run_dir):
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file]


def test_tiny_cartpole_run_writes_its_run_directory(tmp_path):
    run_setup.parse_config([os.path.join(CONFIGS, 'paac_cartpole.gin')],
                           ['train.num_envs = 4', 'train.eval_episodes = 2',
                            'Loop.total_steps = 2000', 'Loop.eval_every = 1000'], [CONFIGS])
    experiment.train(str(tmp_path))
    assert {'checkpoints', 'train', 'eval', 'metrics.jsonl'} <= set(os.listdir(tmp_path))
    assert tf.train.latest_checkpoint(tmp_path / 'checkpoints').endswith('ckpt-2000')
    # One point per update (t_max 5 x 4 envs = 20 steps), at the env step it ended.
    found = scalars(tmp_path / 'train')
    for tag in ('losses/policy_loss', 'losses/value_loss', 'losses/entropy',
                'charts/learning_rate'):
        assert [step for step, _ in found[tag]] == list(range(20, 2001, 20)), tag
    assert 'charts/action_std' not in found  # Categorical policy.
    # Annealed to 0 over the run by the env steps before each update: 1e-3 down to 1e-5.
    rates = [rate for _, rate in found['charts/learning_rate']]
    np.testing.assert_allclose(rates, 1e-3 * (1 - np.arange(0, 2000, 20) / 2000), rtol=1e-4)


def test_short_cartpole_run_learns(tmp_path):
    # Measured with this seed: the untrained greedy policy scores 55 over the same 5 eval
    # episodes; after 20k steps PAAC scores about 360. 150 leaves a margin both ways.
    run_setup.parse_config([os.path.join(CONFIGS, 'paac_cartpole.gin')],
                           ['train.eval_episodes = 5', 'Loop.total_steps = 20000',
                            'Loop.eval_every = 20000'], [CONFIGS])
    experiment.train(str(tmp_path), seed=0)
    assert evaluations(tmp_path)[-1]['eval_return'] > 150


def test_tiny_pong_run_trains_on_frames(tmp_path):
    run_setup.parse_config([os.path.join(CONFIGS, 'paac_pong.gin')],
                           ['train.num_envs = 2', 'train.eval_episodes = 1',
                            'Loop.total_steps = 40', 'Loop.eval_every = 1000000',
                            'Loop.chunk_steps = 10', 'make_env.max_episode_steps = 30'],
                           [CONFIGS])
    experiment.train(str(tmp_path))
    assert tf.train.latest_checkpoint(tmp_path / 'checkpoints').endswith('ckpt-40')
    # It learned on the frames: one update per window of t_max 5 x 2 envs.
    found = scalars(tmp_path / 'train')
    for tag in ('losses/policy_loss', 'losses/value_loss', 'losses/entropy'):
        assert [step for step, _ in found[tag]] == [10, 20, 30, 40], tag


def test_continuous_actions_with_a_gaussian_network(tmp_path):
    run_setup.parse_config([os.path.join(CONFIGS, 'paac_cartpole.gin')], [
        "make_env.env_id = 'Pendulum-v1'", 'make_env.wrappers = [@RangeNormalize, '
        '@gymnasium.wrappers.ClipAction]', 'PAAC.network = @FeedForwardGaussian',
        'train.num_envs = 4', 'train.eval_episodes = 1', 'Loop.total_steps = 800',
        'Loop.eval_every = 800', 'make_env.max_episode_steps = 100'], [CONFIGS])
    experiment.train(str(tmp_path))
    found = scalars(tmp_path / 'train')
    # One point per update (t_max 5 x 4 envs), and the Gaussian's std moved from its start.
    assert [step for step, _ in found['charts/action_std']] == list(range(20, 801, 20))
    first, last = found['charts/action_std'][0][1], found['charts/action_std'][-1][1]
    assert first == pytest.approx(0.35 + 1e-4, rel=1e-5)  # init_std + min_std.
    assert abs(last - first) > 1e-3
    assert [step for step, _ in found['losses/policy_loss']] == list(range(20, 801, 20))
