"""PPO's two policy objectives, chosen in gin by `PPO.objective`.

Each is called on a minibatch with per-sample log-ratio log(pi/pi_old), advantage
and KL(pi_old || pi), and returns the scalar loss; `adapt` runs after an update.
"""

import gin
import tensorflow as tf


@gin.configurable
class ClippedSurrogate(tf.Module):
    """The clipped surrogate of Schulman et al. (2017)."""

    def __init__(self, clip=0.2):
        super().__init__(name='clipped_surrogate')
        self.clip = clip

    def __call__(self, log_ratio, advantage, kl):
        """-mean(min(r A, clip(r, 1-eps, 1+eps) A))."""
        ratio = tf.exp(log_ratio)
        clipped = tf.clip_by_value(ratio, 1 - self.clip, 1 + self.clip)
        return -tf.reduce_mean(tf.minimum(ratio * advantage, clipped * advantage))

    def adapt(self, kl_change):
        """Nothing adapts."""
        return tf.constant(0.0)


@gin.configurable
class KLPenalty(tf.Module):
    """The original Batch PPO objective: adaptive KL penalty plus a steep cutoff.

    After each update the penalty grows x1.5 when the KL exceeded 1.3 x target and
    shrinks /1.5 below 0.7 x target, never below `min_penalty` (the original
    could decay to exactly zero and never recover).
    """

    def __init__(self, target=0.01, cutoff_factor=2.0, cutoff_coef=1000.0, init_penalty=1.0,
                 min_penalty=1e-3):
        super().__init__(name='kl_penalty')
        self.target, self.cutoff_factor, self.cutoff_coef = target, cutoff_factor, cutoff_coef
        self.min_penalty = min_penalty
        self.penalty = tf.Variable(float(init_penalty), trainable=False, name='penalty')

    def __call__(self, log_ratio, advantage, kl):
        """-mean(r A) + penalty mean(KL) + cutoff_coef relu(mean(KL) - cutoff)^2."""
        surrogate = -tf.reduce_mean(tf.exp(log_ratio) * advantage)
        mean_kl = tf.reduce_mean(kl)
        cutoff = tf.square(tf.nn.relu(mean_kl - self.target * self.cutoff_factor))
        return surrogate + self.penalty * mean_kl + self.cutoff_coef * cutoff

    def adapt(self, kl_change):
        """Adjusts the penalty from the KL the update caused; returns the new penalty."""
        factor = tf.where(kl_change > 1.3 * self.target, 1.5,
                          tf.where(kl_change < 0.7 * self.target, 1 / 1.5, 1.0))
        self.penalty.assign(tf.maximum(self.penalty * factor, self.min_penalty))
        return self.penalty.read_value()
