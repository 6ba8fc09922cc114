"""TensorFlow's thread-pool sizes as a gin binding.

On 2 cores TF's default pools made the simulate loop 1.3-1.8x slower and
erratic (ops of the loop body ran on other threads around the GIL-holding
`numpy_function`); one inter-op and one intra-op thread was fastest there.
"""

import gin
import tensorflow as tf
from absl import logging

from agents_gin import checks


@gin.configurable
def configure_threads(inter_op=1, intra_op=1):
    """Sets the pool sizes (0 lets TensorFlow choose); call before any TF op runs."""
    checks.integer('configure_threads.inter_op', inter_op, 0)
    checks.integer('configure_threads.intra_op', intra_op, 0)
    try:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError as error:
        logging.warning('TensorFlow thread pools were already fixed (%s); keeping %d inter-op '
                        'and %d intra-op threads.', error,
                        tf.config.threading.get_inter_op_parallelism_threads(),
                        tf.config.threading.get_intra_op_parallelism_threads())
    return (tf.config.threading.get_inter_op_parallelism_threads(),
            tf.config.threading.get_intra_op_parallelism_threads())
