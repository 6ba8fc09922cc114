"""Generalised advantage estimation over padded episodes, with truncation bootstrap."""

import tensorflow as tf


def generalized_advantages(reward, value, bootstrap, mask, discount, lambda_):
    """GAE(lambda) for episodes laid out as rows [K, T] with padding masked out.

    Args:
      reward, value: [K, T] per step.
      bootstrap: [K] value of the state after each episode's last step: V(s_T)
        after a truncation, 0 after a termination (nothing follows a terminal state).
      mask: [K, T] bool, true for real steps; each row's real steps come first.
      discount, lambda_: the usual gamma and lambda.

    Returns:
      advantage [K, T], zero on padding. The value target is advantage + value.
    """
    mask = tf.cast(mask, tf.float32)
    length = tf.cast(tf.reduce_sum(mask, 1), tf.int32)
    steps = tf.shape(reward)[1]
    last = tf.one_hot(length - 1, steps)  # 1 at each row's last real step.
    next_value = tf.concat([value[:, 1:], tf.zeros_like(value[:, :1])], 1)
    next_value = next_value * (1 - last) + bootstrap[:, None] * last
    delta = (reward + discount * next_value - value) * mask

    def backward(following, inputs):
        step_delta, step_mask = inputs
        return (step_delta + discount * lambda_ * following) * step_mask

    advantage = tf.scan(backward, (tf.transpose(delta), tf.transpose(mask)),
                        initializer=tf.zeros_like(bootstrap), reverse=True)
    return tf.transpose(advantage)
