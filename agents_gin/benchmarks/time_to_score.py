"""Time to score: training seconds until the greedy evaluation first reaches a threshold.

For our shipped config and for stable-baselines3 PPO with rl-zoo's tuned
hyperparameters, interleaved over seeds in the same benchmark.

Both sides evaluate 10 greedy episodes every `eval_every` env steps from the same
fixed start states (seeds 10**6 + seed + i), and both clocks exclude evaluation
and process start-up: ours is the loop's `seconds` minus the evaluations up to
it (metrics.jsonl), the peer's a timer paused around its evaluations. A run stops
at its first evaluation at or above the threshold (ours by SIGTERM, which
checkpoints), or at `budget` env steps.
"""

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

from agents_gin.benchmarks import suite

# rl-baselines3-zoo hyperparams/ppo.yml (commit 00128b5d), HalfCheetah-v3 and Hopper-v3
# (tuned; 'normalize: true' is VecNormalize with the algorithm's gamma), on the v5 envs.
_ZOO_POLICY = {'log_std_init': -2, 'ortho_init': False, 'activation_fn': 'relu',
               'net_arch': {'pi': [256, 256], 'vf': [256, 256]}}
ZOO = {
    'HalfCheetah-v5': {'batch_size': 64, 'n_steps': 512, 'gamma': 0.98,
                       'learning_rate': 2.0633e-05, 'ent_coef': 0.000401762, 'clip_range': 0.1,
                       'n_epochs': 20, 'gae_lambda': 0.92, 'max_grad_norm': 0.8,
                       'vf_coef': 0.58096, 'policy_kwargs': _ZOO_POLICY},
    'Hopper-v5': {'batch_size': 32, 'n_steps': 512, 'gamma': 0.999,
                  'learning_rate': 9.80828e-05, 'ent_coef': 0.00229519, 'clip_range': 0.2,
                  'n_epochs': 5, 'gae_lambda': 0.99, 'max_grad_norm': 0.7,
                  'vf_coef': 0.835671, 'policy_kwargs': _ZOO_POLICY},
}
# task: (our config, env id, threshold) -- issue 12 item 3.
TASKS = {'halfcheetah': ('configs/ppo_halfcheetah.gin', 'HalfCheetah-v5', 3000.0),
         'hopper': ('configs/ppo_hopper.gin', 'Hopper-v5', 2000.0)}

_SB3 = r"""
import json, sys, time
import gymnasium as gym, numpy as np, torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec['threads'])
seed, env_id, hyper = spec['seed'], spec['env_id'], dict(spec['hyper'])
policy = dict(hyper.pop('policy_kwargs'))
policy['activation_fn'] = {'relu': torch.nn.ReLU, 'tanh': torch.nn.Tanh}[policy['activation_fn']]
env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=hyper['gamma'])
evaluation = gym.make(env_id)


class Clock(BaseCallback):
    # Evaluates every eval_every steps with the clock paused; stops at the threshold.
    def __init__(self):
        super().__init__()
        self.seconds, self.resumed, self.next_eval, self.reached = 0.0, None, 0, False

    def _on_training_start(self):
        self.resumed = time.perf_counter()
        self.next_eval = spec['eval_every']

    def _on_step(self):
        if self.num_timesteps < self.next_eval:
            return True
        self.seconds += time.perf_counter() - self.resumed
        self.next_eval += spec['eval_every']
        returns = []
        for episode in range(10):
            observ, _ = evaluation.reset(seed=10**6 + seed + episode)
            total, done = 0.0, False
            while not done:
                action, _ = self.model.predict(env.normalize_obs(observ), deterministic=True)
                observ, reward, terminated, truncated, _ = evaluation.step(action)
                total, done = total + reward, terminated or truncated
            returns.append(total)
        record = {'env_steps': self.num_timesteps, 'seconds': self.seconds,
                  'eval_return': float(np.mean(returns))}
        print(json.dumps(record), flush=True)
        self.reached = record['eval_return'] >= spec['threshold']
        self.resumed = time.perf_counter()
        return not self.reached


model = PPO('MlpPolicy', env, policy_kwargs=policy, seed=seed, verbose=0, **hyper)
model.learn(spec['budget'], callback=Clock())
"""


