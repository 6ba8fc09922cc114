"""EnvPoolBatchEnv keeps BatchEnv's contract; skipped when envpool is not installed."""

import gin
import numpy as np
import pytest

envpool = pytest.importorskip('envpool')

from agents_gin.envs.envpool_env import EnvPoolBatchEnv  # noqa: E402


def make(num_envs=3, seed=0, limit=5, env_id='Pendulum-v1', **kwargs):
    return EnvPoolBatchEnv([None] * num_envs, seed=seed, env_id=env_id,
                           max_episode_steps=limit, **kwargs)


def run(env, steps, action=0.5):
    """Steps with a constant action, resetting finished envs by index as simulate does."""
    record = [env.reset()]
    for _ in range(steps):
        observ, reward, terminated, truncated, infos = env.step(
            np.full((len(env),) + env.action_space.shape, action, np.float32))
        record.append((observ, reward, terminated, truncated))
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            record.append((done, env.reset(done)))
    return record


def test_time_limit_is_truncation_and_env_order_is_kept():
    env = make(limit=3)
    try:
        first = env.reset()
        assert first.shape == (3, 3) and first.dtype == np.float32
        for step in range(3):
            observ, reward, terminated, truncated, infos = env.step(np.zeros((3, 1), np.float32))
            assert reward.dtype == np.float32 and len(infos) == 3
            assert not terminated.any()
            np.testing.assert_array_equal(truncated, [step == 2] * 3)
        # Each row is its own env: the same env of a fresh pool gives the same observation.
        alone = envpool.make('Pendulum-v1', env_type='gymnasium', num_envs=3, seed=0)
        np.testing.assert_array_equal(first, alone.reset()[0])
    finally:
        env.close()


def test_termination_reaches_the_caller_apart_from_truncation():
    # CartPole falls over within 20 steps of always pushing right: terminated, not truncated.
    env = EnvPoolBatchEnv(num_envs=2, seed=0, env_id='CartPole-v1', max_episode_steps=500)
    try:
        env.reset()
        ended = np.zeros(2, bool)
        for _ in range(40):
            _, _, terminated, truncated, _ = env.step(np.ones(2, np.int32))
            assert not truncated.any()
            ended |= terminated
        assert ended.all()
    finally:
        env.close()


def test_reset_by_index_restarts_only_those_envs():
    env, untouched = make(limit=100), make(limit=100)
    zeros = np.zeros((3, 1), np.float32)
    try:
        env.reset(), untouched.reset()
        for _ in range(4):
            before, *_ = env.step(zeros)
            untouched.step(zeros)
        reset = env.reset([2, 0])
        assert reset.shape == (2, 3)
        assert not np.isclose(reset, before[[2, 0]]).all(1).any()  # They really restarted.
        observ, reward, *_ = env.step(zeros)
        expected, *_ = untouched.step(zeros)
        np.testing.assert_array_equal(observ[1], expected[1])  # Env 1 carried on.
        # The reset envs took a real step: no autoreset (which gives reward exactly 0).
        assert (reward < 0).all()
        assert env.reset([]).shape == (0, 3)
    finally:
        env.close(), untouched.close()


class Reversed:
    """An EnvPool that answers in reverse order, as its threads may (rows and env ids)."""

    def __init__(self, pool):
        self.pool = pool

    def step(self, action, env_id):
        *values, info = self.pool.step(action, env_id)
        return (*(value[::-1] for value in values), {'env_id': info['env_id'][::-1]})

    def reset(self, env_id):
        observ, info = self.pool.reset(env_id)
        return observ[::-1], {'env_id': info['env_id'][::-1]}

    def close(self):
        self.pool.close()


def test_answers_out_of_order_come_back_in_env_order():
    env, shuffled = make(num_envs=4, limit=100), make(num_envs=4, limit=100)
    shuffled._pool = Reversed(shuffled._pool)
    try:
        np.testing.assert_array_equal(shuffled.reset(), env.reset())
        action = np.linspace(-2, 2, 4, dtype=np.float32)[:, None]
        for got, expected in zip(shuffled.step(action)[:4], env.step(action)[:4]):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(shuffled.reset([3, 1]), env.reset([3, 1]))
    finally:
        env.close(), shuffled.close()


def test_seeds_repeat_and_differ_between_envs_and_seeds():
    first, again, other = run(make(seed=3), 12), run(make(seed=3), 12), run(make(seed=4), 12)
    for a, b in zip(first, again):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(x, y)
    assert len({tuple(row) for row in first[0].round(6).tolist()}) == 3  # env i: seed + i.
    assert not np.array_equal(first[0], other[0])
    # reseed: every env starts again from seed + i.
    env = make(seed=3)
    env.reset()
    env.step(np.zeros((3, 1), np.float32))
    env.reseed(3)
    np.testing.assert_array_equal(env.reset(), first[0])
    env.close()


def test_normalized_actions_map_onto_the_range():
    # Pendulum's torque range is [-2, 2]: unit action 0.5 is torque 1.0, and 3.0 clips to 2.
    scaled, raw = make(normalize_actions=True), make()
    try:
        scaled.reset(), raw.reset()
        for unit, torque in ((0.5, 1.0), (3.0, 2.0)):
            a = scaled.step(np.full((3, 1), unit, np.float32))
            b = raw.step(np.full((3, 1), torque, np.float32))
            np.testing.assert_array_equal(a[0], b[0])
        assert scaled.action_space.high.tolist() == [1.0]
    finally:
        scaled.close(), raw.close()


def test_mistakes_name_the_bad_value():
    with pytest.raises(ValueError, match="EnvPool has no env id 'Pendulum-v9'"):
        make(env_id='Pendulum-v9')
    env = make()
    try:
        env.reset()
        with pytest.raises(ValueError, match=r'Expected actions for 3 environments, got an '
                                             r'array of shape \(2, 1\)'):
            env.step(np.zeros((2, 1), np.float32))
        action = np.zeros((3, 1), np.float32)
        action[1] = np.nan
        with pytest.raises(ValueError, match=r'environment 1 of 3 \(envpool:Pendulum-v1\): '
                                             r'\[nan\] is not finite'):
            env.step(action)
        with pytest.raises(NotImplementedError, match="cannot read 'metadata'"):
            env.get_attr('metadata')
    finally:
        env.close()


def test_env_id_and_limit_come_from_make_env_bindings():
    import agents_gin.envs  # noqa: F401 -- registers make_env.

    gin.parse_config("make_env.env_id = 'Pendulum-v1'\nmake_env.max_episode_steps = 2")
    env = EnvPoolBatchEnv([None] * 2, seed=0)
    try:
        env.reset()
        env.step(np.zeros((2, 1), np.float32))
        assert env.step(np.zeros((2, 1), np.float32))[3].all()
        assert env.name == 'envpool:Pendulum-v1'
    finally:
        env.close()


def test_simulate_runs_on_envpool_with_exact_episode_lengths():
    import tensorflow as tf

    from agents_gin.algorithms.simple_agents import MLPAgent
    from agents_gin.envs.in_graph import InGraphBatchEnv
    from agents_gin.simulate import Simulation

    batch = make(num_envs=2, limit=7)
    simulation = Simulation(InGraphBatchEnv(batch),
                            MLPAgent(batch.observation_space, batch.action_space))
    scores, lengths, indices = simulation.run(tf.constant(21))
    np.testing.assert_array_equal(lengths, [7] * 6)
    np.testing.assert_array_equal(indices, [0, 1] * 3)
    assert (scores.numpy() < 0).all()
    batch.close()
