"""The agent interface that simulate drives, and a base for agents that do not learn.

  begin_episode(agent_indices)
  perform(agent_indices, observ) -> action
  experience(agent_indices, observ, action, reward, terminated, truncated, next_observ)
  end_episode(agent_indices)

All four are traced into simulate's graph; indices are int32 vectors.
"""

import tensorflow as tf


class NoLearning(tf.Module):
    """The bookkeeping methods of the interface, doing nothing; subclasses add perform."""

    def begin_episode(self, agent_indices):
        """Nothing to reset."""

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """Nothing to learn."""

    def end_episode(self, agent_indices):
        """Nothing to update."""


class GreedyPolicy(NoLearning):
    """Acts with the mode of `policy(observ)` (mean or most likely action) for evaluation."""

    def __init__(self, policy):
        super().__init__(name='greedy_policy')
        self.policy = policy

    def perform(self, agent_indices, observ):
        """The most likely action."""
        return self.policy(observ).mode()


class SamplingPolicy(GreedyPolicy):
    """Acts with samples of `policy(observ)`; for games where the mode gets stuck."""

    def __init__(self, policy, seed=0):
        super().__init__(policy)
        self.generator = tf.random.Generator.from_seed(seed)

    def perform(self, agent_indices, observ):
        """A sampled action."""
        return self.policy(observ).sample(self.generator)
