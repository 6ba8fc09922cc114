"""Action distributions without extra packages: diagonal Gaussian and categorical.

Each is a small value object built from tensors, with numerically stable
log-probability, entropy and KL. `parameters()` gives the tensors to store in
the episode memory; `from_parameters` rebuilds the distribution from them.
"""

import math

import tensorflow as tf

_LOG_2PI = math.log(2 * math.pi)


class DiagGaussian:
    """Independent normal per action dimension; `mean`, `std` are [..., D]."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    @classmethod
    def from_parameters(cls, parameters):
        """Rebuilds from `parameters()`."""
        return cls(parameters['mean'], parameters['std'])

    def parameters(self):
        """The tensors that define this distribution."""
        return {'mean': self.mean, 'std': self.std}

    def sample(self, generator):
        """One sample per row, drawn from a tf.random.Generator."""
        return self.mean + self.std * generator.normal(tf.shape(self.mean))

    def mode(self):
        """The most likely action: the mean."""
        return self.mean

    def log_prob(self, action):
        """Log-density summed over action dimensions; [...]."""
        z = (action - self.mean) / self.std
        return -0.5 * tf.reduce_sum(z * z + _LOG_2PI + 2 * tf.math.log(self.std), -1)

    def entropy(self):
        """Differential entropy summed over dimensions; [...]."""
        return tf.reduce_sum(0.5 * (_LOG_2PI + 1) + tf.math.log(self.std), -1)

    def kl(self, other):
        """KL(self || other), analytic, summed over dimensions; [...]."""
        ratio = tf.square(self.std / other.std)
        delta = tf.square((self.mean - other.mean) / other.std)
        return 0.5 * tf.reduce_sum(ratio + delta - 1 - tf.math.log(ratio), -1)


class Categorical:
    """A distribution over `logits.shape[-1]` actions."""

    def __init__(self, logits):
        self.logits = logits

    @classmethod
    def from_parameters(cls, parameters):
        """Rebuilds from `parameters()`."""
        return cls(parameters['logits'])

    def parameters(self):
        """The tensors that define this distribution."""
        return {'logits': self.logits}

    @property
    def log_probs(self):
        """Normalised log-probabilities of every action; [..., A]."""
        return tf.nn.log_softmax(self.logits)

    def sample(self, generator):
        """One action per row by the Gumbel-max trick, from a tf.random.Generator."""
        uniform = generator.uniform(tf.shape(self.logits), 1e-20, 1.0)
        return tf.argmax(self.logits - tf.math.log(-tf.math.log(uniform)), -1,
                         output_type=tf.int32)

    def mode(self):
        """The most likely action."""
        return tf.argmax(self.logits, -1, output_type=tf.int32)

    def log_prob(self, action):
        """Log-probability of integer `action`; [...]."""
        return tf.gather(self.log_probs, tf.cast(action, tf.int32), batch_dims=len(
            self.logits.shape) - 1)

    def entropy(self):
        """Entropy in nats; [...]."""
        log_probs = self.log_probs
        return -tf.reduce_sum(tf.exp(log_probs) * log_probs, -1)

    def kl(self, other):
        """KL(self || other); [...]."""
        log_probs = self.log_probs
        return tf.reduce_sum(tf.exp(log_probs) * (log_probs - other.log_probs), -1)
