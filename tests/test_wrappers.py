"""Environment wrappers against numpy references; their gin names; MuJoCo's log file."""

import os
import subprocess
import sys
import warnings

import gin
import gymnasium as gym
import numpy as np
import pytest

from agents_gin.envs import (
    ActionRepeat,
    CheckFinite,
    ConvertTo32Bit,
    FrameDelta,
    FrameHistory,
    MockEnv,
    RandomStart,
    RangeNormalize,
    make_env,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ScriptedEnv(gym.Env):
    """Plays back the given observations and rewards, one per step after the reset's."""

    def __init__(self, observs, rewards, dtype=np.float64, low=-np.inf, high=np.inf):
        self.observs = [np.asarray(o, dtype) for o in observs]
        self.rewards = list(rewards)
        self.observation_space = gym.spaces.Box(low, high, self.observs[0].shape, dtype)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._step = 0

    def reset(self, *, seed=None, options=None):
        """Returns the first scripted observation."""
        super().reset(seed=seed)
        self._step = 0
        return self.observs[0], {}

    def step(self, action):
        """Returns the next scripted observation and reward."""
        self._step += 1
        return self.observs[self._step], self.rewards[self._step - 1], False, False, {}


# RangeNormalize: gymnasium's RescaleObservation / RescaleAction under the original name.

def test_range_normalize_maps_observations_and_actions_like_the_numpy_formula():
    raw, env = gym.make('Pendulum-v1'), RangeNormalize(gym.make('Pendulum-v1'))
    low, high = raw.observation_space.low, raw.observation_space.high
    act_low, act_high = raw.action_space.low, raw.action_space.high
    raw_observ, _ = raw.reset(seed=3)
    observ, _ = env.reset(seed=3)
    assert observ.dtype == np.float32 and env.observation_space.dtype == np.float32
    np.testing.assert_allclose(observ, 2 * (raw_observ - low) / (high - low) - 1, rtol=1e-6)
    for unit_action in (-1.0, -0.25, 0.5, 1.0):
        # The env's own action for a unit action, by the numpy formula.
        env_action = act_low + (unit_action + 1) / 2 * (act_high - act_low)
        raw_observ, raw_reward, *_ = raw.step(env_action.astype(np.float32))
        observ, reward, *_ = env.step(np.array([unit_action], np.float32))
        np.testing.assert_allclose(observ, 2 * (raw_observ - low) / (high - low) - 1,
                                   rtol=1e-5, atol=1e-6)
        assert reward == pytest.approx(raw_reward, rel=1e-6)
    for space in (env.observation_space, env.action_space):
        np.testing.assert_array_equal(space.low, -1)
        np.testing.assert_array_equal(space.high, 1)


def test_range_normalize_is_tri_state_per_side():
    # CartPole: unbounded observations, discrete actions. None leaves both alone.
    env = RangeNormalize(gym.make('CartPole-v1'))
    assert env.observation_space == gym.make('CartPole-v1').observation_space
    assert isinstance(env.action_space, gym.spaces.Discrete)
    with pytest.raises(ValueError, match=r'RangeNormalize.observ = True needs a Box '
                                         r'observation space with finite bounds, got Box'):
        RangeNormalize(gym.make('CartPole-v1'), observ=True)
    with pytest.raises(ValueError, match=r'RangeNormalize.action = True needs a Box '
                                         r'action space with finite bounds, got Discrete\(2\)'):
        RangeNormalize(gym.make('CartPole-v1'), action=True)
    # False leaves a bounded side alone.
    env = RangeNormalize(gym.make('Pendulum-v1'), observ=False)
    np.testing.assert_array_equal(env.observation_space.high, [1, 1, 8])
    np.testing.assert_array_equal(env.action_space.high, [1])
    env = RangeNormalize(gym.make('Pendulum-v1'), action=False)
    np.testing.assert_array_equal(env.observation_space.high, [1, 1, 1])
    np.testing.assert_array_equal(env.action_space.high, [2])


def test_range_normalize_on_float64_bounds_gives_float32_without_warnings():
    observs = [[1.0, 2.0], [3.0, 0.5]]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # gymnasium warns when Box bounds lose precision.
        env = RangeNormalize(ScriptedEnv(observs, [0.0], low=0.0, high=4.0))
        first, _ = env.reset()
        second, *_ = env.step(np.zeros(1, np.float32))
    np.testing.assert_array_equal([first, second], np.float32(np.array(observs) / 2 - 1))
    assert first.dtype == second.dtype == env.observation_space.dtype == np.float32


# ConvertTo32Bit and CheckFinite.

def test_convert_to_32_bit_narrows_observations_and_rewards():
    observs = [[0.1, 1e10], [1 / 3, -2.5]]
    env = ConvertTo32Bit(ScriptedEnv(observs, [0.7]))
    assert env.observation_space.dtype == np.float32
    observ, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observ, np.asarray(observs[0], np.float32))
    assert observ.dtype == np.float32
    observ, reward, *_ = env.step(np.zeros(1, np.float32))
    np.testing.assert_array_equal(observ, np.asarray(observs[1], np.float32))
    assert type(reward) is np.float32 and reward == np.float32(0.7)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ConvertTo32Bit(ScriptedEnv(observs, [0.7], low=-1.0, high=1.0))
    ints = ConvertTo32Bit(ScriptedEnv([[1, 2], [3, 4]], [1], np.int64, -10, 10))
    assert ints.observation_space.dtype == np.int32 and ints.reset()[0].dtype == np.int32
    np.testing.assert_array_equal(ints.observation_space.high, [10, 10])
    # float32 stays as it is.
    assert ConvertTo32Bit(ScriptedEnv([[1.0]], [], np.float32)).observation_space.dtype \
        == np.float32


