"""Adam and RMSProp as tf.Modules: graph-friendly and checkpointed with the run.

Hand-written rather than Keras's so that they are plain tf.Modules (checkpointed
with the agent, no Keras 3 layer tracking) and take the learning rate as a
tensor on each call (the schedule lives in the graph). tests/test_optimizers.py
checks them step by step against tf.keras.optimizers.Adam and RMSprop and
against TF1's RMSPropOptimizer (PAAC's original) with the same settings.
"""

import gin
import tensorflow as tf

from agents_gin import checks


@gin.configurable(denylist=['variables'])
class Adam(tf.Module):
    """Adam with bias correction; one slot pair per variable."""

    def __init__(self, variables, beta1=0.9, beta2=0.999, epsilon=1e-5):
        """Slots for `variables`; Keras's defaults except epsilon (1e-5, as CleanRL)."""
        beta1 = checks.number('Adam.beta1', beta1, 0, 1, high_open=True)
        beta2 = checks.number('Adam.beta2', beta2, 0, 1, high_open=True)
        epsilon = checks.number('Adam.epsilon', epsilon, low=0, low_open=True)
        super().__init__(name='adam')
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.steps = tf.Variable(0.0, trainable=False, name='steps')
        self.first = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.second = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]

    def apply(self, gradients, variables, learning_rate):
        """Takes one step along `gradients`."""
        self.steps.assign_add(1.0)
        correction = (tf.sqrt(1 - tf.pow(self.beta2, self.steps))
                      / (1 - tf.pow(self.beta1, self.steps)))
        for gradient, variable, first, second in zip(gradients, variables, self.first,
                                                     self.second):
            first.assign(self.beta1 * first + (1 - self.beta1) * gradient)
            second.assign(self.beta2 * second + (1 - self.beta2) * tf.square(gradient))
            variable.assign_sub(learning_rate * correction * first
                                / (tf.sqrt(second) + self.epsilon))


@gin.configurable(denylist=['variables'])
class RMSProp(tf.Module):
    """RMSProp as in PAAC: decay 0.99, epsilon 0.1 inside the square root, no momentum.

    The mean square starts at `initial_mean_square`: 0 as Keras's RMSprop (the
    first steps are large, lr * g / sqrt((1 - decay) g^2 + eps)), or 1.0 as TF1's
    RMSPropOptimizer that PAAC's original used (the first steps are small).
    """

    def __init__(self, variables, decay=0.99, epsilon=0.1, initial_mean_square=0.0):
        """Slots for `variables`."""
        decay = checks.number('RMSProp.decay', decay, 0, 1, high_open=True)
        epsilon = checks.number('RMSProp.epsilon', epsilon, low=0, low_open=True)
        initial = checks.number('RMSProp.initial_mean_square', initial_mean_square, low=0)
        super().__init__(name='rmsprop')
        self.decay, self.epsilon = decay, epsilon
        self.mean_square = [tf.Variable(tf.fill(tf.shape(v), initial), trainable=False)
                            for v in variables]

    def apply(self, gradients, variables, learning_rate):
        """Takes one step along `gradients`."""
        for gradient, variable, mean_square in zip(gradients, variables, self.mean_square):
            mean_square.assign(self.decay * mean_square + (1 - self.decay) * tf.square(gradient))
            variable.assign_sub(learning_rate * gradient / tf.sqrt(mean_square + self.epsilon))


def linear_decay(learning_rate, env_steps, fraction, total_steps):
    """`learning_rate` annealed linearly to 0 over `fraction` of a run of `total_steps`.

    `env_steps` should be the steps taken before the current batch was collected
    (as CleanRL anneals per iteration), so the last update of a run still learns.
    `fraction` None keeps the rate constant.
    """
    if not fraction:
        return tf.constant(learning_rate, tf.float32)
    horizon = float(fraction) * float(total_steps)
    progress = tf.cast(env_steps, tf.float32) / horizon
    return learning_rate * tf.maximum(0.0, 1.0 - progress)


def apply_if_finite(optimizer, loss, gradients, variables, learning_rate, max_norm,
                    skipped_counter):
    """Clips by global norm and applies; skips (and counts) a non-finite step.

    A step that leaves a weight non-finite is counted too (it cannot be undone;
    the loop stops the run before anything is saved).

    Returns the gradient norm before clipping.
    """
    norm = tf.linalg.global_norm(gradients)
    if max_norm:
        gradients, _ = tf.clip_by_global_norm(gradients, max_norm, norm)
    finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))

    def apply():
        optimizer.apply(gradients, variables, learning_rate)
        # A finite step can still overflow the weights (a huge learning rate); the
        # next actions would then be NaN, so count it now and let the loop stop.
        weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(variable))
                                        for variable in variables])
        return tf.cond(weights_finite, lambda: tf.constant(True), skip)

    def skip():
        skipped_counter.assign_add(1)
        return tf.constant(False)

    tf.cond(finite, apply, skip)
    return norm
