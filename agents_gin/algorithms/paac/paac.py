"""PAAC: synchronous parallel advantage actor-critic (Clemente et al. 2017).

All environments step `t_max` times under the current policy; then one update
on the t_max x N batch uses n-step returns bootstrapped from the value of the
state after the last step. An episode that ends inside the window stops the
return there: nothing follows a termination, and the value of the next state
follows a truncation. The defaults are the original code's (Alfredvc/paac):
t_max 5, RMSProp (decay 0.99, epsilon 0.1), learning rate 0.0224 annealed to 0
over the run (80M steps), entropy 0.02, value loss 0.25, loss scale 5, global-norm clip 3.
One difference remains by default: TF1's RMSProp, which the original used, starts
its mean square at 1.0, ours at 0 (as Keras); bind `RMSProp.initial_mean_square = 1.0`
for the original's smaller first steps.
"""

import gin
import tensorflow as tf

from agents_gin import checks
from agents_gin.algorithms.interface import (
    GreedyPolicy,
    SamplingPolicy,
    write_update_statistics,
)
from agents_gin.algorithms.optimizers import RMSProp, apply_if_finite, linear_decay
from agents_gin.envs.in_graph import graph_dtype
from agents_gin.networks.conv import nips_network

# Update statistics and their TensorBoard tags (CleanRL's names).
STAT_TAGS = {'policy_loss': 'losses/policy_loss', 'value_loss': 'losses/value_loss',
             'entropy': 'losses/entropy', 'explained_variance': 'losses/explained_variance',
             'gradient_norm': 'losses/gradient_norm', 'learning_rate': 'charts/learning_rate',
             'action_std': 'charts/action_std', 'update_seconds': 'charts/update_seconds'}


def n_step_returns(reward, terminated, truncated, next_value, discount):
    """n-step returns [T, N] over a window of T steps of N environments.

    R_t = r_t + discount * (1 - terminated_t) * G_t, where G_t = V(s'_t) after a
    truncation or at the window's last step, else R_{t+1}.
    """
    steps = reward.shape[0]
    following = next_value[-1]
    returns = []
    for t in reversed(range(steps)):
        cut = truncated[t] if t < steps - 1 else tf.ones_like(truncated[t])
        following = tf.where(cut, next_value[t], following)
        following = reward[t] + discount * (1.0 - tf.cast(terminated[t], tf.float32)) * following
        returns.append(following)
    return tf.stack(returns[::-1])


# What the framework passes is not bindable: train and Loop are its one source.
@gin.configurable(denylist=['observation_space', 'action_space', 'num_envs', 'total_steps',
                            'seed'])
