"""Exact episode boundaries through batch env, in-graph env and simulate."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.simple_agents import MLPAgent, RandomAgent
from agents_gin.envs import BatchEnv, MockEnv
from agents_gin.envs.in_graph import InGraphBatchEnv
from agents_gin.simulate import Simulation


class RecordingAgent(RandomAgent):
    """Logs every interface call with its indices, in call order."""

    def __init__(self, action_space):
        super().__init__(None, action_space)
        self.calls = []

    def _log(self, name, *tensors):
        def record(*values):
            self.calls.append((name,) + tuple(v.tolist() for v in values))
            return np.int32(0)
        return tf.numpy_function(record, list(tensors), tf.int32, stateful=True)

    def begin_episode(self, agent_indices):
        self._log('begin', agent_indices)

    def perform(self, agent_indices, observ):
        with tf.control_dependencies([self._log('perform', observ[:, 0])]):
            return super().perform(agent_indices, observ)

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        self._log('experience', observ[:, 0], terminated, truncated, next_observ[:, 0])

    def end_episode(self, agent_indices):
        self._log('end', agent_indices)


def build(lengths, num_workers=0, agent=RecordingAgent, truncate=False):
    batch = BatchEnv([functools.partial(MockEnv, lengths=length, truncate=truncate)
                      for length in lengths], num_workers=num_workers)
    simulation = Simulation(InGraphBatchEnv(batch), agent(batch.action_space))
    return batch, simulation


@pytest.mark.parametrize('num_workers', [0, 2])
def test_episode_boundaries_are_exact(num_workers):
    batch, simulation = build([(1,), (2,), (3,), (4,)], num_workers)
    try:
        scores, lengths, indices = simulation.run(4)
        # Ends after steps 1,2,3,4 (env 0 every step; env 1 at 2 and 4; env 2 at 3; env 3 at 4).
        np.testing.assert_array_equal(lengths, [1, 1, 2, 1, 3, 1, 2, 4])
        np.testing.assert_array_equal(scores, lengths)
        np.testing.assert_array_equal(indices, [0, 0, 1, 0, 2, 0, 1, 3])
        assert batch.get_attr('episode_steps') == [[1, 1, 1, 1], [2, 2], [3, 1], [4]]
        scores, lengths, _ = simulation.run(2)  # Episodes carry over between calls.
        np.testing.assert_array_equal(lengths, [1, 1, 2, 3])
        assert batch.get_attr('episode_steps') == [[1] * 6, [2, 2, 2], [3, 3], [4, 2]]
    finally:
        batch.close()


def test_agent_sees_lazy_resets_and_final_observations():
    batch, simulation = build([(2,), (3,)])
    simulation.run(3)
    calls = simulation.agent.calls
    assert calls[0] == ('begin', [0, 1])
    assert calls[1] == ('perform', [0, 0])
    assert calls[2] == ('experience', [0, 0], [False, False], [False, False], [1, 1])
    assert calls[4][0] == 'experience' and calls[4][4] == [2, 2]  # Final observation seen.
    assert calls[5] == ('end', [0])
    assert calls[6] == ('begin', [0])  # Reset at the start of the next step, not before.
    assert calls[7] == ('perform', [0, 2])
    assert calls[-1] == ('end', [1])


def test_truncation_reaches_the_agent_apart_from_termination():
    batch, simulation = build([(2,)], truncate=True)
    simulation.run(2)
    experience = [call for call in simulation.agent.calls if call[0] == 'experience']
    assert experience[-1][2:4] == ([False], [True])


def test_force_reset_restarts_every_episode():
    batch, simulation = build([(2,), (4,)])
    simulation.run(3)
    simulation.force_reset()
    scores, lengths, _ = simulation.run(1)
    assert batch.get_attr('episode_steps') == [[2, 1, 1], [3, 1]]
    assert lengths.numpy().size == 0  # Cut-off episodes are not reported as finished.


class ActionLog(MLPAgent):
    """An MLPAgent that keeps every action batch it chose, in order."""

    def __init__(self, observation_space, action_space):
        super().__init__(observation_space, action_space)
        self.actions = []

    def perform(self, agent_indices, observ):
        action = super().perform(agent_indices, observ)

        def keep(value):
            self.actions.append(value.copy())
            return value
        kept = tf.numpy_function(keep, [action], tf.float32, stateful=True)
        kept.set_shape(action.shape)
        return kept


def test_scores_are_the_returns_of_the_actions_played_on_pendulum():
    import gymnasium as gym
    batch = BatchEnv([lambda: gym.make('Pendulum-v1')] * 3, seed=0)
    agent = ActionLog(batch.observation_space, batch.action_space)
    simulation = Simulation(InGraphBatchEnv(batch), agent)
    scores, lengths, indices = simulation.run(200)
    np.testing.assert_array_equal(lengths, [200, 200, 200])
    np.testing.assert_array_equal(indices, [0, 1, 2])
    # Replaying the same actions on plain gymnasium envs (env i seeded with i) gives
    # the same returns: scores sum exactly the rewards of each env's own episode.
    actions = np.stack(agent.actions)
    assert actions.shape == (200, 3, 1) and np.abs(actions).max() <= 2
    returns = []
    for index in range(3):
        env = gym.make('Pendulum-v1')
        env.reset(seed=index)
        returns.append(sum(env.step(action)[1] for action in actions[:, index]))
    np.testing.assert_allclose(scores, returns, rtol=1e-5)
    assert len(set(np.round(returns, 3))) == 3  # Three different episodes, not one thrice.
    np.testing.assert_array_equal(simulation.env.action.numpy(), actions[-1])


def test_float64_observations_reach_the_graph_as_float32():
    import gymnasium as gym
    batch = BatchEnv([lambda: gym.make('HalfCheetah-v5')] * 2, seed=0)
    env = InGraphBatchEnv(batch)
    assert batch.observation_space.dtype == np.float64
    simulation = Simulation(env, RandomAgent(batch.observation_space, batch.action_space))
    simulation.run(3)
    assert env.observ.dtype == tf.float32 and env.observ.shape == (2, 17)
    assert np.abs(env.observ.numpy()).sum() > 0


def test_ppo_stores_the_policy_that_acted_for_each_env_whatever_the_index_order():
    import gymnasium as gym

    from agents_gin.algorithms.ppo import PPO
    agent = PPO(gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Box(-1, 1, (1,)), 3,
                max_length=4, update_every=3, total_steps=100, seed=0)
    observ = tf.constant([[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]])
    with pytest.raises(RuntimeError, match=r'PPO.experience needs PPO.perform of the same '
                                           r'step first'):
        agent.experience(tf.range(3), observ, tf.zeros((3, 1)), tf.zeros(3),
                         tf.zeros(3, tf.bool), tf.zeros(3, tf.bool), observ)
    agent.begin_episode(tf.range(3))
    action = agent.perform(tf.range(3), observ)
    mean = agent.network.policy(agent._normalize(observ)).mean.numpy()
    # The same envs named by another tensor, in another order: each row keeps its own policy.
    order = tf.constant([2, 0, 1])
    agent.experience(order, tf.gather(observ, order), tf.gather(action, order), tf.zeros(3),
                     tf.zeros(3, tf.bool), tf.zeros(3, tf.bool), tf.gather(observ, order))
    stored = agent._episodes.buffers
    np.testing.assert_array_equal(stored['policy_mean'].numpy()[:, 0], mean)
    np.testing.assert_array_equal(stored['observ'].numpy()[:, 0], observ.numpy())
    np.testing.assert_array_equal(stored['action'].numpy()[:, 0], action.numpy())
