"""A dense layer and an MLP as plain tf.Modules.

Plain modules instead of Keras layers: `@gin.configurable` cannot sit on a Keras 3
layer, and these checkpoint through tf.train.Checkpoint with no surprises.
"""

import numpy as np
import tensorflow as tf


class Dense(tf.Module):
    """y = activation(x W + b); weights by variance scaling with `scale`."""

    def __init__(self, inputs, outputs, activation=None, scale=1.0, seed=None, name=None):
        super().__init__(name=name)
        # Glorot-uniform shape, scaled: the original used factor 0.1 for the mean layer.
        limit = scale * np.sqrt(6.0 / (inputs + outputs))
        initial = tf.random.stateless_uniform([inputs, outputs], [seed or 0, inputs * 7919 +
                                                                  outputs], -limit, limit)
        self.kernel = tf.Variable(initial, name='kernel')
        self.bias = tf.Variable(tf.zeros([outputs]), name='bias')
        self.activation = activation

    def __call__(self, inputs):
        """Applies the layer to [B, inputs]."""
        outputs = inputs @ self.kernel + self.bias
        return self.activation(outputs) if self.activation else outputs


class MLP(tf.Module):
    """Dense layers of `sizes` with `activation` between them."""

    def __init__(self, inputs, sizes, activation=tf.nn.relu, seed=0, name=None):
        super().__init__(name=name)
        dims = [inputs] + list(sizes)
        self.layers = [Dense(a, b, activation, seed=seed + index, name=f'dense_{index}')
                       for index, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
        self.outputs = dims[-1]

    def __call__(self, inputs):
        """Applies every layer in turn."""
        for layer in self.layers:
            inputs = layer(inputs)
        return inputs
