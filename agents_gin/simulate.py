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

    def step(index, state, score, length, finished):
        # Each graph op costs a few microseconds here, so the environment's state
        # travels in loop variables (written to its variables once, at the end)
        # and bookkeeping runs inside branches only when an episode starts or ends.
        observ, done = state[0], tf.logical_or(state[3], state[4])
        observ, score, length = tf.cond(
            tf.reduce_any(done), lambda: _begin(env, agent, done, observ, score, length),
            lambda: (observ, score, length))
        # Python functions inside the graph are ordered only by data, so the step
        # must wait for the reset explicitly, even if the policy ignores observ.
        with tf.control_dependencies([observ]):
            action = agent.perform(every_env, observ)
        next_observ, reward, terminated, truncated = env.step_tensors(action)
        score, length = score + reward, length + 1
        agent.experience(every_env, observ, action, reward, terminated, truncated,
                         next_observ)
        done = tf.logical_or(terminated, truncated)
        finished = tf.cond(
            tf.reduce_any(done), lambda: _end(agent, done, score, length, finished),
            lambda: finished)
        state = (next_observ, tf.cast(action, env.action_dtype), reward, terminated, truncated)
        return index + 1, state, score, length, finished

    finished = tuple(tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False,
                                    element_shape=[None])
                     for dtype in (tf.float32, tf.int32, tf.int32))
    # A pending reset (done) is carried as `truncated` until the first step.
    state = (env.observ.read_value(), env.action.read_value(), env.reward.read_value(),
             env.terminated.read_value(),
             tf.logical_or(env.truncated.read_value(), env.done.read_value()))
    _, state, last_score, last_length, finished = tf.while_loop(
        lambda index, *_: index < num_steps, step,
        (tf.constant(0), state, score.read_value(), length.read_value(), finished),
        parallel_iterations=1)
    env.write(*state)
    score.assign(last_score)
    length.assign(last_length)
    # An empty array still needs one element to concatenate.
    return tuple(array.write(array.size(), tf.zeros([0], array.dtype)).concat()
                 for array in finished)


def _begin(env, agent, done, observ, score, length):
    """Resets the finished environments and starts their episodes at zero."""
    indices = tf.cast(tf.where(done)[:, 0], tf.int32)
    first = env.reset_tensors(indices)
    agent.begin_episode(indices)
    count = tf.shape(indices)
    return (tf.tensor_scatter_nd_update(observ, indices[:, None], first),
            tf.tensor_scatter_nd_update(score, indices[:, None], tf.zeros(count)),
            tf.tensor_scatter_nd_update(length, indices[:, None], tf.zeros(count, tf.int32)))


def _end(agent, done, score, length, finished):
    """Records the finished episodes and tells the agent."""
    ending = tf.cast(tf.where(done)[:, 0], tf.int32)
    agent.end_episode(ending)
    scores, lengths, indices = finished
    return (scores.write(scores.size(), tf.gather(score, ending)),
            lengths.write(lengths.size(), tf.gather(length, ending)),
            indices.write(indices.size(), ending))


@gin.configurable(denylist=['env', 'agent'])
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