class PAAC(tf.Module):
    """The agent interface of simulate, updating every `t_max` batch steps."""

    def __init__(self, observation_space, action_space, num_envs, network=nips_network,
                 optimizer=RMSProp, learning_rate=0.0224, learning_rate_decay=1.0,
                 t_max=5, discount=0.99, entropy_coef=0.02, value_coef=0.25, loss_scale=5.0,
                 max_gradient_norm=3.0, reward_clip=1.0, sample_in_eval=False,
                 total_steps=None, seed=0):
        """Builds the network, the rollout window and the optimizer.

        Args:
          network: called with (observation_space, action_space, seed=seed); returns
            (distribution, value) for a batch; categorical or Gaussian heads both work.
          reward_clip: rewards are clipped to [-clip, clip] for learning only (episode
            returns stay raw); None disables it.
          learning_rate_decay: anneal the rate linearly to 0 over this fraction of
            the run (1.0: over all of `Loop.total_steps`, as the original over its
            80M steps); None keeps it constant.
          sample_in_eval: evaluate with sampled actions instead of the mode.
          total_steps: the run's length in env steps, passed by the framework
            (from Loop.total_steps) for the schedule; not bindable.
        """
        self._validate(locals())
        super().__init__(name='paac')
        self.t_max, self.discount, self.num_envs = t_max, discount, num_envs
        self.learning_rate, self.decay_fraction = learning_rate, learning_rate_decay
        self.total_steps = total_steps
        self.entropy_coef, self.value_coef, self.loss_scale = entropy_coef, value_coef, loss_scale
        self.max_gradient_norm, self.reward_clip = max_gradient_norm, reward_clip
        self.sample_in_eval, self.seed = sample_in_eval, seed
        self.max_length = None  # The window spans episodes of any length.
        self.network = network(observation_space, action_space, seed=seed)
        self.optimizer = optimizer(self.network.trainable_variables)
        self.generator = tf.random.Generator.from_seed(seed)
        observ = ((t_max, num_envs) + tuple(observation_space.shape),
                  graph_dtype(observation_space, 'observation'))
        fields = {'observ': observ, 'next_observ': observ,
                  'action': ((t_max, num_envs) + tuple(action_space.shape),
                             graph_dtype(action_space, 'action')),
                  'reward': ((t_max, num_envs), tf.float32),
                  'terminated': ((t_max, num_envs), tf.bool),
                  'truncated': ((t_max, num_envs), tf.bool)}
        # The window is not checkpointed: a resumed run starts a fresh window.
        self._window = {key: tf.Variable(tf.zeros(shape, dtype), trainable=False, name=key)
                        for key, (shape, dtype) in fields.items()}
        self._position = tf.Variable(0, trainable=False, name='position')
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_steps')
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
        self.nonfinite_steps = tf.Variable(0, trainable=False, name='nonfinite_steps')
        gaussian = 'std' in self.network.policy(tf.zeros((1,) + tuple(
            observation_space.shape), observ[1])).parameters()
        self._stat_names = tuple(name for name in STAT_TAGS
                                 if name != 'action_std' or gaussian)
        # The last update's statistics, for tests; TensorBoard gets them from _train.
        self.stats = {name: tf.Variable(0.0, trainable=False, name=name)
                      for name in self._stat_names}

    @staticmethod
    def _validate(args):
        """Checks every bound value; a ConfigError names the binding, the value, what is valid."""
        checks.number('PAAC.learning_rate', args['learning_rate'], low=0, low_open=True)
        checks.number('PAAC.learning_rate_decay', args['learning_rate_decay'], 0, 1,
                      low_open=True, optional=True)
        checks.integer('PAAC.t_max', args['t_max'], minimum=1)
        checks.number('PAAC.discount', args['discount'], 0, 1, low_open=True)
        for name in ('entropy_coef', 'value_coef'):
            checks.number(f'PAAC.{name}', args[name], low=0)
        checks.number('PAAC.loss_scale', args['loss_scale'], low=0, low_open=True)
        for name in ('max_gradient_norm', 'reward_clip'):
            checks.number(f'PAAC.{name}', args[name], low=0, low_open=True, optional=True)
        checks.choice('PAAC.sample_in_eval', args['sample_in_eval'], (True, False))
        checks.relation(args['learning_rate_decay'] is None or args['total_steps'],
                        'PAAC.learning_rate_decay needs the run length: the framework passes '
                        'total_steps (Loop.total_steps); a PAAC built by hand must pass it too, '
                        'or bind PAAC.learning_rate_decay = None.')

    def checkpoint_items(self):
        """What a checkpoint holds."""
        return {'network': self.network, 'optimizer': self.optimizer,
                'generator': self.generator, 'env_steps': self.env_steps,
                'updates': self.updates}

    def greedy_policy(self, num_envs=None):
        """The agent used for evaluation."""
        if self.sample_in_eval:
            return SamplingPolicy(self.network.policy, self.seed + 1)
        return GreedyPolicy(self.network.policy)

    def begin_episode(self, agent_indices):
        """Episodes need no bookkeeping: the window spans them."""

    def end_episode(self, agent_indices):
        """Episodes need no bookkeeping: the window spans them."""

    def perform(self, agent_indices, observ):
        """Samples actions from the current policy."""
        return self.network.policy(observ).sample(self.generator)

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """Writes the step into the window; updates when the window is full."""
        if self.reward_clip:
            reward = tf.clip_by_value(reward, -self.reward_clip, self.reward_clip)
        step = {'observ': observ, 'next_observ': next_observ, 'action': action,
                'reward': reward, 'terminated': terminated, 'truncated': truncated}
        for key, value in step.items():
            self._window[key].scatter_nd_update([[self._position]], value[None])
        self.env_steps.assign_add(tf.cast(tf.size(agent_indices), tf.int64))
        position = self._position.assign_add(1)
        return tf.cond(position >= self.t_max, self._train, lambda: tf.constant(False))

    def _train(self):
        """One update on the full window."""
        start = tf.timestamp()
        with tf.control_dependencies([start]):  # Timestamps are ordered only by data.
            window = {key: variable.read_value() for key, variable in self._window.items()}
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            terms = self._loss(window)
        # The schedule's clock: env steps before this window was collected.
        window_start = self.env_steps - self.t_max * self.num_envs
        learning_rate = linear_decay(self.learning_rate, window_start, self.decay_fraction,
                                     self.total_steps)
        norm = apply_if_finite(self.optimizer, terms['loss'],
                               tape.gradient(terms['loss'], variables), variables,
                               learning_rate, self.max_gradient_norm, self.nonfinite_steps)
        terms.update(gradient_norm=norm, learning_rate=learning_rate)
        values = {name: tf.cast(terms[name], tf.float32) for name in self._stat_names
                  if name in terms}
        write_update_statistics(self.stats, STAT_TAGS, values, start, self.env_steps)
        self._position.assign(0)
        self.updates.assign_add(1)
        return tf.constant(True)

    def _loss(self, window):
        """The scaled actor-critic loss of a window, its terms and diagnostics."""
        batch = self.t_max * self.num_envs
        flat = lambda tensor: tf.reshape(tensor, (batch,) + tuple(tensor.shape[2:]))  # noqa: E731
        next_value = tf.reshape(self.network.value(flat(window['next_observ'])),
                                (self.t_max, self.num_envs))
        returns = tf.stop_gradient(flat(n_step_returns(
            window['reward'], window['terminated'], window['truncated'], next_value,
            self.discount)))
        policy, value = self.network(flat(window['observ']))
        advantage = tf.stop_gradient(returns - value)
        policy_loss = -tf.reduce_mean(policy.log_prob(flat(window['action'])) * advantage)
        entropy = tf.reduce_mean(policy.entropy())
        value_loss = tf.reduce_mean(tf.square(returns - value))
        loss = self.loss_scale * (policy_loss - self.entropy_coef * entropy
                                  + self.value_coef * value_loss)
        _, return_variance = tf.nn.moments(returns, [0])
        _, residual_variance = tf.nn.moments(returns - value, [0])
        terms = {'loss': loss, 'policy_loss': policy_loss, 'value_loss': value_loss,
                 'entropy': entropy, 'return': returns,
                 'explained_variance': 1 - residual_variance / (return_variance + 1e-8)}
        if 'std' in policy.parameters():
            terms['action_std'] = tf.reduce_mean(policy.std)
        return terms
