import functools

import gin
import gymnasium as gym
import numpy as np
import pytest

from agents_gin.envs import BatchEnv, MockEnv, make_batch_env, make_env


def mock(**kwargs):
    return functools.partial(MockEnv, **kwargs)


def test_steps_in_process_with_terminated_and_truncated_apart():
    batch = BatchEnv([mock(lengths=(2,)), mock(lengths=(2,), truncate=True)])
    observ = batch.reset()
    assert observ.shape == (2, 2) and observ.dtype == np.float32
    _, reward, terminated, truncated, _ = batch.step(np.zeros((2, 1), np.float32))
    np.testing.assert_array_equal(reward, [1, 1])
    assert not terminated.any() and not truncated.any()
    observ, _, terminated, truncated, _ = batch.step(np.zeros((2, 1), np.float32))
    np.testing.assert_array_equal(terminated, [True, False])
    np.testing.assert_array_equal(truncated, [False, True])
    np.testing.assert_array_equal(observ[:, 0], [2, 2])


def test_reset_by_indices_resets_only_those():
    batch = BatchEnv([mock(lengths=(9,), tag=i) for i in range(3)])
    batch.reset()
    batch.step(np.zeros((3, 1), np.float32))
    observ = batch.reset([2, 0])
    np.testing.assert_array_equal(observ, [[0, 2], [0, 0]])
    assert [len(steps) for steps in batch.get_attr('episode_steps')] == [2, 1, 2]


@pytest.mark.parametrize('actions, message', [
    (np.zeros((3, 1), np.float32), 'Expected actions for 2 environments'),
    (np.zeros((2, 2), np.float32), 'must have shape (1,)'),
    (np.zeros((2, 1), np.int64), 'takes floating-point actions'),
    (np.array([[0.0], [np.nan]], np.float32), 'environment 1 of 2 (MockEnv)'),
    (np.array([[0.0], [1.5]], np.float32), 'is outside Box(-1.0, 1.0, (1,), float32)'),
])
def test_invalid_actions_name_the_environment(actions, message):
    batch = BatchEnv([mock(), mock()], clip_actions=False)
    batch.reset()
    with pytest.raises(ValueError) as error:
        batch.step(actions)
    assert message in str(error.value)


def test_nan_action_says_not_finite():
    batch = BatchEnv([mock(), mock()])
    batch.reset()
    with pytest.raises(ValueError, match=r'environment 1 of 2 .*is not finite'):
        batch.step(np.array([[0.0], [np.nan]], np.float32))


def test_discrete_actions_are_checked():
    batch = BatchEnv([mock(discrete=True), mock(discrete=True)])
    batch.reset()
    batch.step(np.array([0, 2]))
    with pytest.raises(ValueError, match=r'environment 0 of 2 \(MockEnv\): 3 is outside Discrete'):
        batch.step(np.array([3, 0]))
    with pytest.raises(ValueError, match='takes integer actions'):
        batch.step(np.array([0.5, 0.0]))


def test_mismatched_spaces_name_the_environment():
    with pytest.raises(ValueError, match=r'Environment 1 \(MockEnv\) has observation space'):
        BatchEnv([mock(), mock(observ_shape=(3,))])
    with pytest.raises(ValueError, match=r'Environment 1 \(MockEnv\) has action space'):
        BatchEnv([mock(), mock(discrete=True)])


def test_non_finite_observation_is_caught():
    class NanEnv(MockEnv):
        def step(self, action):
            observ, *rest = super().step(action)
            return observ * np.nan, *rest

    batch = BatchEnv([mock(), NanEnv])
    batch.reset()
    with pytest.raises(ValueError, match=r'Environment 1 \(NanEnv\) returned a non-finite obs'):
        batch.step(np.zeros((2, 1), np.float32))


