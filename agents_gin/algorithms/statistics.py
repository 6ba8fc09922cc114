"""Update statistics written to TensorBoard from inside the training graph."""

import tensorflow as tf


def write_scalars(values, tags, step):
    """Writes `values[name]` under `tags[name]` at `step` to the default summary writer.

    Inside a graph, tf.summary prefixes tags with the enclosing name scopes
    (`while/cond_1/losses/...`); resetting the scope keeps the tags as given,
    e.g. CleanRL's `losses/approx_kl`. Without a default writer nothing is written.
    """
    with tf.compat.v1.name_scope(None):
        for name, value in values.items():
            tf.summary.scalar(tags[name], value, step=step)
