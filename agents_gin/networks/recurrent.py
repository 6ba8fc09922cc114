"""A recurrent Gaussian policy: ReLU layers, then a GRU; a feed-forward value network.

As the original's `recurrent_gaussian`: `policy_layers[:-1]` are dense layers and
the last size is the GRU's; the mean is tanh of a dense layer on the GRU output,
the std is learned and state-independent.
"""

import gin
import gymnasium as gym
import tensorflow as tf

from agents_gin import checks
from agents_gin.networks.feed_forward import (
    _check_gaussian,
    _check_spaces,
    _FeedForward,
    _GaussianHead,
)
from agents_gin.networks.layers import MLP, Dense


class GRUCell(tf.Module):
    """h' = (1 - z) h + z tanh(W x + U (r h)), with update gate z and reset gate r."""

    def __init__(self, inputs, units, seed=0, name=None):
        super().__init__(name=name)
        self.units = units
        self.gates = Dense(inputs + units, 2 * units, tf.sigmoid, seed=seed, name='gates')
        self.candidate = Dense(inputs + units, units, tf.tanh, seed=seed + 1, name='candidate')

    def __call__(self, inputs, state):
        """One step on [B, inputs] with state [B, units]; returns the new state."""
        update, reset = tf.split(self.gates(tf.concat([inputs, state], -1)), 2, -1)
        candidate = self.candidate(tf.concat([inputs, reset * state], -1))
        return (1 - update) * state + update * candidate


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
class RecurrentGaussian(_FeedForward, _GaussianHead):
    """Dense layers, a GRU and a tanh mean; learned std; separate feed-forward value."""

    def __init__(self, observation_space, action_space, policy_layers=(200, 100),
                 value_layers=(200, 100), activation=tf.nn.relu, mean_scale=0.1,
                 init_std=0.35, min_std=1e-4, seed=0):
        """Layer sizes (the last is the GRU's), activation, mean scale, initial and least std."""
        _check_gaussian('RecurrentGaussian', policy_layers, value_layers, mean_scale, init_std,
                        min_std)
        checks.relation(len(policy_layers) >= 1, 'RecurrentGaussian.policy_layers = () is '
                        'invalid: expected at least one size (the last is the GRU\'s units).')
        _check_spaces('RecurrentGaussian', observation_space, action_space, gym.spaces.Box,
                      'FeedForwardCategorical')
        super().__init__(observation_space, value_layers, activation, seed, 'recurrent')
        *dense, units = policy_layers
        self.state_size = units
        self.encoder = MLP(self.observ_size, dense, activation, seed, name='policy')
        self.gru = GRUCell(self.encoder.outputs, units, seed + 30, name='gru')
        self._build_head(units, action_space, mean_scale, init_std, min_std, seed)

    def initial_state(self, batch_size):
        """Zeros [batch_size, state_size]."""
        return tf.zeros([batch_size, self.state_size])

    def policy_step(self, observ, state):
        """One step for a batch: (DiagGaussian over [B, D], new state [B, H])."""
        state = self.gru(self.encoder(self._flat_observ(observ)), state)
        return self._gaussian(state), state

    def policy_sequence(self, observ, state):
        """Sequences [B, T, ...] from initial states [B, H]: DiagGaussian over [B, T, D]."""
        steps = tf.shape(observ)[1]
        time_major = tf.transpose(observ, [1, 0] + list(range(2, len(observ.shape))))
        states = tf.scan(lambda previous, ob: self.gru(self.encoder(self._flat_observ(ob)),
                                                       previous),
                         time_major, initializer=state)
        policy = self._gaussian(tf.reshape(states, [-1, self.state_size]))
        size = policy.mean.shape[-1]
        to_batch_major = lambda x: tf.transpose(tf.reshape(x, [steps, -1, size]), [1, 0, 2])  # noqa: E731
        return type(policy)(to_batch_major(policy.mean), to_batch_major(policy.std))

    def policy(self, observ):
        """A first step from the zero state (for probing shapes)."""
        return self.policy_step(observ, self.initial_state(tf.shape(observ)[0]))[0]
