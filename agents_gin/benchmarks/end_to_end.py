"""Where a training run's wall-clock goes (collection, updates, evaluation).

The rates are set against the raw stepping rate of the same environments,
measured in the same benchmark.

The loop's `seconds` (metrics.jsonl) covers every chunk, checkpoint and
evaluation up to the record (the loop sets its clock after evaluating, before
writing the record). Evaluation seconds come from metrics.jsonl; update seconds from the
`charts/update_seconds` TensorBoard scalar (one value per logged update) times the
number of updates; collection is the rest (env steps, inference, PPO's storage).
"""

import time

import gymnasium as gym
import numpy as np

from agents_gin import plotting
from agents_gin.benchmarks import suite


def time_split(run_dir):
    """{'env_steps', 'seconds', 'collection', 'updates', 'evaluation'} of one run (seconds)."""
    records = plotting.read_metrics(run_dir)
    last = records[-1]
    evaluation = sum(record.get('eval_seconds', 0.0) for record in records)
    per_update = suite.scalars(f'{run_dir}/train', 'charts/update_seconds')
    updates = float(np.mean(per_update)) * last['updates'] if per_update else 0.0
    return {'env_steps': last['env_steps'], 'seconds': last['seconds'],
            'collection': last['seconds'] - evaluation - updates, 'updates': updates,
            'evaluation': evaluation}


def raw_rate(env_id, num_envs, seconds=3.0, seed=0):
    """Env steps per second of a plain Python loop over `num_envs` envs, random actions."""
    envs = [gym.make(env_id) for _ in range(num_envs)]
    try:
        for index, env in enumerate(envs):
            env.reset(seed=seed + index)
            env.action_space.seed(seed + index)
        actions = [env.action_space.sample() for env in envs]
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for env, action in zip(envs, actions):
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()
            steps += num_envs
        return steps / (time.perf_counter() - start)
    finally:
        for env in envs:
            env.close()


def report(split, raw):
    """Markdown lines: end-to-end rate, its split, and the ratios to the raw rate `raw`."""
    steps, total = split['env_steps'], split['seconds']
    rate = steps / total
    lines = [f'End to end: {rate:,.0f} env steps/s over {steps:,} steps in {total:,.0f} s; '
             f'raw env loop {raw:,.0f} steps/s; ratio {rate / raw:.2f}',
             '| part | seconds | share | env steps/s of that part |', '|---|---:|---:|---:|']
    for part in ('collection', 'updates', 'evaluation'):
        seconds = split[part]
        part_rate = f'{steps / seconds:,.0f}' if part == 'collection' and seconds > 0 else '-'
        lines.append(f'| {part} | {seconds:,.1f} | {seconds / total:.0%} | {part_rate} |')
    return '\n'.join(lines)
