"""The batch environment as TensorFlow state: step and reset are graph operations.

Observation, action, reward, terminated and truncated live in tf.Variables;
`step` and `reset` cross into Python once per batch through `tf.numpy_function`
and assign the variables, so a whole rollout can run inside one `tf.function`.
"""

import gin
import gymnasium as gym
import numpy as np
import tensorflow as tf

# Observation and action dtypes the graph uses for a space's dtype.
_GRAPH_DTYPES = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32}


@gin.configurable(denylist=['batch_env'])
class InGraphBatchEnv(tf.Module):
    """Wraps a BatchEnv; `done` starts true so that the first step resets everything."""

    def __init__(self, batch_env):
        super().__init__(name='in_graph_env')
        self.batch_env = batch_env
        observ_space, action_space = batch_env.observation_space, batch_env.action_space
        self.observ_dtype = graph_dtype(observ_space, 'observation')
        self.action_dtype = graph_dtype(action_space, 'action')
        self.observ_shape = tuple(observ_space.shape)
        self.action_shape = tuple(action_space.shape)
        size = len(batch_env)
        self.size = size
        self._observ_size = int(np.prod(self.observ_shape))
        self._packed = self.observ_dtype == tf.float32
        # Not trainable and not checkpointed: episodes restart after a resume.
        self.observ = tf.Variable(tf.zeros((size,) + self.observ_shape, self.observ_dtype),
                                  trainable=False, name='observ')
        self.action = tf.Variable(tf.zeros((size,) + self.action_shape, self.action_dtype),
                                  trainable=False, name='action')
        self.reward = tf.Variable(tf.zeros(size), trainable=False, name='reward')
        self.terminated = tf.Variable(tf.zeros(size, tf.bool), trainable=False)
        self.truncated = tf.Variable(tf.zeros(size, tf.bool), trainable=False)
        self.done = tf.Variable(tf.ones(size, tf.bool), trainable=False, name='done')

    def step(self, action):
        """Steps all environments with `action` [N, ...] and updates the variables."""
        observ, reward, terminated, truncated = self.step_tensors(action)
        self.write(observ, action, reward, terminated, truncated)
        return observ, reward, terminated, truncated

    def reset(self, indices=None):
        """Resets the environments at `indices` (all by default); returns their observations."""
        indices = tf.range(self.size) if indices is None else tf.cast(indices, tf.int32)
        observ = self.reset_tensors(indices)
        self.observ.scatter_nd_update(indices[:, None], observ)
        count = tf.shape(indices)[:1]
        self.reward.scatter_nd_update(indices[:, None], tf.zeros(count))
        for flag in (self.terminated, self.truncated, self.done):
            flag.scatter_nd_update(indices[:, None], tf.zeros(count, tf.bool))
        return observ

    def step_tensors(self, action):
        """Steps the environments; returns (observ, reward, terminated, truncated).

        The variables are left alone: simulate writes them once per call.
        """
        # Each output of a numpy_function costs ~20 us to convert, so the step
        # returns one array: observations (when float32) and reward, terminated
        # and truncated side by side, split again here.
        if self._packed:
            packed = tf.numpy_function(self._step_numpy, [action], tf.float32, stateful=True)
            packed.set_shape((self.size, self._observ_size + 3))
            observ = tf.reshape(packed[:, :self._observ_size], (self.size,) + self.observ_shape)
            status = packed[:, self._observ_size:]
        else:
            observ, status = tf.numpy_function(
                self._step_numpy, [action], [self.observ_dtype, tf.float32], stateful=True)
            observ.set_shape((self.size,) + self.observ_shape)
            status.set_shape((self.size, 3))
        return observ, status[:, 0], status[:, 1] > 0, status[:, 2] > 0

    def reset_tensors(self, indices):
        """Resets the environments at `indices`; returns their observations only."""
        observ = tf.numpy_function(self._reset_numpy, [indices], self.observ_dtype,
                                   stateful=True)
        observ.set_shape((None,) + self.observ_shape)
        return observ

    def write(self, observ, action, reward, terminated, truncated):
        """Stores a batch step's results in the variables."""
        self.observ.assign(observ)
        self.action.assign(tf.cast(action, self.action_dtype))
        self.reward.assign(reward)
        self.terminated.assign(terminated)
        self.truncated.assign(truncated)
        self.done.assign(tf.logical_or(terminated, truncated))

    def close(self):
        """Closes the batch env."""
        self.batch_env.close()

    def _step_numpy(self, action):
        observ, reward, terminated, truncated, _ = self.batch_env.step(action)
        status = np.empty((self.size, 3), np.float32)
        status[:, 0], status[:, 1], status[:, 2] = reward, terminated, truncated
        if self._packed:
            return np.concatenate(
                [observ.reshape(self.size, -1).astype(np.float32, copy=False), status], 1)
        return observ.astype(self.observ_dtype.as_numpy_dtype, copy=False), status

    def _reset_numpy(self, indices):
        observ = self.batch_env.reset(indices)
        return observ.astype(self.observ_dtype.as_numpy_dtype, copy=False)


def graph_dtype(space, what):
    """The TensorFlow dtype that holds values of `space` (64-bit narrowed to 32)."""
    if isinstance(space, gym.spaces.Discrete):
        return tf.int32
    if isinstance(space, gym.spaces.Box):
        return tf.as_dtype(_GRAPH_DTYPES.get(np.dtype(space.dtype), space.dtype))
    raise ValueError(f'The in-graph env supports Box and Discrete {what} spaces, got {space}; '
                     'flatten it with a wrapper such as gymnasium.wrappers.FlattenObservation')