def test_unknown_env_id_names_the_binding():
    gin.bind_parameter('make_env.env_id', 'Pendulm-v1')
    with pytest.raises(ValueError, match=r"Unknown environment id 'Pendulm-v1' \(bound as "
                       r'make_env.env_id\).*Did you mean: `Pendulum`'):
        make_batch_env(2, num_workers=1)


def test_seeds_make_pendulum_reproducible():
    gin.bind_parameter('make_env.env_id', 'Pendulum-v1')
    first = make_batch_env(3, seed=7).reset()
    second = make_batch_env(3, seed=7).reset()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], first[1])


def test_env_factory_applies_wrappers_in_order():
    gin.parse_config("""
        make_env.env_id = 'Pendulum-v1'
        make_env.wrappers = [@gymnasium.wrappers.ClipAction, @ActionRepeat]
        ActionRepeat.amount = 3
        make_env.max_episode_steps = 10
    """)
    env = make_env()
    assert type(env).__name__ == 'ActionRepeat' and env.amount == 3
    assert np.isinf(env.action_space.high).all()  # ClipAction advertises an open space.
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        *_, terminated, truncated, _ = env.step(np.array([5.0], np.float32))
        if terminated or truncated:
            break
    assert steps == 4  # ceil(10 / 3) repeated steps reach the limit of 10.


def test_box_space_dtype_survives():
    batch = BatchEnv([lambda: gym.make('CartPole-v1')] * 2)
    assert batch.observation_space.dtype == np.float32
    assert batch.reset().shape == (2, 4)


def test_reseed_repeats_the_initial_states():
    gin.bind_parameter('make_env.env_id', 'Pendulum-v1')
    batch = make_batch_env(2, seed=5)
    first = batch.reset()
    batch.step(np.zeros((2, 1), np.float32))
    assert not np.array_equal(batch.reset(), first)  # The streams continue.
    batch.reseed(5)
    np.testing.assert_array_equal(batch.reset(), first)


def echo_action_env():
    """An env whose observation is the action it was stepped with, in an uneven Box."""
    class EchoActionEnv(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        action_space = gym.spaces.Box(np.array([-1.0, -2.0], np.float32),
                                      np.array([1.0, 0.5], np.float32))

        def reset(self, *, seed=None, options=None):
            return np.zeros(2, np.float32), {}

        def step(self, action):
            return np.asarray(action, np.float32), 0.0, False, False, {}

    return EchoActionEnv


@pytest.mark.parametrize('num_workers', [0, 2])
def test_actions_outside_the_box_are_clipped_for_stepping_only(num_workers):
    batch = BatchEnv([echo_action_env()] * 3, num_workers=num_workers)
    try:
        batch.reset()
        actions = np.array([[5.0, -5.0], [-0.5, 0.7], [0.2, -1.0]], np.float32)
        sampled = actions.copy()
        observ, *_ = batch.step(actions)
        space = batch.action_space
        np.testing.assert_array_equal(observ, np.clip(sampled, space.low, space.high))
        np.testing.assert_array_equal(actions, sampled)  # The agent keeps its sample.
        with pytest.raises(ValueError, match=r'environment 2 of 3 \(EchoActionEnv\): '
                           r'\[0.0, nan\] is not finite'):
            batch.step(np.array([[5.0, 0.0], [0.0, 0.0], [0.0, np.nan]], np.float32))
    finally:
        batch.close()


def test_clipping_can_be_turned_off_in_gin():
    gin.parse_config('BatchEnv.clip_actions = False')
    batch = BatchEnv([echo_action_env()] * 2)
    batch.reset()
    with pytest.raises(ValueError) as error:
        batch.step(np.array([[0.0, 0.0], [0.0, 0.6]], np.float32))
    assert str(error.value) == (
        'Invalid action for environment 1 of 2 (EchoActionEnv): [0.0, 0.6000000238418579] is '
        'outside Box([-1. -2.], [1.  0.5], (2,), float32) (BatchEnv.clip_actions is False)')
