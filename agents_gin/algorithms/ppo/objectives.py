"""PPO's two policy objectives, chosen in gin by `PPO.objective`.

Each is called on a minibatch with per-sample log-ratio log(pi/pi_old), advantage,
KL(pi_old || pi) and the id of the sequence (episode, or chunk of a recurrent
episode) each sample belongs to, and returns the scalar loss; `adapt` runs after
an update.
"""

import gin
import tensorflow as tf

from agents_gin import checks


@gin.configurable
class ClippedSurrogate(tf.Module):
    """The clipped surrogate of Schulman et al. (2017)."""

    has_penalty = False

    def __init__(self, clip=0.2):
        """`clip`: the ratio is clipped to [1 - clip, 1 + clip]."""
        self.clip = checks.number('ClippedSurrogate.clip', clip, low=0, low_open=True)
        super().__init__(name='clipped_surrogate')

    def __call__(self, log_ratio, advantage, kl, segments=None):
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

    The cutoff applies per sequence, as in Batch PPO: each episode (each chunk for
    a recurrent network) whose mean KL in the minibatch exceeds
    target * cutoff_factor adds cutoff_coef * excess^2, averaged over the
    sequences. (The original averaged each sequence's KL over its padded length;
    here over its real steps, so padding never dilutes it.)

    After each update the penalty grows x1.5 when the KL exceeded 1.3 x target and
    shrinks /1.5 below 0.7 x target, never below `min_penalty` (the original
    could decay to exactly zero and never recover).
    """

    has_penalty = True

    def __init__(self, target=0.01, cutoff_factor=2.0, cutoff_coef=1000.0, init_penalty=1.0,
                 min_penalty=1e-3):
        """Target KL, cutoff threshold factor and weight, initial and least penalty."""
        self.target = checks.number('KLPenalty.target', target, low=0, low_open=True)
        self.cutoff_factor = checks.number('KLPenalty.cutoff_factor', cutoff_factor, low=0,
                                           low_open=True)
        self.cutoff_coef = checks.number('KLPenalty.cutoff_coef', cutoff_coef, low=0)
        self.min_penalty = checks.number('KLPenalty.min_penalty', min_penalty, low=0,
                                         low_open=True)
        init_penalty = checks.number('KLPenalty.init_penalty', init_penalty, low=0,
                                     low_open=True)
        super().__init__(name='kl_penalty')
        self.penalty = tf.Variable(init_penalty, trainable=False, name='penalty')

    def __call__(self, log_ratio, advantage, kl, segments=None):
        """-mean(r A) + penalty mean(KL) + cutoff_coef mean_seq(relu(KL_seq - cutoff)^2)."""
        surrogate = -tf.reduce_mean(tf.exp(log_ratio) * advantage)
        if segments is None:
            segments = tf.zeros(tf.shape(kl), tf.int32)
        _, dense = tf.unique(segments)  # Sequence ids as 0..S-1.
        sequence_kl = tf.math.unsorted_segment_mean(kl, dense, tf.reduce_max(dense) + 1)
        threshold = self.target * self.cutoff_factor
        cutoff = tf.reduce_mean(tf.square(tf.nn.relu(sequence_kl - threshold)))
        return surrogate + self.penalty * tf.reduce_mean(kl) + self.cutoff_coef * cutoff

    def adapt(self, kl_change):
        """Adjusts the penalty from the KL the update caused; returns the new penalty."""
        factor = tf.where(kl_change > 1.3 * self.target, 1.5,
                          tf.where(kl_change < 0.7 * self.target, 1 / 1.5, 1.0))
        self.penalty.assign(tf.maximum(self.penalty * factor, self.min_penalty))
        return self.penalty.read_value()