@pytest.mark.parametrize('observs, rewards, what', [
    ([[0.0], [np.nan]], [1.0], 'observation'),
    ([[0.0], [1.0]], [np.inf], 'reward'),
])
def test_check_finite_names_the_non_finite_value(observs, rewards, what):
    for env in (CheckFinite(ScriptedEnv(observs, rewards)),
                ConvertTo32Bit(ScriptedEnv(observs, rewards))):
        env.reset()
        with pytest.raises(ValueError, match=f'ScriptedEnv.* returned a non-finite {what}'):
            env.step(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match='returned a non-finite observation: \\[-inf\\]'):
        CheckFinite(ScriptedEnv([[-np.inf]], [])).reset()


# The wrappers gymnasium lacks (or has under another name).

def test_action_repeat_sums_rewards_and_stops_at_the_episode_end():
    raw = gym.make('Pendulum-v1')
    env = ActionRepeat(gym.make('Pendulum-v1'), amount=3)
    raw.reset(seed=1)
    env.reset(seed=1)
    action = np.array([0.7], np.float32)
    for _ in range(2):
        rewards = [raw.step(action)[1] for _ in range(3)]
        observ, reward, *_ = env.step(action)
        assert reward == pytest.approx(np.sum(rewards), rel=1e-9)
        np.testing.assert_array_equal(observ, raw.unwrapped._get_obs())
    assert env.amount == 3
    short = ActionRepeat(MockEnv(lengths=(4,)), amount=3)
    short.reset()
    assert short.step(np.zeros(1))[1:3] == (3.0, False)
    # The episode ends after one more step: the repeat stops there, not after three.
    assert short.step(np.zeros(1))[1:3] == (1.0, True)
    assert short.unwrapped.episode_steps == [4]
    for amount in (0, 1.5):
        with pytest.raises(ValueError, match='ActionRepeat.amount must be an integer of at '
                                             f'least 1, got {amount}'):
            ActionRepeat(MockEnv(), amount=amount)


@pytest.mark.parametrize('indices, flatten', [((0, 1), False), ((0, 2, 5), False),
                                              ((3, 0), True)])
def test_frame_history_matches_a_numpy_reference(indices, flatten):
    env = FrameHistory(MockEnv(lengths=(12,), tag=7.0), past_indices=indices, flatten=flatten)
    observ, _ = env.reset()
    frames = [np.array([0.0, 7.0], np.float32)]
    for step in range(1, 13):
        expected = [frames[max(len(frames) - 1 - index, 0)] for index in indices]
        expected = np.concatenate(expected, 0) if flatten else np.stack(expected)
        np.testing.assert_array_equal(observ, expected)
        assert env.observation_space.shape == expected.shape
        observ, *_ = env.step(np.zeros(1))
        frames.append(np.array([step, 7.0], np.float32))
    # A reset fills the whole history with the new first frame.
    observ, _ = env.reset()
    np.testing.assert_array_equal(observ.reshape(len(indices), -1)[:, 0], 0)
    with pytest.raises(ValueError, match=r'FrameHistory.past_indices must contain 0 and no '
                                         r'negative index, got \(1, 2\)'):
        FrameHistory(MockEnv(), past_indices=(1, 2))


def test_frame_delta_matches_numpy_differences():
    observs = np.array([[1.0, 5.0], [1.5, 3.0], [4.0, 3.0], [-2.0, 0.25]])
    env = FrameDelta(ScriptedEnv(observs, [0.0] * 3, low=-10.0, high=10.0))
    first, _ = env.reset()
    np.testing.assert_array_equal(first, observs[0])
    deltas = [env.step(np.zeros(1, np.float32))[0] for _ in range(3)]
    np.testing.assert_array_equal(deltas, np.diff(observs, axis=0))
    np.testing.assert_array_equal(env.observation_space.high, [20, 20])


