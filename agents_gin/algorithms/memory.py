"""Episodes of varied lengths in fixed-size buffers: [capacity, max_length, ...] per field."""

import tensorflow as tf


class EpisodeMemory(tf.Module):
    """Rows of steps, one row per episode, with a length per row.

    `template` maps a field name to (shape, dtype) of one step. Steps past a
    row's length are stale and must be masked by the reader.
    """

    def __init__(self, template, capacity, max_length, name='memory'):
        super().__init__(name=name)
        self.capacity, self.max_length = capacity, max_length
        self.buffers = {key: tf.Variable(tf.zeros((capacity, max_length) + tuple(shape), dtype),
                                         trainable=False, name=key)
                        for key, (shape, dtype) in template.items()}
        self.length = tf.Variable(tf.zeros(capacity, tf.int32), trainable=False, name='length')

    def append(self, transition, rows):
        """Appends one step per row: `transition[key]` is [len(rows), ...]."""
        lengths = tf.gather(self.length, rows)
        check = tf.debugging.assert_less(
            lengths, self.max_length,
            message=f'An episode ran longer than the memory holds ({self.max_length} steps); '
                    'set PPO.max_length to at least the environment episode limit')
        with tf.control_dependencies([check]):
            positions = tf.stack([rows, lengths], 1)
        for key, value in transition.items():
            self.buffers[key].scatter_nd_update(positions, value)
        self.length.scatter_nd_add(rows[:, None], tf.ones_like(rows))

    def copy_rows(self, source, source_rows, rows):
        """Copies whole episodes from another memory into `rows` of this one."""
        for key, buffer in self.buffers.items():
            buffer.scatter_nd_update(rows[:, None], tf.gather(source.buffers[key], source_rows))
        self.length.scatter_nd_update(rows[:, None], tf.gather(source.length, source_rows))

    def clear(self, rows=None):
        """Empties the given rows (all by default)."""
        if rows is None:
            self.length.assign(tf.zeros_like(self.length))
        else:
            self.length.scatter_nd_update(rows[:, None], tf.zeros_like(rows))

    def mask(self):
        """[capacity, max_length] bool: which steps are real."""
        return tf.range(self.max_length)[None, :] < self.length[:, None]
