"""BatchPPO: proximal policy optimisation over whole episodes, inside the simulate graph.

As in the original (Hafner et al. 2017): the agent collects each environment's
episode in a memory row, moves finished episodes to a second memory, and after
`update_every` finished episodes trains for `update_epochs` epochs, all within
the same graph call that steps the environments.

Fixed from the original: value targets bootstrap on truncation and not on
termination; padding never counts in averages (transitions are compacted);
no finished episode is dropped (the memory has room for a whole batch more);
acting and training see the same observation statistics (the normaliser is
frozen while collecting and updated after each training round; before its first
statistics it passes raw observations through unclipped).

Where we differ from the original by default, a binding restores it: the value
regresses to the GAE lambda-return (`value_target='discounted_return'` for the
original's discounted return), a time limit bootstraps (`bootstrap_truncated`),
and the objective is the clipped surrogate (`objective=@KLPenalty` for the
original's adaptive penalty, whose cutoff applies per episode as there).

Statistics of each update go to TensorBoard from inside the graph (see
STAT_TAGS): approx_kl is CleanRL's estimator mean((r - 1) - log r), and it, the
losses, entropy and clip_fraction are averages over the update's gradient steps.
"""

import gin
import tensorflow as tf

from agents_gin import checks
from agents_gin.algorithms.advantages import generalized_advantages
from agents_gin.algorithms.interface import GreedyPolicy, write_update_statistics
from agents_gin.algorithms.memory import EpisodeMemory
from agents_gin.algorithms.normalize import StreamingNormalize
from agents_gin.algorithms.optimizers import Adam, apply_if_finite, linear_decay
from agents_gin.algorithms.ppo.objectives import ClippedSurrogate
from agents_gin.envs.in_graph import graph_dtype
from agents_gin.networks.feed_forward import FeedForwardGaussian

# Update statistics and their TensorBoard tags (CleanRL's names where CleanRL has them).
STAT_TAGS = {'policy_loss': 'losses/policy_loss', 'value_loss': 'losses/value_loss',
             'entropy': 'losses/entropy', 'approx_kl': 'losses/approx_kl',
             'clip_fraction': 'losses/clip_fraction', 'kl': 'losses/kl',
             'kl_change': 'losses/kl_change', 'gradient_norm': 'losses/gradient_norm',
             'explained_variance': 'losses/explained_variance',
             'learning_rate': 'charts/learning_rate', 'action_std': 'charts/action_std',
             'penalty': 'charts/kl_penalty', 'update_seconds': 'charts/update_seconds',
             'batch_transitions': 'charts/batch_transitions'}
# Per gradient step, summed over an update and divided by the number of steps.
STEP_STATS = ('policy_loss', 'value_loss', 'entropy', 'kl', 'gradient_norm', 'approx_kl',
              'clip_fraction')
VALUE_TARGETS = ('lambda_return', 'discounted_return')


# What the framework passes is not bindable: train and Loop are its one source.
@gin.configurable(denylist=['observation_space', 'action_space', 'num_envs', 'total_steps',
                            'seed'])