def test_random_start_takes_a_seeded_uniform_number_of_random_steps():
    counts = []
    for seed in range(40):
        env = RandomStart(MockEnv(lengths=(100,)), max_steps=4)
        observ, _ = env.reset(seed=seed)
        counts.append(int(observ[0]))  # MockEnv's observation counts the episode's steps.
        again = RandomStart(MockEnv(lengths=(100,)), max_steps=4)
        assert int(again.reset(seed=seed)[0][0]) == counts[-1]  # Same seed, same start.
    assert set(counts) == {0, 1, 2, 3, 4}
    # The random actions repeat with the seed too: Pendulum's state depends on them.
    starts = [RandomStart(gym.make('Pendulum-v1'), max_steps=10).reset(seed=5)[0]
              for _ in range(2)]
    np.testing.assert_array_equal(*starts)
    assert not np.array_equal(starts[0], gym.make('Pendulum-v1').reset(seed=5)[0])
    # Episodes shorter than the random start are restarted until one survives it.
    env = RandomStart(MockEnv(lengths=(1, 1, 1, 50)), max_steps=30)
    observ, _ = env.reset(seed=0)
    steps = env.unwrapped.episode_steps
    assert len(steps) > 1 and steps[:-1] == [1] * (len(steps) - 1)
    assert steps[-1] == observ[0]
    with pytest.raises(ValueError, match='RandomStart.max_steps must be at least 0, got -1'):
        RandomStart(MockEnv(), max_steps=-1)


# Gin names.

def test_gin_names_bind_as_in_configs():
    gin.parse_config("""
        import agents_gin.envs
        make_env.env_id = 'Pendulum-v1'
        make_env.wrappers = [@RangeNormalize, @gymnasium.wrappers.ClipAction, @ConvertTo32Bit,
                             @ActionRepeat, @FrameHistory, @FrameDelta, @RandomStart]
        RangeNormalize.observ = False
        ActionRepeat.amount = 2
        FrameHistory.past_indices = (0, 3)
        FrameHistory.flatten = True
        RandomStart.max_steps = 0
    """)
    env = make_env()
    names = []
    layer = env
    while layer is not env.unwrapped:
        names.append(type(layer).__name__)
        layer = layer.env
    assert names[:7] == ['RandomStart', 'FrameDelta', 'FrameHistory', 'ActionRepeat',
                         'CheckFinite', 'TransformReward', 'ClipAction']
    assert 'RescaleAction' in names and 'RescaleObservation' not in names  # observ = False.
    assert env.get_wrapper_attr('amount') == 2
    assert env.observation_space.shape == (6,)  # Two flattened Pendulum frames.
    np.testing.assert_array_equal(env.action_space.high, [np.inf])  # ClipAction's space.


def test_ppo_base_wrapper_chain_parses_and_rescales():
    gin.add_config_file_search_path(os.path.join(REPO, 'configs'))
    gin.parse_config_file(os.path.join(REPO, 'configs', 'common', 'ppo_base.gin'))
    gin.bind_parameter('make_env.env_id', 'Pendulum-v1')
    env = make_env()
    env.reset(seed=0)
    # The unit action 1 reaches Pendulum as its maximum torque 2 (ClipAction, RescaleAction).
    env.step(np.array([3.0], np.float32))
    np.testing.assert_allclose(env.unwrapped.last_u, 2.0)
    np.testing.assert_array_equal(env.observation_space.high, [1, 1, 1])


# MuJoCo writes its warnings to ./MUJOCO_LOG.TXT unless a handler is installed.

_HALF_CHEETAH = """
import gin, numpy as np
from agents_gin.envs import BatchEnv, make_env
gin.bind_parameter('make_env.env_id', 'HalfCheetah-v5')
env = BatchEnv([make_env] * 3, num_workers={workers})
env.reset()
env.step(np.zeros((3, 6), np.float32))
env.close()
"""


_DIRECT = """
import gymnasium as gym
from agents_gin.envs import log_mujoco_warnings
log_mujoco_warnings()
for _ in range(3):
    gym.make('HalfCheetah-v5').reset(seed=0)
"""


@pytest.mark.parametrize('script', [_HALF_CHEETAH.format(workers=0),
                                    _HALF_CHEETAH.format(workers=1), _DIRECT],
                         ids=['in-process', 'worker', 'gym.make'])
def test_mujoco_warnings_go_to_logging_not_the_current_folder(tmp_path, script):
    result = subprocess.run(
        [sys.executable, '-c', script], cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path) == []
    # Logged once per process, not once per environment.
    assert result.stderr.count("MuJoCo: compiler attribute 'settotalmass' is deprecated") == 1
