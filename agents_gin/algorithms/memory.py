"""Episodes of varied lengths in fixed-size buffers: one row per episode.

Every graph op costs a few microseconds in TensorFlow's executor, and PPO
appends a step on every batch step, so the fields are packed: all fields of one
dtype share one [capacity, max_length, width] variable, and a step is written
with one scatter per dtype (one in total for a continuous-action agent) instead
of one per field.
"""

import numpy as np
import tensorflow as tf


class EpisodeMemory(tf.Module):
    """Rows of steps, one row per episode, with a length per row.

    `template` maps a field name to (shape, dtype) of one step. Steps past a
    row's length are stale and must be masked by the reader.
    """

    def __init__(self, template, capacity, max_length, name='memory'):
        super().__init__(name=name)
        self.capacity, self.max_length = capacity, max_length
        # field -> (dtype, start column, width, shape) inside its dtype's packed buffer.
        self._layout, widths = {}, {}
        for key, (shape, dtype) in template.items():
            dtype, shape = tf.as_dtype(dtype), tuple(shape)
            width = int(np.prod(shape))
            self._layout[key] = (dtype, widths.get(dtype, 0), width, shape)
            widths[dtype] = widths.get(dtype, 0) + width
        self._packed = {dtype: tf.Variable(tf.zeros((capacity, max_length, width), dtype),
                                           trainable=False, name=f'packed_{dtype.name}')
                        for dtype, width in widths.items()}
        self.length = tf.Variable(tf.zeros(capacity, tf.int32), trainable=False, name='length')

    @property
    def buffers(self):
        """{field: [capacity, max_length, ...] tensor}, read from the packed buffers."""
        return {key: self._unpack(key, self._packed[dtype])
                for key, (dtype, *_) in self._layout.items()}

    def append(self, transition, rows):
        """Appends one step per row: `transition[key]` is [len(rows), ...]."""
        lengths = tf.gather(self.length, rows)
        check = tf.debugging.assert_less(
            lengths, self.max_length,
            message=f'An episode ran longer than the memory holds ({self.max_length} steps); '
                    'set PPO.max_length to at least the environment episode limit')
        with tf.control_dependencies([check]):
            positions = tf.stack([rows, lengths], 1)
        for dtype, buffer in self._packed.items():
            buffer.scatter_nd_update(positions, self._pack(transition, dtype, tf.size(rows)))
        self.length.scatter_nd_add(rows[:, None], tf.ones_like(rows))

    def copy_rows(self, source, source_rows, rows):
        """Copies whole episodes from another memory (of the same template) into `rows`."""
        for dtype, buffer in self._packed.items():
            buffer.scatter_nd_update(rows[:, None], tf.gather(source._packed[dtype], source_rows))
        self.length.scatter_nd_update(rows[:, None], tf.gather(source.length, source_rows))

    def gather(self, positions):
        """{field: [P, ...]} of the steps at `positions` [P, 2] (row, step); a gather per dtype."""
        taken = {dtype: tf.gather_nd(buffer, positions) for dtype, buffer in self._packed.items()}
        return {key: self._unpack(key, taken[dtype]) for key, (dtype, *_) in self._layout.items()}

    def clear(self, rows=None):
        """Empties the given rows (all by default)."""
        if rows is None:
            self.length.assign(tf.zeros_like(self.length))
        else:
            self.length.scatter_nd_update(rows[:, None], tf.zeros_like(rows))

    def mask(self):
        """[capacity, max_length] bool: which steps are real."""
        return tf.range(self.max_length)[None, :] < self.length[:, None]

    def _pack(self, transition, dtype, count):
        """The fields of `dtype` side by side: [count, width]."""
        parts = [self._flat(tf.cast(transition[key], dtype), shape, count)
                 for key, (field_dtype, _, _, shape) in self._layout.items()
                 if field_dtype == dtype]
        return parts[0] if len(parts) == 1 else tf.concat(parts, 1)

    @staticmethod
    def _flat(value, shape, count):
        """[count, *shape] as [count, width], with no op where the shape allows."""
        if not shape:
            return value[:, None]
        if len(shape) == 1:
            return value
        return tf.reshape(value, [count, -1])

    def _unpack(self, key, packed):
        """Field `key` of a packed tensor [..., width] as [..., *shape]."""
        _, start, width, shape = self._layout[key]
        if not shape:
            return packed[..., start]
        field = packed[..., start:start + width]
        if len(shape) == 1:
            return field
        return tf.reshape(field, tf.concat([tf.shape(packed)[:-1],
                                            tf.constant(shape, tf.int32)], 0))