def run_ours(config, seed, threshold, budget, eval_every, logdir):
    """Trains our shipped config until its eval return reaches `threshold`; returns a row."""
    command = [sys.executable, '-m', 'launch.train', f'--gin_file={config}',
               f'--logdir={logdir}', f'--seed={seed}', f'--timestamp=seed{seed}',
               f'--gin_param=Loop.total_steps = {budget}',
               f'--gin_param=Loop.eval_every = {eval_every}',
               f'--gin_param=Loop.checkpoint_every = {budget}']
    run_dir = os.path.join(logdir, f'seed{seed}-{os.path.splitext(os.path.basename(config))[0]}')
    metrics = os.path.join(run_dir, 'metrics.jsonl')
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, f'seed{seed}.log'), 'a') as log:
        process = subprocess.Popen(command, cwd=suite.ROOT, stdout=log,
                                   stderr=subprocess.STDOUT,
                                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
        try:
            while process.poll() is None:
                if any(r['eval_return'] >= threshold for r in _read_records(metrics)):
                    process.send_signal(signal.SIGTERM)  # Checkpoints and exits.
                    break
                time.sleep(0.2)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
    records = _read_records(metrics)
    if code not in (0, 128 + signal.SIGTERM) or not records:
        raise RuntimeError(f'{" ".join(command)} failed (exit code {code}); see {log.name}')
    curve, evaluations = [], 0.0
    for record in records:
        # A record's seconds include every evaluation up to and including its own.
        evaluations += record.get('eval_seconds', 0.0)
        curve.append([record['env_steps'], record['seconds'] - evaluations,
                      record['eval_return']])
    return _row('agents_gin', seed, threshold, budget, curve)


def run_sb3(env_id, seed, threshold, budget, eval_every, threads=2):
    """Trains stable-baselines3 PPO (rl-zoo settings) to `threshold`; returns a row."""
    spec = {'env_id': env_id, 'seed': seed, 'threshold': threshold, 'budget': budget,
            'eval_every': eval_every, 'hyper': ZOO[env_id], 'threads': threads}
    result = subprocess.run([sys.executable, '-c', _SB3, json.dumps(spec)],
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f'stable-baselines3 run failed:\n{result.stderr[-3000:]}')
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{')]
    curve = [[r['env_steps'], r['seconds'], r['eval_return']] for r in records]
    return _row('stable-baselines3', seed, threshold, budget, curve)


def _row(framework, seed, threshold, budget, curve):
    """A result row: seconds and env steps at the first evaluation >= threshold (or None)."""
    reached = [point for point in curve if point[2] >= threshold]
    return {'framework': framework, 'seed': seed, 'threshold': threshold, 'budget': budget,
            'seconds': reached[0][1] if reached else None,
            'env_steps': reached[0][0] if reached else None,
            'curve': curve}


def sb3_available():
    """Whether stable-baselines3 (the `bench` extra) is installed."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def benchmark(seeds, root, tasks=None, budget=1_000_000, eval_every=20_000,
              out_dir=suite.RESULTS, thresholds=None):
    """Interleaves ours and the peer over seeds per task; writes time_to_score.json.

    Args:
      seeds: seeds; per task, ours and the peer alternate seed by seed.
      root: our run directories go in <root>/<start time>/<task>.
      tasks: task names from TASKS (default both).
      budget: env steps at most per run.
      eval_every: env steps between evaluations, on both sides.
      out_dir: where time_to_score.json goes.
      thresholds: {task: return} overriding TASKS' thresholds (tests).

    Returns:
      The rows.
    """
    if not sb3_available():
        raise ImportError("time_to_score needs stable-baselines3: pip install -e '.[bench]'")
    rows = []
    # A fresh folder per benchmark: an old run directory would resume, not be timed anew.
    root = os.path.join(os.path.abspath(root), time.strftime('%Y%m%dT%H%M%S'))
    for task in tasks or TASKS:
        config, env_id, threshold = TASKS[task]
        threshold = (thresholds or {}).get(task, threshold)
        for seed in seeds:
            logdir = os.path.join(root, task)
            for row in (run_ours(config, seed, threshold, budget, eval_every, logdir),
                        run_sb3(env_id, seed, threshold, budget, eval_every)):
                row['task'] = task
                rows.append(row)
                print(f'{task} {row["framework"]} seed {seed}: {row["seconds"]} s, '
                      f'{row["env_steps"]} env steps', flush=True)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'time_to_score.json'), 'w') as file:
        json.dump({'code': suite.code_version(), 'eval_every': eval_every, 'runs': rows},
                  file, indent=1)
    print(table(rows))
    return rows


def table(rows):
    """Markdown: per task, the median seconds to the threshold on each side and the ratio."""
    lines = ['| task | threshold | agents_gin median s (reached/seeds) | '
             'stable-baselines3 median s (reached/seeds) | SB3 / ours |',
             '|---|---:|---:|---:|---:|']
    for task in dict.fromkeys(row['task'] for row in rows):
        medians, cells = [], []
        for framework in ('agents_gin', 'stable-baselines3'):
            runs = [r for r in rows if r['task'] == task and r['framework'] == framework]
            # An unreached threshold counts as never (infinite) for the median.
            median = statistics.median(math.inf if r['seconds'] is None else r['seconds']
                                       for r in runs)
            medians.append(median)
            reached = sum(r['seconds'] is not None for r in runs)
            shown = 'not reached' if math.isinf(median) else f'{median:,.0f}'
            cells.append(f'{shown} ({reached}/{len(runs)})')
        ratio = medians[1] / medians[0] if not math.isinf(medians[0]) else math.nan
        threshold = next(r['threshold'] for r in rows if r['task'] == task)
        lines.append(f'| {task} | {threshold:g} | {cells[0]} | {cells[1]} | {ratio:.2f}x |')
    return '\n'.join(lines)


def _read_records(path):
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip().endswith('}')]
