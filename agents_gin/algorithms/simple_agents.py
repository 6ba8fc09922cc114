"""Two agents for tests and benchmarks: uniform random, and a fixed random MLP.

Both follow the agent protocol (`interface.Agent`) through `NoLearning`, so
`train.algorithm = @RandomAgent` runs the whole loop with them.
"""

import gin
import gymnasium as gym
import numpy as np
import tensorflow as tf

from agents_gin.algorithms.interface import NoLearning

# The framework passes these, as for every algorithm.
_FRAMEWORK = ['observation_space', 'action_space', 'num_envs', 'total_steps', 'seed']


@gin.configurable(denylist=_FRAMEWORK)
class RandomAgent(NoLearning):
    """Uniform actions inside a bounded Box or a Discrete space; normal for unbounded."""

    def __init__(self, observation_space, action_space, num_envs=None, total_steps=None,
                 seed=0):
        """Called like any algorithm; only the action space and the seed matter."""
        super().__init__(name='random_agent')
        self.action_space = action_space
        self.generator = tf.random.Generator.from_seed(seed)

    def perform(self, agent_indices, observ):
        """Samples one action per index."""
        count = tf.shape(agent_indices)[0]
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return self.generator.uniform([count], space.start, space.start + space.n, tf.int32)
        shape = tf.concat([[count], space.shape], 0)
        if np.isfinite(space.low).all() and np.isfinite(space.high).all():
            return self.generator.uniform(shape, space.low, space.high, tf.float32)
        return self.generator.normal(shape)


@gin.configurable(denylist=_FRAMEWORK)
class MLPAgent(NoLearning):
    """A random-weight tanh MLP policy with Gaussian noise: the cost of a real policy."""

    def __init__(self, observation_space, action_space, num_envs=None, total_steps=None,
                 seed=0, hidden=(64, 64)):
        """Called like any algorithm; `hidden` are the layer sizes."""
        super().__init__(name='mlp_agent')
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f'MLPAgent needs a Box action space, got {action_space}')
        self.generator = tf.random.Generator.from_seed(seed)
        sizes = [int(np.prod(observation_space.shape))] + list(hidden) + [
            int(np.prod(action_space.shape))]
        self.weights = [tf.Variable(self.generator.normal([a, b]) / np.sqrt(a))
                        for a, b in zip(sizes[:-1], sizes[1:])]
        self.low, self.high = action_space.low, action_space.high
        self.action_shape = action_space.shape

    def perform(self, agent_indices, observ):
        """Runs the MLP on the batch, adds noise, clips to the action bounds."""
        hidden = tf.reshape(tf.cast(observ, tf.float32), [tf.shape(observ)[0], -1])
        for weight in self.weights[:-1]:
            hidden = tf.tanh(hidden @ weight)
        mean = tf.tanh(hidden @ self.weights[-1])
        action = mean + 0.1 * self.generator.normal(tf.shape(mean))
        action = tf.reshape(action, tf.concat([tf.shape(observ)[:1], self.action_shape], 0))
        return tf.clip_by_value(action, self.low, self.high)
