"""Published PPO MuJoCo figures at 1M env steps, each beside our number taken its way.

Protocols differ, so each source is compared with the statistic of our runs
that matches its own (issue 13; sources as cited in shared research notes):

- CleanRL `ppo_continuous_action` (docs/benchmark/ppo_continuous_action.md,
  tag pr-424; v4 envs): mean over 3 seeds of the return of the last training
  episodes (stochastic policy) -> our mean over seeds of `train_return_last100`.
- tf-agents PPOClipAgent (tf_agents/examples/ppo/README.md, schulman17 configs;
  v2 envs): mean of 3 runs' evaluation return at 1M -> our mean greedy eval.
- rl-baselines3-zoo benchmark.md (SB3 PPO, tuned, v3 envs): one agent,
  deterministic evaluation -> our median greedy eval.
- Tianshou examples/mujoco (v3 envs): the best, over the first 1M steps, of the
  10-seed average test return -> our best mean-over-seeds evaluation on the curve.
"""

import statistics

import numpy as np

from agents_gin.benchmarks import suite

# source: (protocol, our statistic, {task: return})
PUBLISHED = {
    'CleanRL': ('v4, 3 seeds, last 100 training episodes', 'mean_train',
                {'halfcheetah': 1443, 'hopper': 2383, 'walker2d': 2288}),
    'tf-agents': ('v2, 3 runs, mean evaluation', 'mean_eval',
                  {'halfcheetah': 4239, 'hopper': 2530, 'walker2d': 2971}),
    'rl-zoo': ('v3, one tuned agent, deterministic evaluation', 'median_eval',
               {'halfcheetah': 5819, 'hopper': 2410, 'walker2d': 3479, 'ant': 1327}),
    'Tianshou': ('v3, 10 seeds, best average within 1M', 'best_mean_eval',
                 {'halfcheetah': 5784, 'hopper': 2609, 'walker2d': 3589, 'ant': 3258}),
}
STATISTICS = {'mean_train': 'mean last-100 training return',
              'mean_eval': 'mean greedy eval', 'median_eval': 'median greedy eval',
              'best_mean_eval': 'best mean-over-seeds greedy eval on the curve'}


def our_statistics(runs):
    """Our statistics over the seeds of one task's finished runs."""
    evals = [run['eval_return'] for run in runs]
    trains = [run['train_return_last100'] for run in runs
              if run.get('train_return_last100') is not None]
    # The curve points every run has (same evaluation schedule): the mean over seeds.
    length = min(len(run['curve']) for run in runs)
    curve = np.mean([[point[1] for point in run['curve'][:length]] for run in runs], axis=0)
    return {'mean_train': statistics.mean(trains) if trains else None,
            'mean_eval': statistics.mean(evals), 'median_eval': statistics.median(evals),
            'best_mean_eval': float(curve.max())}


def comparison_table(rows):
    """Markdown: per task our median and range, then each source beside our number."""
    lines = ['| task | seeds | greedy eval at 1M, median (range) | last-100 training return, '
             'median (range) | published (protocol): theirs vs ours taken their way |',
             '|---|---:|---:|---:|---|']
    for task, runs in suite.by_task(rows).items():
        ours = our_statistics(runs)
        evals = [run['eval_return'] for run in runs]
        trains = [run['train_return_last100'] for run in runs
                  if run.get('train_return_last100') is not None]
        cells = []
        for source, (protocol, statistic, figures) in PUBLISHED.items():
            if task in figures and ours[statistic] is not None:
                cells.append(f'{source} ({protocol}): {figures[task]:,} vs {ours[statistic]:,.0f}')
        lines.append(f'| {task} | {len(runs)} | {suite.spread(evals)} | {suite.spread(trains)} | '
                     f'{"; ".join(cells)} |')
    return '\n'.join(lines)