class PPO(tf.Module):
    """The agent interface of simulate, with a PPO update when enough episodes finished."""

    def __init__(self, observation_space, action_space, num_envs,
                 network=FeedForwardGaussian, objective=ClippedSurrogate, optimizer=Adam,
                 learning_rate=1e-4, learning_rate_decay=None, update_every=30,
                 update_epochs=25, minibatch_size=None, max_length=1000, discount=0.995,
                 gae_lambda=0.95, entropy_coef=0.0, value_coef=0.5, max_gradient_norm=None,
                 normalize_observ=True, normalize_reward=True, bootstrap_truncated=True,
                 chunk_length=None, observ_clip=5.0, reward_clip=10.0,
                 value_target='lambda_return', total_steps=None, seed=0):
        """Builds networks, memories and optimizer.

        Args:
          network: a network class called with (observation_space, action_space, seed).
          objective: ClippedSurrogate or KLPenalty (the original), called with no args.
          optimizer: an optimizer class called with the trainable variables.
          learning_rate_decay: anneal the rate linearly to 0 over this fraction of
            the run (1.0: over all of `Loop.total_steps`); None keeps it constant.
          update_every: finished episodes per update.
          minibatch_size: transitions per gradient step (sequences of `chunk_length`
            for a recurrent network); None uses the whole batch.
          max_length: the longest episode the memory holds.
          gae_lambda: 1.0 gives Monte-Carlo returns minus the value baseline.
          bootstrap_truncated: False treats a time limit as terminal, as the original did.
          chunk_length: a recurrent network trains on episodes cut into chunks of this
            many steps (it must divide max_length), each starting from the state stored
            when it was played; None trains on whole episodes.
          observ_clip, reward_clip: normalised observations and rewards are clipped
            to [-clip, clip] (None: no clipping); raw values before the normaliser's
            first statistics are never clipped.
          value_target: what the value regresses to. 'lambda_return' (default, as
            CleanRL and stable-baselines3): the GAE(lambda) advantage plus the value,
            R^lambda_t. 'discounted_return' (the original Batch PPO): the discounted
            return of the episode's rewards, bootstrapped from V(s_T) after a
            truncation when `bootstrap_truncated`. The advantage is GAE(lambda) either way.
          total_steps: the run's length in env steps, passed by the framework
            (from Loop.total_steps) for the schedules; not bindable.
        """
        self._validate(locals())
        super().__init__(name='ppo')
        self.value_target = value_target
        self.num_envs, self.update_every, self.update_epochs = num_envs, update_every, update_epochs
        self.max_length = max_length
        self.minibatch_size, self.discount, self.gae_lambda = minibatch_size, discount, gae_lambda
        self.learning_rate, self.decay_fraction = learning_rate, learning_rate_decay
        self.total_steps = total_steps
        self.entropy_coef, self.value_coef = entropy_coef, value_coef
        self.max_gradient_norm, self.bootstrap_truncated = max_gradient_norm, bootstrap_truncated
        self.network = network(observation_space, action_space, seed=seed)
        self.recurrent = hasattr(self.network, 'state_size')
        self.chunk_length = chunk_length or max_length
        self.objective = objective()
        self.optimizer = optimizer(self.network.trainable_variables)
        self.generator = tf.random.Generator.from_seed(seed)
        observ_shape = tuple(observation_space.shape)
        self.observ_normalizer = (StreamingNormalize(observ_shape, clip=observ_clip, name='observ')
                                  if normalize_observ else None)
        self.reward_normalizer = (StreamingNormalize((), center=False, clip=reward_clip,
                                                     name='reward')
                                  if normalize_reward else None)
        probe = self.network.policy(tf.zeros((1,) + observ_shape))
        self._distribution = type(probe)
        template = {'observ': (observ_shape, tf.float32), 'reward': ((), tf.float32),
                    'action': (tuple(action_space.shape), graph_dtype(action_space, 'action'))}
        for key, value in probe.parameters().items():
            template['policy_' + key] = (tuple(value.shape[1:]), tf.float32)
        if self.recurrent:
            # The state before each step, so that a training chunk starts where it was played.
            template['state'] = ((self.network.state_size,), tf.float32)
            self._state = tf.Variable(tf.zeros((num_envs, self.network.state_size)),
                                      trainable=False)
        capacity = update_every + num_envs  # Room for every episode that ends in one step.
        # Excluded from checkpoints (see checkpoint_items): a resumed run restarts episodes.
        self._episodes = EpisodeMemory(template, num_envs, max_length, 'episodes')
        self._finished = EpisodeMemory(template, capacity, max_length, 'finished')
        self._finished_final_observ = tf.Variable(tf.zeros((capacity,) + observ_shape),
                                                  trainable=False)
        self._finished_terminated = tf.Variable(tf.zeros(capacity, tf.bool), trainable=False)
        self._num_finished = tf.Variable(0, trainable=False)
        # What perform and experience hand on within one traced step (see perform).
        self._acting, self._stepped = None, None
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_steps')
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='updates')
        # Env steps when the previous update ended: the learning-rate schedule's clock.
        self.schedule_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                          name='schedule_steps')
        self.nonfinite_steps = tf.Variable(0, trainable=False, name='nonfinite_steps')
        self._stat_names = tuple(name for name in STAT_TAGS if self._applies(name, probe))
        # The last update's statistics, for tests; TensorBoard gets them from _train.
        self.stats = {name: tf.Variable(0.0, trainable=False, name=name)
                      for name in self._stat_names}

    @staticmethod
    def _validate(args):
        """Checks every bound value; a ConfigError names the binding, the value, what is valid."""
        checks.number('PPO.learning_rate', args['learning_rate'], low=0, low_open=True)
        checks.number('PPO.learning_rate_decay', args['learning_rate_decay'], 0, 1,
                      low_open=True, optional=True)
        for name in ('update_every', 'update_epochs', 'max_length'):
            checks.integer(f'PPO.{name}', args[name], minimum=1)
        for name in ('minibatch_size', 'chunk_length'):
            checks.integer(f'PPO.{name}', args[name], minimum=1, optional=True)
        checks.number('PPO.discount', args['discount'], 0, 1, low_open=True)
        checks.number('PPO.gae_lambda', args['gae_lambda'], 0, 1)
        for name in ('entropy_coef', 'value_coef'):
            checks.number(f'PPO.{name}', args[name], low=0)
        for name in ('max_gradient_norm', 'observ_clip', 'reward_clip'):
            checks.number(f'PPO.{name}', args[name], low=0, low_open=True, optional=True)
        for name in ('normalize_observ', 'normalize_reward', 'bootstrap_truncated'):
            checks.choice(f'PPO.{name}', args[name], (True, False))
        checks.choice('PPO.value_target', args['value_target'], VALUE_TARGETS)
        chunk, length = args['chunk_length'], args['max_length']
        checks.relation(chunk is None or length % chunk == 0,
                        f'PPO.chunk_length = {chunk} is invalid: expected a divisor of '
                        f'PPO.max_length = {length}.')
        checks.relation(args['learning_rate_decay'] is None or args['total_steps'],
                        'PPO.learning_rate_decay needs the run length: the framework passes '
                        'total_steps (Loop.total_steps); a PPO built by hand must pass it too.')

    def _applies(self, name, probe):
        """Whether statistic `name` means something for this objective and policy."""
        if name == 'penalty':
            return self.objective.has_penalty
        if name == 'clip_fraction':
            return hasattr(self.objective, 'clip')
        if name == 'action_std':
            return 'std' in probe.parameters()
        return True

    def checkpoint_items(self):
        """What a checkpoint holds: learned and adaptive state, never episode buffers."""
        items = {'network': self.network, 'optimizer': self.optimizer,
                 'objective': self.objective, 'generator': self.generator,
                 'env_steps': self.env_steps, 'updates': self.updates,
                 'schedule_steps': self.schedule_steps}
        for name, normalizer in (('observ_normalizer', self.observ_normalizer),
                                 ('reward_normalizer', self.reward_normalizer)):
            if normalizer is not None:
                items[name] = normalizer
        return items

    def greedy_policy(self, num_envs=None):
        """An agent that acts with this policy's mode and learns nothing, for evaluation."""
        if self.recurrent:
            return RecurrentGreedyPolicy(self.network, self._normalize, num_envs or 1)
        return GreedyPolicy(lambda observ: self.network.policy(self._normalize(observ)))

    # The agent interface ---------------------------------------------------------

    def begin_episode(self, agent_indices):
        """Empties the episode rows of these environments and zeroes their state."""
        self._episodes.clear(agent_indices)
        if self.recurrent:
            self._state.scatter_nd_update(agent_indices[:, None], self.network.initial_state(
                tf.size(agent_indices)))

    def perform(self, agent_indices, observ):
        """Samples actions; hands the policy that chose them on to `experience`.

        The interface calls perform, experience and end_episode of one step in
        this order (simulate traces them into one loop body), so the policy's
        parameters pass on as tensors: storing them in variables for experience
        to read back cost two ops per parameter on every step.
        """
        acting = {}
        if self.recurrent:
            state = tf.gather(self._state, agent_indices)
            acting['state'] = state
            policy, state = self.network.policy_step(self._normalize(observ), state)
            self._state.scatter_nd_update(agent_indices[:, None], state)
        else:
            policy = self.network.policy(self._normalize(observ))
        for key, value in policy.parameters().items():
            acting['policy_' + key] = value
        self._acting = (agent_indices, acting)
        return policy.sample(self.generator)

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        """Appends the step, with the policy that chose it, to each environment's episode row."""
        acting = _handed_on(self._acting, agent_indices, 'experience', 'perform')
        transition = {'observ': tf.cast(observ, tf.float32), 'action': action,
                      'reward': reward, **acting}
        self._episodes.append(transition, agent_indices)
        # The final observation and ending matter only to end_episode, later in this step.
        self._stepped = (agent_indices, {'final_observ': tf.cast(next_observ, tf.float32),
                                         'terminated': terminated})
        self.env_steps.assign_add(tf.cast(tf.size(agent_indices), tf.int64))

    def end_episode(self, agent_indices):
        """Moves finished episodes to the batch; trains once the batch is full."""
        stepped, ending = self._stepped[0] if self._stepped else None, {}
        if stepped is not None and _reachable(stepped, agent_indices):
            # Where each ending env sits in the step's batch (identity under simulate).
            where = tf.argmax(tf.cast(tf.equal(agent_indices[:, None], stepped[None, :]),
                                      tf.int32), 1)
            ending = {key: tf.gather(value, where) for key, value in self._stepped[1].items()}
        else:
            _handed_on(None, agent_indices, 'end_episode', 'experience')
        rows = self._num_finished + tf.range(tf.size(agent_indices))
        self._finished.copy_rows(self._episodes, agent_indices, rows)
        self._finished_final_observ.scatter_nd_update(rows[:, None], ending['final_observ'])
        self._finished_terminated.scatter_nd_update(rows[:, None], ending['terminated'])
        count = self._num_finished.assign_add(tf.size(agent_indices))
        return tf.cond(count >= self.update_every, self._train, lambda: tf.constant(False))

    def _discard_batch(self):
        """Empties the batch of finished episodes (after training on it)."""
        self._finished.clear()
        self._num_finished.assign(0)

    # Training --------------------------------------------------------------------

    def _normalize(self, observ):
        if self.observ_normalizer is None:
            return tf.cast(observ, tf.float32)
        return self.observ_normalizer.transform(observ)

    def _train(self):
        """One PPO round on the finished episodes; clears them afterwards."""
        start = tf.timestamp()
        with tf.control_dependencies([start]):  # Timestamps are ordered only by data.
            batch, old, info = self._prepare_batch()
        sums = self._run_epochs(batch, old)
        kl_change = tf.reduce_mean(self._evaluate(batch, old)['kl'])
        penalty = self.objective.adapt(kl_change)
        if self.observ_normalizer is not None:
            self.observ_normalizer.update(info['raw_observ'])
        returns = info['return']
        _, return_variance = tf.nn.moments(returns, [0])
        _, residual_variance = tf.nn.moments(returns - info['value'], [0])
        steps = tf.maximum(sums[-1], 1.0)
        values = {name: sums[index] / steps for index, name in enumerate(STEP_STATS)}
        values.update({'kl_change': kl_change, 'penalty': penalty,
                       'learning_rate': self._learning_rate(),
                       'explained_variance': 1 - residual_variance / (return_variance + 1e-8),
                       'action_std': info['action_std'],
                       'batch_transitions': tf.cast(tf.size(returns), tf.float32)})
        values = {name: tf.cast(values[name], tf.float32) for name in self._stat_names
                  if name in values}
        write_update_statistics(self.stats, STAT_TAGS, values, start, self.env_steps)
        self._discard_batch()
        self.updates.assign_add(1)
        with tf.control_dependencies(list(values.values())):
            self.schedule_steps.assign(self.env_steps)
        return tf.constant(True)

    def _prepare_batch(self):
        """The training batch of the finished episodes: normalised inputs, targets, advantages.

        Returns (batch, old policy parameters, info); `info` holds what the
        statistics need: raw observations, values, value targets, the acting std.
        """
        mask = tf.logical_and(self._finished.mask(),
                              (tf.range(self._finished.capacity) < self._num_finished)[:, None])
        positions = tf.where(mask)
        steps = self._finished.gather(positions)  # One gather per dtype, not per field.
        raw_observ = steps['observ']
        batch = {'observ': self._normalize(raw_observ), 'action': steps['action']}
        old = {key[len('policy_'):]: value
               for key, value in steps.items() if key.startswith('policy_')}
        reward = steps['reward']
        if self.reward_normalizer is not None:
            self.reward_normalizer.update(reward)
            reward = self.reward_normalizer.transform(reward)
        value = self.network.value(batch['observ'])
        if self.bootstrap_truncated:
            bootstrap = (self.network.value(self._normalize(self._finished_final_observ))
                         * (1.0 - tf.cast(self._finished_terminated, tf.float32)))
        else:  # As the original: a time limit ends the return like a terminal state.
            bootstrap = tf.zeros(self._finished.capacity)
        grid = tf.shape(mask, out_type=tf.int64)
        reward_grid = tf.scatter_nd(positions, reward, grid)
        value_grid = tf.scatter_nd(positions, value, grid)
        advantage = tf.gather_nd(generalized_advantages(
            reward_grid, value_grid, bootstrap, mask, self.discount, self.gae_lambda), positions)
        if self.value_target == 'discounted_return':
            # GAE with lambda 1 is the discounted return minus the value.
            batch['return'] = value + tf.gather_nd(generalized_advantages(
                reward_grid, value_grid, bootstrap, mask, self.discount, 1.0), positions)
        else:
            batch['return'] = advantage + value
        mean, variance = tf.nn.moments(advantage, [0])
        batch['advantage'] = (advantage - mean) / (tf.sqrt(variance) + 1e-8)
        info = {'raw_observ': raw_observ, 'value': value, 'return': batch['return'],
                'action_std': tf.reduce_mean(old['std']) if 'std' in old else tf.constant(0.0)}
        if self.recurrent:
            batch['state'] = steps['state']
            batch, old = self._chunk(batch, old, positions, mask)
        else:  # The episode of each transition, for the KL cutoff per episode.
            batch['segment'] = tf.cast(positions[:, 0], tf.int32)
        return batch, old, info

    def _run_epochs(self, batch, old):
        """update_epochs passes over shuffled minibatches; returns summed statistics."""
        size = tf.shape(batch['advantage'])[0]
        minibatch = size if self.minibatch_size is None else tf.minimum(self.minibatch_size,
                                                                        size)
        per_epoch = (size + minibatch - 1) // minibatch
        order = tf.argsort(self.generator.uniform([self.update_epochs, size]), axis=1)

        def step(index, sums):
            start = (index % per_epoch) * minibatch
            chosen = order[index // per_epoch, start:start + minibatch]
            pick = lambda tensor: tf.gather(tensor, chosen)  # noqa: E731
            stats = self._gradient_step({k: pick(v) for k, v in batch.items()},
                                        {k: pick(v) for k, v in old.items()})
            return index + 1, sums + tf.concat([stats, [1.0]], 0)

        _, sums = tf.while_loop(lambda index, _: index < self.update_epochs * per_epoch,
                                step, (tf.constant(0), tf.zeros(len(STEP_STATS) + 1)),
                                parallel_iterations=1)
        return sums

    def _chunk(self, batch, old, positions, mask):
        """Lays transitions out as chunks [S, chunk_length, ...] of episodes.

        Empty chunks are dropped; 'mask' marks the real steps and 'state' holds the
        recurrent state at each chunk's start.
        """
        rows = self._finished.capacity * self._finished.max_length // self.chunk_length

        def chunks(flat):
            grid = tf.scatter_nd(positions, flat, tf.concat(
                [tf.shape(mask, out_type=tf.int64), tf.shape(flat, out_type=tf.int64)[1:]], 0))
            return tf.reshape(grid, tf.concat([[rows, self.chunk_length], tf.shape(flat)[1:]],
                                              0))

        chunk_mask = tf.reshape(mask, [rows, self.chunk_length])
        keep = chunk_mask[:, 0]  # Real steps come first, so a chunk is empty iff its first is.
        batch = {key: tf.boolean_mask(chunks(value), keep) for key, value in batch.items()}
        batch['state'] = batch['state'][:, 0]
        batch['mask'] = tf.boolean_mask(chunk_mask, keep)
        old = {key: tf.boolean_mask(chunks(value), keep) for key, value in old.items()}
        return batch, old

    def _evaluate(self, batch, old):
        """Per real step: log-ratio, KL(old || new), entropy, value, advantage, return, segment."""
        if self.recurrent:
            policy = self.network.policy_sequence(batch['observ'], batch['state'])
            mask = batch['mask']
            value = tf.reshape(self.network.value(tf.reshape(
                batch['observ'], tf.concat([[-1], tf.shape(batch['observ'])[2:]], 0))),
                tf.shape(mask))
            real = lambda tensor: tf.boolean_mask(tensor, mask)  # noqa: E731
            policy = type(policy).from_parameters(
                {k: real(v) for k, v in policy.parameters().items()})
            old = {key: real(value_) for key, value_ in old.items()}
            # A sequence is a chunk here, as in the original.
            segment = tf.cast(tf.where(mask)[:, 0], tf.int32)
            batch = {key: real(batch[key]) for key in ('action', 'advantage', 'return')}
            batch['segment'] = segment
            value = real(value)
        else:
            policy, value = self.network(batch['observ'])
        old_policy = self._distribution.from_parameters(old)
        return {'log_ratio': policy.log_prob(batch['action'])
                - old_policy.log_prob(batch['action']),
                'kl': old_policy.kl(policy), 'entropy': policy.entropy(), 'value': value,
                'advantage': batch['advantage'], 'return': batch['return'],
                'segment': batch['segment']}

    def _loss(self, batch, old):
        """The minibatch loss and its terms (policy, value, entropy), plus diagnostics."""
        step = self._evaluate(batch, old)
        kl = step['kl']
        policy_loss = self.objective(step['log_ratio'], step['advantage'], kl, step['segment'])
        value_loss = 0.5 * tf.reduce_mean(tf.square(step['value'] - step['return']))
        entropy = tf.reduce_mean(step['entropy'])
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        ratio = tf.exp(step['log_ratio'])
        # CleanRL's estimator of KL(old || new): mean((r - 1) - log r), >= 0 per sample.
        approx_kl = tf.reduce_mean((ratio - 1) - step['log_ratio'])
        clip = getattr(self.objective, 'clip', 0.0)
        clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1) > clip, tf.float32))
        return {'loss': loss, 'policy_loss': policy_loss, 'value_loss': value_loss,
                'entropy': entropy, 'kl': tf.reduce_mean(kl), 'approx_kl': approx_kl,
                'clip_fraction': clip_fraction}

    def _gradient_step(self, batch, old):
        """One optimizer step; skipped (and counted) when the loss is not finite."""
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            terms = self._loss(batch, old)
        terms['gradient_norm'] = apply_if_finite(
            self.optimizer, terms['loss'], tape.gradient(terms['loss'], variables), variables,
            self._learning_rate(), self.max_gradient_norm, self.nonfinite_steps)
        return tf.stack([terms[name] for name in STEP_STATS])

    def _learning_rate(self):
        """The rate of this update: annealed by the env steps before its batch was collected."""
        return linear_decay(self.learning_rate, self.schedule_steps, self.decay_fraction,
                            self.total_steps)


