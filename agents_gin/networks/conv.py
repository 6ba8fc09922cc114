"""Convolutional policy-value networks for Atari: the NIPS (2013) and Nature (2015) stacks.

Observations stay uint8 until here and are scaled by 1/255. The trunk is shared
by a softmax policy and a linear value, as in PAAC. gymnasium's frame stacking
puts frames first ([4, 84, 84]); the network moves them to channels.
"""

import gin
import gymnasium as gym
import numpy as np
import tensorflow as tf

from agents_gin import checks
from agents_gin.networks.distributions import Categorical
from agents_gin.networks.layers import Dense


class Conv2D(tf.Module):
    """A VALID convolution with ReLU; torch-style uniform init, as PAAC used."""

    def __init__(self, in_channels, filters, size, stride, seed, name=None):
        super().__init__(name=name)
        limit = 1 / np.sqrt(in_channels * size * size)
        self.kernel = tf.Variable(tf.random.stateless_uniform(
            [size, size, in_channels, filters], [seed, filters], -limit, limit), name='kernel')
        self.bias = tf.Variable(tf.zeros([filters]), name='bias')
        self.stride = stride

    def __call__(self, images):
        """[B, H, W, C] -> [B, H', W', filters]."""
        return tf.nn.relu(tf.nn.conv2d(images, self.kernel, self.stride, 'VALID') + self.bias)


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
class ConvCategorical(tf.Module):
    """Conv layers `(filters, size, stride)...`, a dense layer, policy and value heads."""

    def __init__(self, observation_space, action_space, conv_layers=((16, 8, 4), (32, 4, 2)),
                 hidden=256, frames_first=True, seed=0):
        """Conv stack, hidden units, and whether frames come first ([4, 84, 84])."""
        if (not isinstance(conv_layers, (tuple, list)) or not conv_layers or not all(
                isinstance(layer, (tuple, list)) and len(layer) == 3 for layer in conv_layers)):
            checks.fail('ConvCategorical.conv_layers', conv_layers,
                        'a non-empty tuple of (filters, size, stride) triples')
        for layer in conv_layers:
            checks.layers('ConvCategorical.conv_layers', layer)
        checks.integer('ConvCategorical.hidden', hidden, minimum=1)
        checks.choice('ConvCategorical.frames_first', frames_first, (True, False))
        super().__init__(name='conv_categorical')
        shape = tuple(observation_space.shape)
        if not isinstance(observation_space, gym.spaces.Box) or len(shape) != 3:
            raise ValueError(f'ConvCategorical takes image observations of rank 3, got '
                             f'{observation_space}; for vectors use FeedForwardCategorical')
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f'ConvCategorical needs a Discrete action space, but the env has '
                             f'{action_space}; it has no continuous-action head')
        self.frames_first = frames_first
        height, width, channels = (shape[1], shape[2], shape[0]) if frames_first else shape
        self.convs = []
        for index, (filters, size, stride) in enumerate(conv_layers):
            self.convs.append(Conv2D(channels, filters, size, stride, seed + index,
                                     name=f'conv_{index}'))
            height, width = (height - size) // stride + 1, (width - size) // stride + 1
            channels = filters
        if height < 1 or width < 1:
            raise ValueError(f'Observations {shape} are too small for conv_layers {conv_layers}')
        self.flat_size = height * width * channels
        self.hidden = Dense(self.flat_size, hidden, tf.nn.relu, seed=seed + 10, name='hidden')
        self.logits = Dense(hidden, int(action_space.n), seed=seed + 11, name='logits')
        self.value_head = Dense(hidden, 1, seed=seed + 12, name='value')

    def __call__(self, observ):
        """Returns (Categorical over [B] actions, value [B])."""
        features = self._features(observ)
        return Categorical(self.logits(features)), self.value_head(features)[:, 0]

    def policy(self, observ):
        """The action distribution alone."""
        return Categorical(self.logits(self._features(observ)))

    def value(self, observ):
        """State values [B]."""
        return self.value_head(self._features(observ))[:, 0]

    def _features(self, observ):
        images = tf.cast(observ, tf.float32) / 255.0
        if self.frames_first:
            images = tf.transpose(images, [0, 2, 3, 1])
        for conv in self.convs:
            images = conv(images)
        return self.hidden(tf.reshape(images, [-1, self.flat_size]))


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
def nips_network(observation_space, action_space, seed=0):
    """Mnih et al. 2013: conv 16x8x8/4, conv 32x4x4/2, dense 256 (PAAC's default)."""
    return ConvCategorical(observation_space, action_space, ((16, 8, 4), (32, 4, 2)), 256,
                           seed=seed)


@gin.configurable(denylist=['observation_space', 'action_space', 'seed'])
def nature_network(observation_space, action_space, seed=0):
    """Mnih et al. 2015: conv 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512."""
    return ConvCategorical(observation_space, action_space,
                           ((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512, seed=seed)
