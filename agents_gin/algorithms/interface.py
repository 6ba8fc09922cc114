"""The agent protocol: what an algorithm provides to simulate, the loop and experiment.

An algorithm class is called by `experiment.train` as

    algorithm(observation_space, action_space, num_envs, total_steps=..., seed=...)

(the framework passes these five; they are on gin's denylist). `total_steps` is
the run's length (`Loop.total_steps`): schedules such as learning-rate
annealing are relative to it. The instance provides what `Agent` declares.

A new algorithm needs nothing outside its own folder and a gin file: subclass
`NoLearning` for the counters and the do-nothing episode methods, or implement
`Agent` from scratch; `check_agent` names whatever is missing.
"""

import typing

import tensorflow as tf
from tensorboard.plugins.scalar import metadata as scalar_metadata


@typing.runtime_checkable
class Policy(typing.Protocol):
    """The four methods simulate traces into its graph; indices are int32 vectors.

    A finished environment is reset at the start of the next step, so
    `begin_episode` for an index comes after that index's `end_episode`.
    """

    def begin_episode(self, agent_indices):
        """New episodes start for these environments (their state may be reset)."""

    def perform(self, agent_indices, observ):
        """Returns the actions [len(agent_indices), ...] for `observ`."""

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """One step of every environment in `agent_indices` happened: learn from it.

        `terminated` (a terminal state) and `truncated` (a time limit or a
        restarted worker: the value of `next_observ` still counts) stay apart.
        """

    def end_episode(self, agent_indices):
        """The episodes of these environments ended (terminated or truncated)."""


@typing.runtime_checkable
class Agent(Policy, typing.Protocol):
    """A learning algorithm as the loop and experiment use it.

    Attributes:
      env_steps: int64 tf.Variable, env steps experienced; the loop's clock,
        checkpointed.
      updates: int64 tf.Variable, updates done.
      nonfinite_steps: int32 tf.Variable, gradient steps skipped because the
        loss or a gradient was not finite; the loop stops the run (naming the
        update and env step) as soon as it is above 0, before any save.
      max_length: the longest episode the agent can learn from, or None for any;
        experiment refuses an environment whose episodes may be longer.

    Update statistics are the agent's to write: inside the graph, once per
    update, `write_scalar(tag, value, step=self.env_steps)` (below; inside
    simulate's while loop `tf.summary.scalar` would prefix the tag with the
    graph's name scopes, e.g. 'while/') under CleanRL-style names
    (losses/policy_loss, losses/value_loss, losses/entropy, losses/approx_kl,
    losses/clip_fraction, losses/explained_variance, charts/learning_rate,
    charts/update_seconds, ...). The loop makes the run's train summary writer
    the default around every call of the training simulation, the tracing call
    included, so these ops are recorded.
    """

    env_steps: tf.Variable
    updates: tf.Variable
    nonfinite_steps: tf.Variable
    max_length: int | None

    def checkpoint_items(self):
        """Returns a dict of name -> trackable saved with the run and restored on resume."""

    def greedy_policy(self, num_envs):
        """Returns a `Policy` that acts greedily on `num_envs` environments, for evaluation."""


def write_scalar(tag, value, step):
    """Writes a TensorBoard scalar under exactly `tag`, whatever the name scope.

    `tf.summary.scalar` prefixes its tag with the current name scope, which
    inside a graph's while loop or cond is 'while/...' or 'cond/...'; this
    writes through `tf.summary.write` with the scalar plugin's metadata instead.
    Records to the default summary writer (a no-op without one).
    """
    return tf.summary.write(tag, tf.cast(value, tf.float32), step=step,
                            metadata=_SCALAR_METADATA)


def write_update_statistics(stats, tags, values, start, step):
    """Ends an update's statistics: times it from `start`, keeps and writes each value.

    `values` maps a name to a float32 tensor; 'update_seconds' is added once they
    are all computed. Each value is kept in `stats[name]` (read by tests) and
    written under `tags[name]` at `step`.
    """
    with tf.control_dependencies(list(values.values())):
        values['update_seconds'] = tf.cast(tf.timestamp() - start, tf.float32)
    for name, stat in values.items():
        stats[name].assign(stat)
        write_scalar(tags[name], stat, step)


_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None,
                                                           description=None)


# What check_agent looks for, in the order it names them.
_AGENT_ATTRIBUTES = ('begin_episode', 'perform', 'experience', 'end_episode', 'env_steps',
                     'updates', 'nonfinite_steps', 'max_length', 'checkpoint_items',
                     'greedy_policy')


def check_agent(agent):
    """Raises TypeError naming every attribute of `Agent` that `agent` lacks."""
    missing = [name for name in _AGENT_ATTRIBUTES if not hasattr(agent, name)]
    if missing:
        raise TypeError(
            f'{type(agent).__name__} does not implement the agent protocol '
            f'(agents_gin.algorithms.interface.Agent): missing {", ".join(missing)}')
    return agent


class Acting(tf.Module):
    """The episode methods of `Policy`, doing nothing; subclasses add `perform`."""

    def begin_episode(self, agent_indices):
        """Nothing to reset."""

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """Nothing to learn."""

    def end_episode(self, agent_indices):
        """Nothing to update."""


class NoLearning(Acting):
    """An `Agent` that never learns: counts env steps, no updates, any episode length.

    Subclasses add `perform`; one that learns overrides `experience` (calling
    this one, or counting `env_steps` itself) and adds its own trackables to
    `checkpoint_items`.
    """

    max_length = None

    def __init__(self, name=None):
        super().__init__(name=name)
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_steps')
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
        self.nonfinite_steps = tf.Variable(0, trainable=False, name='nonfinite_steps')

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """Counts the env steps (the loop's clock)."""
        self.env_steps.assign_add(tf.cast(tf.size(agent_indices), tf.int64))

    def checkpoint_items(self):
        """The step count, so that a resumed run continues its clock."""
        return {'env_steps': self.env_steps}

    def greedy_policy(self, num_envs=None):
        """Acts as this agent does (it has no greedier way) without counting its steps."""
        return GreedyPolicy(None, perform=self.perform)


class GreedyPolicy(Acting):
    """Acts with the mode of `policy(observ)` (mean or most likely action) for evaluation."""

    def __init__(self, policy, perform=None):
        """`policy(observ)` returns a distribution; or `perform` gives the actions itself."""
        super().__init__(name='greedy_policy')
        self.policy = policy
        self._perform = perform

    def perform(self, agent_indices, observ):
        """The most likely action."""
        if self._perform is not None:
            return self._perform(agent_indices, observ)
        return self.policy(observ).mode()


class SamplingPolicy(GreedyPolicy):
    """Acts with samples of `policy(observ)`; for games where the mode gets stuck."""

    def __init__(self, policy, seed=0):
        super().__init__(policy)
        self.generator = tf.random.Generator.from_seed(seed)

    def perform(self, agent_indices, observ):
        """A sampled action."""
        return self.policy(observ).sample(self.generator)