def _reachable(tensor, user):
    """Whether `tensor` can feed ops next to `user`: both eager, or of user's graph or an outer one.

    (end_episode runs inside simulate's tf.cond branch, a graph inside the loop body's.)
    """
    home, graph = getattr(tensor, 'graph', None), getattr(user, 'graph', None)
    if home is None or graph is None:
        return home is graph
    while graph is not None:
        if graph is home:
            return True
        graph = getattr(graph, 'outer_graph', None)
    return False


def _handed_on(handed, agent_indices, method, earlier):
    """The tensors `earlier` handed on for `agent_indices`; a clear error when there are none."""
    if handed is None or not _reachable(handed[0], agent_indices):
        raise RuntimeError(f'PPO.{method} needs PPO.{earlier} of the same step first, in the '
                           'same graph (as simulate calls them)')
    indices, tensors = handed
    if indices is not agent_indices:
        tensors = {key: tf.gather(value, tf.argmax(tf.cast(
            tf.equal(agent_indices[:, None], indices[None, :]), tf.int32), 1))
            for key, value in tensors.items()}
    return tensors


class RecurrentGreedyPolicy(GreedyPolicy):
    """The mean action of a recurrent policy, with its own state per environment."""

    def __init__(self, network, normalize, num_envs):
        super().__init__(network.policy)
        self.network, self.normalize = network, normalize
        self.state = tf.Variable(network.initial_state(num_envs), trainable=False)

    def begin_episode(self, agent_indices):
        """Zeroes the state of the starting episodes."""
        self.state.scatter_nd_update(agent_indices[:, None],
                                     self.network.initial_state(tf.size(agent_indices)))

    def perform(self, agent_indices, observ):
        """The mean action; advances the state."""
        policy, state = self.network.policy_step(self.normalize(observ),
                                                 tf.gather(self.state, agent_indices))
        self.state.scatter_nd_update(agent_indices[:, None], state)
        return policy.mode()

