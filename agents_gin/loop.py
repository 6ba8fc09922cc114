"""Train and eval phases: summaries, progress, checkpoints, signals, non-finite guard.

The train simulation runs in chunks of `chunk_steps` batch steps (one graph call
each; PPO updates happen inside). Between chunks, at a safe point, the loop
writes summaries, evaluates every `eval_every` env steps with the greedy policy
on separate environments, saves a checkpoint every `checkpoint_every` env steps,
and reacts to SIGINT/SIGTERM. Phases follow from the restored env-step count,
so a resumed run continues where it stopped.
"""

import collections
import json
import os
import shutil
import signal
import time

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from agents_gin import checks

# TensorBoard tags of the algorithms' update statistics; others go under losses/.
SUMMARY_TAGS = {
    'penalty': 'charts/kl_penalty', 'learning_rate': 'charts/learning_rate',
    'update_seconds': 'charts/update_seconds', 'batch_transitions': 'charts/batch_transitions',
}


class RunInterrupted(Exception):
    """A signal stopped the run after a checkpoint was saved."""

    def __init__(self, signum, checkpoint):
        self.signum = signum
        super().__init__(f'Stopped by {signal.Signals(signum).name} after saving {checkpoint}')


@gin.configurable(denylist=['run_dir'])
class Loop:
    """Drives training of `agent` with `train_simulation`, evaluating with `eval_simulation`."""

    def __init__(self, run_dir, total_steps=int(1e6), eval_every=int(5e4), chunk_steps=200,
                 checkpoint_every=None, max_checkpoints=5):
        """Holds the phase settings; the agent and simulations come with `run`.

        Args:
          run_dir: where checkpoints, summaries and metrics.jsonl go.
          total_steps: env steps of the whole run; the agents' schedules (learning
            rate annealing) are relative to it.
          eval_every, checkpoint_every: in env steps (checkpoints default to every
            evaluation).
          chunk_steps: batch steps per graph call.
          max_checkpoints: how many recent checkpoints are kept.
        """
        checks.integer('Loop.total_steps', total_steps, 0)
        checks.integer('Loop.eval_every', eval_every, 1)
        checks.integer('Loop.chunk_steps', chunk_steps, 1)
        checks.integer('Loop.checkpoint_every', checkpoint_every, 1, optional=True)
        checks.integer('Loop.max_checkpoints', max_checkpoints, 1)
        self.run_dir = run_dir
        self.total_steps, self.eval_every = int(total_steps), int(eval_every)
        self.chunk_steps = chunk_steps
        self.checkpoint_every = int(checkpoint_every or eval_every)
        self.max_checkpoints = max_checkpoints
        self._signal = None

    def run(self, agent, train_simulation, eval_simulation, eval_seed):
        """Trains `agent` to `total_steps`; returns the last evaluation's mean return.

        Evaluation plays `eval_simulation` (greedy) on envs reseeded with `eval_seed`.
        """
        self.agent = agent
        self.train_simulation, self.eval_simulation = train_simulation, eval_simulation
        self.eval_seed = eval_seed
        self.wall_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(wall_seconds=self.wall_seconds,
                                              **agent.checkpoint_items())
        folder = os.path.join(self.run_dir, 'checkpoints')
        _remove_temporary_checkpoints(folder)
        self.manager = tf.train.CheckpointManager(self.checkpoint, folder, self.max_checkpoints)
        self.writers = {phase: tf.summary.create_file_writer(os.path.join(self.run_dir, phase))
                        for phase in ('train', 'eval')}
        self._restore()
        previous = self._install_signal_handlers()
        try:
            return self._train()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for writer in self.writers.values():
                writer.flush()

    def evaluate(self):
        """Plays one episode on each eval environment with the greedy policy.

        Every evaluation starts from the same initial states (the eval envs are
        reseeded), so evaluations of a run are comparable with each other.
        """
        simulation = self.eval_simulation
        simulation.env.batch_env.reseed(self.eval_seed)
        simulation.force_reset()
        first = {}
        while len(first) < simulation.env.size:
            scores, lengths, indices = simulation.run(self.chunk_steps)
            for score, length, index in zip(scores.numpy(), lengths.numpy(), indices.numpy()):
                first.setdefault(int(index), (float(score), int(length)))
        scores, lengths = zip(*first.values())
        return np.array(scores), np.array(lengths)

    def _train(self):
        agent = self.agent
        steps = int(agent.env_steps)
        next_eval = (steps // self.eval_every + 1) * self.eval_every
        next_checkpoint = (steps // self.checkpoint_every + 1) * self.checkpoint_every
        updates, eval_return, recent = int(agent.updates), self._last_eval_return(), []
        # The last 100 training episodes' returns: the score CleanRL and others publish.
        self._train_returns = collections.deque(maxlen=100)
        start, start_steps, start_wall = time.time(), steps, float(self.wall_seconds)
        operative_written = False
        while steps < self.total_steps:
            scores, lengths, _ = self.train_simulation.run(self.chunk_steps)
            steps = int(agent.env_steps)
            self.wall_seconds.assign(start_wall + time.time() - start)
            self._check_finite(steps)
            with self.writers['train'].as_default(step=steps):
                if len(scores):
                    recent = list(scores.numpy())
                    self._train_returns.extend(recent)
                    tf.summary.scalar('charts/episode_return', np.mean(scores))
                    tf.summary.scalar('charts/episode_length', np.mean(lengths))
                if int(agent.updates) != updates:
                    updates = int(agent.updates)
                    for name, value in agent.stats.items():
                        tf.summary.scalar(SUMMARY_TAGS.get(name, f'losses/{name}'), value)
                    rate = (steps - start_steps) / max(time.time() - start, 1e-9)
                    tf.summary.scalar('charts/env_steps_per_second', rate)
            if not operative_written:
                self._write_operative_config(steps)
                operative_written = True
            if steps >= next_eval or steps >= self.total_steps:
                next_eval += self.eval_every
                eval_return = self._evaluate_and_report(steps, recent, start, start_steps)
            if steps >= next_checkpoint or steps >= self.total_steps:
                next_checkpoint += self.checkpoint_every
                self.manager.save(checkpoint_number=steps)
            if self._signal is not None:
                path = self.manager.save(checkpoint_number=steps)
                raise RunInterrupted(self._signal, path)
        return eval_return

    def _evaluate_and_report(self, steps, recent, start, start_steps):
        eval_start = time.time()
        scores, lengths = self.evaluate()
        eval_seconds = time.time() - eval_start
        with self.writers['eval'].as_default(step=steps):
            tf.summary.scalar('eval/episode_return', np.mean(scores))
            tf.summary.scalar('eval/episode_length', np.mean(lengths))
        seconds = float(self.wall_seconds)
        rate = (steps - start_steps) / max(time.time() - start, 1e-9)
        record = {'env_steps': steps, 'seconds': round(seconds, 2),
                  'train_return': float(np.mean(recent)) if recent else None,
                  'eval_return': float(np.mean(scores)), 'eval_return_std': float(np.std(scores)),
                  'eval_length': float(np.mean(lengths)), 'updates': int(self.agent.updates),
                  'train_return_last100': (float(np.mean(self._train_returns))
                                           if self._train_returns else None),
                  'eval_seconds': round(eval_seconds, 3)}
        with open(os.path.join(self.run_dir, 'metrics.jsonl'), 'a') as file:
            file.write(json.dumps(record) + '\n')
        train = f'{record["train_return"]:9.1f}' if recent else '        -'
        print(f'step {steps:>10,} | {seconds:7.1f} s | {rate:7,.0f} steps/s | '
              f'train return {train} | eval return {np.mean(scores):9.1f} '
              f'± {np.std(scores):6.1f}', flush=True)
        return float(np.mean(scores))

    def _last_eval_return(self):
        """The latest evaluation recorded in this run directory, if any."""
        path = os.path.join(self.run_dir, 'metrics.jsonl')
        if not os.path.exists(path):
            return None
        with open(path) as file:
            lines = [line for line in file if line.strip()]
        return json.loads(lines[-1])['eval_return'] if lines else None

    def _restore(self):
        latest = self.manager.latest_checkpoint
        if latest:
            # A checkpoint that exists but does not load is fatal: never restart silently.
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info('Resumed %s at env step %d.', latest, int(self.agent.env_steps))

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

    def _install_signal_handlers(self):
        def handle(signum, unused_frame):
            if self._signal is not None:
                os._exit(128 + signum)  # Second signal: leave at once.
            self._signal = signum
            logging.warning('%s received: saving at the next safe point; send it again to '
                            'exit at once.', signal.Signals(signum).name)

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
        return previous


def _remove_temporary_checkpoints(folder):
    """Removes `*_temp*` leftovers of a save that a crash interrupted."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if '_temp' in name:
            path = os.path.join(folder, name)
            logging.warning('Removing leftover temporary checkpoint %s', path)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def _markdown(text):
    """Gin text as markdown for TensorBoard's text tab (code lines indented)."""
    return '\n'.join('    ' + line for line in text.splitlines())
