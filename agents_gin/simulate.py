"""The fused step loop: many batch steps of environment and agent in one graph call.

Calling a `tf.function` from Python costs ~200 us here, more than a batch of
light environments takes to step, so the loop itself runs inside the graph: a
`tf.while_loop` whose body resets finished environments, asks the agent for
actions, steps the environments through `tf.numpy_function` and tells the
agent what happened.
"""

import gin
import tensorflow as tf


def simulate(env, agent, num_steps, score, length):
    """Runs `num_steps` batch steps; returns the finished episodes' scores and lengths.

    The agent interface (all methods traced into this graph):
      begin_episode(agent_indices), perform(agent_indices, observ) -> action,
      experience(agent_indices, observ, action, reward, terminated, truncated,
                 next_observ), end_episode(agent_indices).

    An environment that finished is reset at the start of the next step, as in
    the original Batch PPO, so its last observation stays visible until then.

    Args:
      env: an InGraphBatchEnv.
      agent: an object with the methods above.
      num_steps: number of batch steps (a scalar tensor or int).
      score, length: [N] variables with the running return and length of each
        environment's episode; they carry episodes across calls.

    Returns:
      scores [E] float32, lengths [E] int32 and env indices [E] int32 of the E
      episodes that ended, in the order they ended.
    """
    every_env = tf.range(env.size)

    def step(index, score, length, scores, lengths, indices):
        # Each graph op costs a few microseconds here, so bookkeeping happens
        # in loop variables and inside branches that run only when needed.
        score, length = tf.cond(
            tf.reduce_any(env.done), lambda: _begin(env, agent, score, length),
            lambda: (score, length))
        # Python functions inside the graph are only ordered by data, so the
        # step must depend on the reset explicitly, even if the policy ignores
        # the observation.
        with tf.control_dependencies([score]):
            observ = tf.identity(env.observ)
            action = agent.perform(every_env, observ)
        next_observ, reward, terminated, truncated = env.step(action)
        score, length = score + reward, length + 1
        agent.experience(every_env, observ, action, reward, terminated, truncated,
                         next_observ)
        done = tf.logical_or(terminated, truncated)
        scores, lengths, indices = tf.cond(
            tf.reduce_any(done), lambda: _end(agent, done, score, length, scores, lengths,
                                              indices),
            lambda: (scores, lengths, indices))
        return index + 1, score, length, scores, lengths, indices

    finished = [tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False,
                               element_shape=[None])
                for dtype in (tf.float32, tf.int32, tf.int32)]
    _, last_score, last_length, *finished = tf.while_loop(
        lambda index, *_: index < num_steps, step,
        (tf.constant(0), score.read_value(), length.read_value(), *finished),
        parallel_iterations=1)
    score.assign(last_score)
    length.assign(last_length)
    # An empty array still needs one element to concatenate.
    return tuple(array.write(array.size(), tf.zeros([0], array.dtype)).concat()
                 for array in finished)


def _begin(env, agent, score, length):
    """Resets the finished environments and starts their episodes at zero."""
    indices = tf.cast(tf.where(env.done)[:, 0], tf.int32)
    env.reset(indices)
    agent.begin_episode(indices)
    count = tf.shape(indices)
    return (tf.tensor_scatter_nd_update(score, indices[:, None], tf.zeros(count)),
            tf.tensor_scatter_nd_update(length, indices[:, None], tf.zeros(count, tf.int32)))


def _end(agent, done, score, length, scores, lengths, indices):
    """Records the finished episodes and tells the agent."""
    ending = tf.cast(tf.where(done)[:, 0], tf.int32)
    agent.end_episode(ending)
    return (scores.write(scores.size(), tf.gather(score, ending)),
            lengths.write(lengths.size(), tf.gather(length, ending)),
            indices.write(indices.size(), ending))


@gin.configurable
class Simulation(tf.Module):
    """Owns the running scores and lengths; `run(num_steps)` is the one graph call."""

    def __init__(self, env, agent):
        super().__init__(name='simulation')
        self.env, self.agent = env, agent
        self.score = tf.Variable(tf.zeros(env.size), trainable=False, name='score')
        self.length = tf.Variable(tf.zeros(env.size, tf.int32), trainable=False, name='length')

    @tf.function(autograph=False)  # The loop is written with explicit tf.while_loop.
    def run(self, num_steps):
        """Runs `num_steps` batch steps; returns finished (scores, lengths, env indices)."""
        return simulate(self.env, self.agent, num_steps, self.score, self.length)

    def force_reset(self):
        """Makes every environment start a new episode at the next step."""
        self.env.done.assign(tf.ones(self.env.size, tf.bool))
