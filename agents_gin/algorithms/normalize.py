"""Streaming normalisation of observations and rewards, saved with the run."""

import gin
import tensorflow as tf

from agents_gin import checks


@gin.configurable(denylist=['shape', 'center', 'clip', 'name'])
class StreamingNormalize(tf.Module):
    """Running mean and variance (parallel Welford) of batches; transform with clipping."""

    def __init__(self, shape, center=True, scale=True, clip=10.0, name='normalize'):
        """Statistics of `shape`; `clip` None or > 0 (in standard deviations)."""
        checks.choice('StreamingNormalize.scale', scale, (True, False))
        clip = checks.number(f'StreamingNormalize({name}).clip', clip, low=0, low_open=True,
                             optional=True)
        super().__init__(name=name)
        self._center, self._scale, self.clip = center, scale, clip
        self.count = tf.Variable(0.0, trainable=False, dtype=tf.float64, name='count')
        self.mean = tf.Variable(tf.zeros(shape, tf.float64), trainable=False, name='mean')
        self.var_sum = tf.Variable(tf.zeros(shape, tf.float64), trainable=False, name='var_sum')
        # float32 copies for transform(), which runs on every step: a few ops, no casts.
        self.offset = tf.Variable(tf.zeros(shape), trainable=False, name='offset')
        self.scale = tf.Variable(tf.ones(shape), trainable=False, name='scale')

    def update(self, batch):
        """Adds a batch [B, ...] to the statistics."""
        batch = tf.cast(batch, tf.float64)
        size = tf.cast(tf.shape(batch)[0], tf.float64)
        batch_mean = tf.reduce_mean(batch, 0)
        batch_var_sum = tf.reduce_sum(tf.square(batch - batch_mean), 0)
        total = self.count + size
        delta = batch_mean - self.mean
        self.var_sum.assign_add(batch_var_sum + tf.square(delta) * self.count * size
                                / tf.maximum(total, 1.0))
        self.mean.assign_add(delta * size / tf.maximum(total, 1.0))
        self.count.assign(total)
        if self._center:
            self.offset.assign(tf.cast(self.mean, tf.float32))
        if self._scale:
            self.scale.assign(tf.cast(1 / (self.std() + 1e-8), tf.float32))

    def std(self):
        """Sample standard deviation (1 while fewer than two values were seen)."""
        variance = self.var_sum / tf.maximum(self.count - 1, 1.0)
        return tf.where(self.count > 1, tf.sqrt(variance), tf.ones_like(variance))

    def transform(self, value):
        """Centers, scales and clips `value` with the statistics of the last update.

        Before the first update there are no statistics: the value passes through
        unclipped, since raw values are not in units of standard deviations (the
        original updated its filter on every step, so it never clipped raw values).
        """
        value = (tf.cast(value, tf.float32) - self.offset) * self.scale
        if self.clip:
            value = tf.where(self.count > 0, tf.clip_by_value(value, -self.clip, self.clip),
                             value)
        return value
