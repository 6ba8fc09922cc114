"""Feed-forward policy and value networks (gin factories on tf.Module).

A network is built from the environment's spaces and called on a batch of
observations [B, ...]; it returns (action distribution, value [B]). Policy and
value are separate MLPs, as in the original Batch PPO, whose sizes (200, 100),
output scale 0.1 and initial std 0.35 are the defaults here.
"""

import gin
import gymnasium as gym
import numpy as np
import tensorflow as tf

from agents_gin import checks
from agents_gin.networks.distributions import Categorical, DiagGaussian
from agents_gin.networks.layers import MLP, Dense

for _activation in (tf.nn.relu, tf.nn.tanh, tf.nn.elu, tf.nn.swish):
    gin.external_configurable(_activation, module='tf.nn')


def _check_gaussian(network, policy_layers, value_layers, mean_scale, init_std, min_std):
    """Validates the bindings of a Gaussian-policy network."""
    checks.layers(f'{network}.policy_layers', policy_layers)
    checks.layers(f'{network}.value_layers', value_layers)
    checks.number(f'{network}.mean_scale', mean_scale, low=0, low_open=True)
    checks.number(f'{network}.init_std', init_std, low=0, low_open=True)
    checks.number(f'{network}.min_std', min_std, low=0)


def _check_spaces(network, observation_space, action_space, wanted, other):
    """Refuses observation and action spaces the network cannot take."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f'{network} takes Box observations, got {observation_space}; flatten '
                         'it with gymnasium.wrappers.FlattenObservation in make_env.wrappers')
    if not isinstance(action_space, wanted):
        raise ValueError(f'{network} needs a {wanted.__name__} action space, but the env has '
                         f'{action_space}; bind the network to @{other} instead')


class _FeedForward(tf.Module):
    """Shared parts: flattening, the value MLP."""

    def __init__(self, observation_space, value_layers, activation, seed, name):
        super().__init__(name=name)
        self.observ_size = int(np.prod(observation_space.shape))
        self.value_mlp = MLP(self.observ_size, list(value_layers) + [1], activation,
                             seed + 100, name='value')
        self.value_mlp.layers[-1].activation = None  # The value output is linear.

    def __call__(self, observ):
        """Returns (action distribution, value [B])."""
        return self.policy(observ), self.value(observ)

    def value(self, observ):
        """State values [B]."""
        return self.value_mlp(self._flat_observ(observ))[:, 0]

    def _flat_observ(self, observ):
        return tf.reshape(tf.cast(observ, tf.float32), [-1, self.observ_size])


class _GaussianHead:
    """A tanh mean layer and a learned state-independent std (softplus, init_std at start)."""

    def _build_head(self, inputs, action_space, mean_scale, init_std, min_std, seed):
        action_size = int(np.prod(action_space.shape))
        self.mean = Dense(inputs, action_size, tf.tanh, mean_scale, seed + 50, name='mean')
        self.std_logit = tf.Variable(np.full(action_size, np.log(np.expm1(init_std)),
                                             np.float32), name='std_logit')
        self.min_std = min_std

    def _gaussian(self, features):
        mean = self.mean(features)
        std = tf.nn.softplus(self.std_logit) + self.min_std
        return DiagGaussian(mean, tf.broadcast_to(std, tf.shape(mean)))


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
class FeedForwardGaussian(_FeedForward, _GaussianHead):
    """Tanh mean from a policy MLP, a learned state-independent std, a value MLP."""

    def __init__(self, observation_space, action_space, policy_layers=(200, 100),
                 value_layers=(200, 100), activation=tf.nn.relu, mean_scale=0.1,
                 init_std=0.35, min_std=1e-4, seed=0):
        """Layers sizes, activation, mean output scale, initial and least std."""
        _check_gaussian('FeedForwardGaussian', policy_layers, value_layers, mean_scale,
                        init_std, min_std)
        _check_spaces('FeedForwardGaussian', observation_space, action_space, gym.spaces.Box,
                      'FeedForwardCategorical')
        super().__init__(observation_space, value_layers, activation, seed, 'gaussian')
        self.policy_mlp = MLP(self.observ_size, policy_layers, activation, seed, name='policy')
        self._build_head(self.policy_mlp.outputs, action_space, mean_scale, init_std, min_std,
                         seed)

    def policy(self, observ):
        """A DiagGaussian over [B, D] actions."""
        return self._gaussian(self.policy_mlp(self._flat_observ(observ)))


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
class FeedForwardCategorical(_FeedForward):
    """Logits from a policy MLP over a Discrete action space, and a value MLP."""

    def __init__(self, observation_space, action_space, policy_layers=(200, 100),
                 value_layers=(200, 100), activation=tf.nn.relu, logits_scale=0.1, seed=0):
        """Layers sizes, activation, and the initial scale of the logits layer."""
        checks.layers('FeedForwardCategorical.policy_layers', policy_layers)
        checks.layers('FeedForwardCategorical.value_layers', value_layers)
        checks.number('FeedForwardCategorical.logits_scale', logits_scale, low=0, low_open=True)
        _check_spaces('FeedForwardCategorical', observation_space, action_space,
                      gym.spaces.Discrete, 'FeedForwardGaussian')
        super().__init__(observation_space, value_layers, activation, seed, 'categorical')
        self.action_shape = ()
        self.policy_mlp = MLP(self.observ_size, policy_layers, activation, seed, name='policy')
        self.logits = Dense(self.policy_mlp.outputs, int(action_space.n), None, logits_scale,
                            seed + 50, name='logits')

    def policy(self, observ):
        """A Categorical over [B] actions."""
        return Categorical(self.logits(self.policy_mlp(self._flat_observ(observ))))
