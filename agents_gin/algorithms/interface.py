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
