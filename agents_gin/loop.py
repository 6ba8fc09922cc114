"""The training loop's phases: train, evaluate, checkpoint, react to signals.

The train simulation runs in chunks of `chunk_steps` batch steps (one graph call
each; the agent updates inside and writes its own update statistics, with the
run's train summary writer as the default). Between chunks, at a safe point,
the loop writes episode summaries, evaluates every `eval_every` env steps with
the greedy policy on separate environments, saves a checkpoint every
`checkpoint_every` env steps and at every evaluation, and stops on SIGINT or
SIGTERM after saving. Phases follow from the restored env-step count, so a
resumed run continues where it stopped; logs past the restored checkpoint are
removed first (run_log.py), so that they never repeat a step.
"""

import collections
import os
import time

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from agents_gin import checkpoints, checks, run_log
from agents_gin.algorithms.interface import check_agent
from agents_gin.envs.batch_checks import NonFiniteAction
from agents_gin.progress import Progress
from agents_gin.signals import RunInterrupted, SignalWatcher

# Kept importable from here for existing callers.
_remove_temporary_checkpoints = checkpoints.remove_temporary_checkpoints
__all__ = ['Loop', 'RunInterrupted']


@gin.configurable(denylist=['run_dir'])
class Loop:
    """Drives training of an agent with a train simulation, evaluating with an eval one."""

    def __init__(self, run_dir, total_steps=int(1e6), eval_every=int(5e4), chunk_steps=200,
                 checkpoint_every=None, max_checkpoints=5, progress_every_seconds=30.0):
        """Holds the phase settings; the agent and simulations come with `run`.

        Args:
          run_dir: where checkpoints, summaries and metrics.jsonl go.
          total_steps: env steps of the whole run; the agents' schedules (learning
            rate annealing) are relative to it.
          eval_every, checkpoint_every: in env steps (checkpoints default to every
            evaluation; every evaluation saves one).
          chunk_steps: batch steps per graph call.
          max_checkpoints: how many recent checkpoints are kept.
          progress_every_seconds: interval of the plain progress lines printed
            when the output is not a terminal (a terminal gets a live line).
        """
        checks.integer('Loop.total_steps', total_steps, 0)
        checks.integer('Loop.eval_every', eval_every, 1)
        checks.integer('Loop.chunk_steps', chunk_steps, 1)
        checks.integer('Loop.checkpoint_every', checkpoint_every, 1, optional=True)
        checks.integer('Loop.max_checkpoints', max_checkpoints, 1)
        checks.number('Loop.progress_every_seconds', progress_every_seconds, 0)
        self.run_dir = run_dir
        self.total_steps, self.eval_every = int(total_steps), int(eval_every)
        self.chunk_steps = int(chunk_steps)
        self.checkpoint_every = int(checkpoint_every or eval_every)
        self.max_checkpoints = int(max_checkpoints)
        self.progress_every_seconds = progress_every_seconds

    def run(self, agent, train_simulation, eval_simulation, eval_seed):
        """Trains `agent` to `total_steps`, resuming from the run's latest checkpoint.

        Evaluation plays `eval_simulation` (greedy) on envs reseeded with `eval_seed`.

        Returns:
          A summary of the run: eval_return, eval_return_std and eval_episodes of
          the last evaluation, env_steps, updates, worker_restarts (over all
          processes of the run) and seconds (training wall-clock, all processes).
        """
        self.agent = check_agent(agent)
        self.train_simulation, self.eval_simulation = train_simulation, eval_simulation
        self.eval_seed = eval_seed
        self.wall_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        # Restarts in earlier processes of this run; the batch envs count this one's.
        self.earlier_restarts = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._restarts_saved = 0  # This process's restarts counted in earlier_restarts.
        self.checkpoint = tf.train.Checkpoint(wall_seconds=self.wall_seconds,
                                              worker_restarts=self.earlier_restarts,
                                              **agent.checkpoint_items())
        restored, self.manager = checkpoints.restore_latest(
            self.checkpoint, os.path.join(self.run_dir, 'checkpoints'), self.max_checkpoints)
        steps = int(agent.env_steps)
        if restored:
            logging.info('Resumed %s at env step %d.', restored, steps)
        self.metrics = run_log.MetricsLog(os.path.join(self.run_dir, 'metrics.jsonl'))
        records = self.metrics.truncate(steps)
        self.last_record = records[-1] if records else None
        self.writers = {}
        for phase in ('train', 'eval'):
            folder = os.path.join(self.run_dir, phase)
            existed = bool(os.path.isdir(folder) and os.listdir(folder))
            if existed and run_log.purge_events(folder, steps):
                logging.warning('Removed %s events past env step %d (the restored checkpoint).',
                                folder, steps)
            self.writers[phase] = tf.summary.create_file_writer(folder)
            run_log.mark_start(self.writers[phase], steps, resumed=existed)
        self.progress = Progress(self.total_steps, self.progress_every_seconds)
        try:
            with SignalWatcher() as self.signals:
                return self._train(steps)
        finally:
            self.progress.close()
            for writer in self.writers.values():
                writer.flush()

    def evaluate(self):
        """Plays one greedy episode on each eval environment; returns (scores, lengths).

        Every evaluation starts from the same initial states (the eval envs are
        reseeded), so evaluations of a run are comparable with each other. When
        an eval worker is restarted (its episodes cut short), the evaluation
        runs again from the start, within the eval env's restart budget.
        """
        batch_env = self.eval_simulation.env.batch_env
        while True:
            restarts = _restarts(batch_env)
            scores, lengths = self._play_evaluation()
            if _restarts(batch_env) == restarts:
                return scores, lengths
            logging.warning('An evaluation worker was restarted; evaluating again from the '
                            'start.')

    # --------------------------------------------------------------------------

    def _train(self, steps):
        """The loop over phases from `steps` to total_steps; returns the run's summary."""
        last_evaluated = self.last_record['env_steps'] if self.last_record else 0
        # An evaluation whose record was lost (the process died between saving
        # its checkpoint and writing it) runs again at once: same weights, same
        # eval seeds, same result.
        next_eval = (last_evaluated // self.eval_every + 1) * self.eval_every
        next_checkpoint = (steps // self.checkpoint_every + 1) * self.checkpoint_every
        self._start_time, self._start_wall = time.monotonic(), float(self.wall_seconds)
        self._train_returns = collections.deque(maxlen=100)  # CleanRL's published score.
        self._recent = []
        self.progress.start(steps, self._start_wall)
        first_call = True
        while True:
            done = steps >= self.total_steps
            if steps >= next_eval or (done and last_evaluated != steps):
                self._evaluate_and_record(steps)
                last_evaluated = steps
                next_eval = (steps // self.eval_every + 1) * self.eval_every
                next_checkpoint = (steps // self.checkpoint_every + 1) * self.checkpoint_every
            elif steps >= next_checkpoint or (done and steps and self._latest_step() != steps):
                self._save(steps)
                next_checkpoint = (steps // self.checkpoint_every + 1) * self.checkpoint_every
            if done:
                return self._summary()
            if self.signals.received is not None:
                raise RunInterrupted(self.signals.received, self._save(steps))
            steps = self._train_chunk()
            if first_call:
                self._write_operative_config(steps)
                # The first call traces the graph: steps/s are measured from its end.
                self.progress.start(steps, float(self.wall_seconds))
                first_call = False

    def _train_chunk(self):
        """One graph call of the training simulation; summaries and progress after it."""
        with self.writers['train'].as_default():
            scores, lengths, _ = self._call(self.train_simulation)
        steps = int(self.agent.env_steps)
        self._check_finite(steps)
        self.wall_seconds.assign(self._start_wall + time.monotonic() - self._start_time)
        train_return = None
        if len(scores):
            self._recent = scores.numpy().tolist()
            self._train_returns.extend(self._recent)
            train_return = float(np.mean(self._recent))
        self.progress.update(steps, train_return)
        with self.writers['train'].as_default(step=steps):
            if len(scores):
                tf.summary.scalar('charts/episode_return', train_return)
                tf.summary.scalar('charts/episode_length', np.mean(lengths))
            rate = self.progress.rate()
            if rate is not None:
                tf.summary.scalar('charts/env_steps_per_second', rate)
            tf.summary.scalar('charts/worker_restarts', self._worker_restarts())
        return steps

    def _call(self, simulation):
        """Runs one chunk of `simulation`; an env's own error replaces TensorFlow's wrapper."""
        try:
            return simulation.run(self.chunk_steps)
        except tf.errors.OpError:
            # Weights that an update made non-finite show up as NaN actions the env
            # refuses: report the update, not the env.
            self._check_finite(int(self.agent.env_steps))
            error = getattr(simulation.env.batch_env, 'last_error', None)
            if error is None:
                raise
        if isinstance(error, NonFiniteAction):
            raise FloatingPointError(
                f'The policy acted with non-finite values after update {int(self.agent.updates)} '
                f'near env step {int(self.agent.env_steps):,}: its weights diverged ({error}). '
                f'Nothing was saved from it; the last good checkpoint is '
                f'{self.manager.latest_checkpoint}.')
        latest = self.manager.latest_checkpoint
        resume = (f'The last checkpoint is {latest}; the run resumes from it.' if latest else
                  'No checkpoint was saved yet.')
        if error.args and isinstance(error.args[0], str):
            error.args = (f'{error.args[0]}\n{resume}',) + error.args[1:]
        error.last_checkpoint = latest
        raise error

    def _play_evaluation(self):
        """Plays until every eval env has finished one episode from its reseeded start."""
        simulation = self.eval_simulation
        simulation.env.batch_env.reseed(self.eval_seed)
        simulation.force_reset()
        first = {}
        while len(first) < simulation.env.size:
            scores, lengths, indices = self._call(simulation)
            for score, length, index in zip(scores.numpy(), lengths.numpy(), indices.numpy()):
                first.setdefault(int(index), (float(score), int(length)))
        scores, lengths = zip(*first.values())
        return np.array(scores), np.array(lengths)

    def _evaluate_and_record(self, steps):
        """Evaluates, saves the checkpoint of this step, then logs the evaluation.

        The record comes after the save, so metrics.jsonl never holds an
        evaluation newer than the latest checkpoint.
        """
        eval_start = time.monotonic()
        scores, lengths = self.evaluate()
        eval_seconds = time.monotonic() - eval_start
        self.wall_seconds.assign(self._start_wall + time.monotonic() - self._start_time)
        self._save(steps)
        record = {
            'env_steps': steps, 'seconds': round(float(self.wall_seconds), 2),
            'train_return': float(np.mean(self._recent)) if self._recent else None,
            'train_return_last100': (float(np.mean(self._train_returns))
                                     if self._train_returns else None),
            'eval_return': float(np.mean(scores)), 'eval_return_std': float(np.std(scores)),
            'eval_length': float(np.mean(lengths)), 'eval_episodes': len(scores),
            'eval_seconds': round(eval_seconds, 3), 'updates': int(self.agent.updates),
            'worker_restarts': self._worker_restarts()}
        self.metrics.append(record)
        self.last_record = record
        with self.writers['eval'].as_default(step=steps):
            tf.summary.scalar('eval/episode_return', record['eval_return'])
            tf.summary.scalar('eval/episode_length', record['eval_length'])
        self.writers['eval'].flush()
        self.progress.evaluation(steps, record['eval_return'], record['eval_return_std'])

    def _save(self, steps):
        """Saves the checkpoint of `steps` (once); returns its path."""
        if self._latest_step() == steps:
            return self.manager.latest_checkpoint
        self.earlier_restarts.assign(self._worker_restarts())
        self._restarts_saved = self._current_restarts()
        path = self.manager.save(checkpoint_number=steps)
        self.writers['train'].flush()
        return path

    def _latest_step(self):
        """The env step of the latest checkpoint, None without one."""
        latest = self.manager.latest_checkpoint
        return int(latest.rsplit('-', 1)[-1]) if latest else None

    def _current_restarts(self):
        """Worker restarts of this process, training and evaluation envs together."""
        return sum(_restarts(simulation.env.batch_env)
                   for simulation in (self.train_simulation, self.eval_simulation))

    def _worker_restarts(self):
        """Worker restarts over the whole run, earlier processes included."""
        return int(self.earlier_restarts) + self._current_restarts() - self._restarts_saved

    def _summary(self):
        """What the run ends with (finished.json)."""
        record = self.last_record or {}
        return {'eval_return': record.get('eval_return'),
                'eval_return_std': record.get('eval_return_std'),
                'eval_episodes': record.get('eval_episodes'),
                'env_steps': int(self.agent.env_steps), 'updates': int(self.agent.updates),
                'worker_restarts': self._worker_restarts(),
                'seconds': round(float(self.wall_seconds), 2)}

    def _check_finite(self, steps):
        skipped = int(self.agent.nonfinite_steps)
        if skipped:
            raise FloatingPointError(
                f'Non-finite loss or gradient in update {int(self.agent.updates)} near env step '
                f'{steps:,} ({skipped} gradient steps skipped). Nothing was saved from it; the '
                f'last good checkpoint is {self.manager.latest_checkpoint}.')

    def _write_operative_config(self, steps):
        text = gin.operative_config_str()
        with open(os.path.join(self.run_dir, f'operative_config-{steps}.gin'), 'w') as file:
            file.write(text)
        with self.writers['train'].as_default(step=steps):
            tf.summary.text('gin/operative_config', _markdown(text))


def _restarts(batch_env):
    """Worker restarts of `batch_env` so far (0 for a batch env without workers)."""
    return getattr(batch_env, 'restarts', 0)


def _markdown(text):
    """Gin text as markdown for TensorBoard's text tab (code lines indented)."""
    return '\n'.join('    ' + line for line in text.splitlines())
