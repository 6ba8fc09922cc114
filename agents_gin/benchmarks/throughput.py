"""Environment steps per second: our batch env and simulate loop against gymnasium.

Every variant of one (env, N) cell is measured in the same process, interleaved
over repeats, and the median is reported, because this machine is shared and
noisy. The ceiling is raw in-process stepping: a Python loop over N envs.
"""

import functools
import statistics
import time

import gin
import gymnasium as gym
import numpy as np

from agents_gin.envs import BatchEnv, make_env

# Env steps per graph call of the simulate variants (tests make it small).
STEPS_PER_CALL = 20000


def _timed(step, seconds):
    """Calls `step()` (which returns the env steps it made) for about `seconds`."""
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += step()
    return steps / (time.perf_counter() - start)


def _raw_loop(env_id, num_envs, actions):
    envs = [gym.make(env_id) for _ in range(num_envs)]
    for index, env in enumerate(envs):
        env.reset(seed=index)

    def step():
        for env, action in zip(envs, actions):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return num_envs

    return step, lambda: [env.close() for env in envs]


def _gym_vector(env_id, num_envs, actions, asynchronous):
    kind = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    options = {'context': 'forkserver'} if asynchronous else {}  # fork after TF can deadlock.
    vector = kind([functools.partial(gym.make, env_id)] * num_envs, **options)
    vector.reset(seed=0)

    def step():
        vector.step(actions)  # Resets finished envs itself at the next step.
        return num_envs

    return step, vector.close


def _make_batch(env_id, num_envs, num_workers):
    with gin.unlock_config():
        gin.bind_parameter('make_env.env_id', env_id)
    return BatchEnv([make_env] * num_envs, num_workers=num_workers, seed=0)


def _envpool(env_id, num_envs):
    from agents_gin.envs.envpool_env import EnvPoolBatchEnv

    return EnvPoolBatchEnv(num_envs=num_envs, env_id=env_id, seed=0)


def _batch_env(env_id, num_envs, actions, num_workers, make_batch=_make_batch):
    batch = make_batch(env_id, num_envs, num_workers)
    batch.reset()

    def step():
        _, _, terminated, truncated, _ = batch.step(actions)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            batch.reset(done)
        return num_envs

    return step, batch.close


# The shipped PPO config of each env id, for the `ppo` rows.
SHIPPED_CONFIGS = {'Pendulum-v1': 'ppo_pendulum.gin', 'HalfCheetah-v5': 'ppo_halfcheetah.gin',
                   'Hopper-v5': 'ppo_hopper.gin', 'Walker2d-v5': 'ppo_walker.gin',
                   'Ant-v5': 'ppo_ant.gin', 'Humanoid-v5': 'ppo_humanoid.gin',
                   'Reacher-v5': 'ppo_reacher.gin', 'CartPole-v1': 'ppo_cartpole.gin'}


def _simulate(env_id, num_envs, unused_actions, num_workers, make_batch=_make_batch):
    import tensorflow as tf  # Imported late: the worker variants must not fork TF threads.

    from agents_gin.algorithms.simple_agents import MLPAgent
    from agents_gin.envs.in_graph import InGraphBatchEnv
    from agents_gin.simulate import Simulation

    batch = make_batch(env_id, num_envs, num_workers)
    env = InGraphBatchEnv(batch)
    simulation = Simulation(env, MLPAgent(batch.observation_space, batch.action_space))
    chunk = tf.constant(max(10, STEPS_PER_CALL // num_envs))
    simulation.run(tf.constant(2))

    def step():
        simulation.run(chunk)
        return int(chunk) * num_envs

    return step, batch.close


def _ppo(env_id, num_envs, unused_actions, num_workers):
    """PPO's collection (perform, experience, episode buffers, normalisers) without updates.

    The agent, its network and the env chain (wrappers, episode limit) come from
    the env's shipped config; each batch of finished episodes is discarded where
    an update would train on it.
    """
    import tensorflow as tf

    from agents_gin import gin_config
    from agents_gin.algorithms.ppo import PPO
    from agents_gin.envs.in_graph import InGraphBatchEnv
    from agents_gin.simulate import Simulation

    class CollectOnly(PPO):
        """Empties the batch where PPO would train on it."""

        def _train(self):
            self._discard_batch()
            return tf.constant(False)

    saved = gin.config_str()
    gin.clear_config()
    try:
        gin_config.parse([SHIPPED_CONFIGS[env_id]], [])
        batch = BatchEnv([make_env] * num_envs, num_workers=num_workers, seed=0)
        agent = CollectOnly(batch.observation_space, batch.action_space, num_envs, seed=0,
                            total_steps=gin.query_parameter('Loop.total_steps'))
        simulation = Simulation(InGraphBatchEnv(batch), agent)
        simulation.run(tf.constant(2))  # Traced while the config is bound.
    finally:
        gin.clear_config()
        with gin.unlock_config():
            gin.parse_config(saved)
    chunk = tf.constant(max(10, STEPS_PER_CALL // num_envs))

    def step():
        simulation.run(chunk)
        return int(chunk) * num_envs

    step.simulation = simulation  # For tests.
    return step, batch.close


VARIANTS = {
    'raw loop (ceiling)': lambda env_id, n, a: _raw_loop(env_id, n, a),
    'gym SyncVectorEnv': lambda env_id, n, a: _gym_vector(env_id, n, a, False),
    'gym AsyncVectorEnv': lambda env_id, n, a: _gym_vector(env_id, n, a, True),
    'BatchEnv in-process': lambda env_id, n, a: _batch_env(env_id, n, a, 0),
    'BatchEnv 2 workers': lambda env_id, n, a: _batch_env(env_id, n, a, 2),
    'simulate + MLP (in-process)': lambda env_id, n, a: _simulate(env_id, n, a, 0),
    'ppo collection (in-process)': lambda env_id, n, a: _ppo(env_id, n, a, 0),
    'EnvPool batch': lambda env_id, n, a: _batch_env(
        env_id, n, a, 0, lambda env_id, n, _: _envpool(env_id, n)),
    'simulate + MLP (EnvPool)': lambda env_id, n, a: _simulate(
        env_id, n, a, 0, lambda env_id, n, _: _envpool(env_id, n)),
}
CEILING = 'raw loop (ceiling)'


def select(prefixes):
    """The variant names starting with any of `prefixes` (all when empty); the raw loop first.

    Raises ValueError naming a prefix that matches nothing.
    """
    if not prefixes:
        try:
            import envpool  # noqa: F401
        except ImportError:  # An optional extra: its rows only where it is installed.
            return [name for name in VARIANTS if 'EnvPool' not in name]
        return list(VARIANTS)
    chosen = [CEILING]
    for prefix in prefixes:
        matches = [name for name in VARIANTS if name.startswith(prefix)]
        if not matches:
            raise ValueError(f'--variants: no variant starts with {prefix!r}; variants are '
                             f'{", ".join(map(repr, VARIANTS))}')
        chosen += [name for name in matches if name not in chosen]
    return chosen


def measure(env_id, num_envs, repeats=3, seconds=1.0, variants=None):
    """Returns {variant: median env steps per second} for one env and batch size."""
    variants = variants or list(VARIANTS)
    space = gym.make(env_id).action_space
    space.seed(0)
    actions = np.stack([space.sample() for _ in range(num_envs)])
    built = {name: VARIANTS[name](env_id, num_envs, actions) for name in variants}
    rates = {name: [] for name in variants}
    try:
        for step, _ in built.values():
            _timed(step, 0.2)  # Warm-up: traces graphs, fills caches.
        for _ in range(repeats):
            for name, (step, _) in built.items():
                rates[name].append(_timed(step, seconds))
    finally:
        for _, close in built.values():
            close()
    return {name: statistics.median(values) for name, values in rates.items()}


def rows(env_id, num_envs, rates):
    """The JSON rows of one cell: steps per second and the ratio to the raw loop."""
    ceiling = rates.get(CEILING)
    return [{'env': env_id, 'num_envs': num_envs, 'variant': name,
             'steps_per_second': rate, 'ratio': rate / ceiling if ceiling else None}
            for name, rate in rates.items()]


def report(env_id, num_envs, rates):
    """Formats one table block with ratios to the ceiling and to gymnasium's best."""
    ceiling = rates.get(CEILING)
    gym_best = max(rates.get('gym SyncVectorEnv', 0), rates.get('gym AsyncVectorEnv', 0))
    lines = []
    for name, rate in rates.items():
        to_ceiling = f'{rate / ceiling:5.2f}' if ceiling else '   - '
        to_gym = f'{rate / gym_best:5.2f}' if gym_best else '   - '
        lines.append(f'| {env_id} | {num_envs} | {name} | {rate:,.0f} | {to_ceiling} | {to_gym} |')
    return '\n'.join(lines)


def pivot(result):
    """The README table of a JSON result: one line per (env, N), one column per variant.

    Each cell is steps per second with the ratio to the raw loop of the same run in brackets.
    """
    variants = list(dict.fromkeys(row['variant'] for row in result['rows']))
    cells = {}
    for row in result['rows']:
        ratio = '' if row['ratio'] is None else f" ({row['ratio']:.2f})"
        cells.setdefault((row['env'], row['num_envs']), {})[row['variant']] = (
            f"{row['steps_per_second']:,.0f}{ratio}")
    lines = [f"{result['date']}, {result['machine']}; env steps per second, medians of "
             'interleaved repeats (ratio to the raw loop in brackets).', '',
             '| env | N | ' + ' | '.join(variants) + ' |',
             '|---|---:|' + '---:|' * len(variants)]
    for (env_id, num_envs), row in cells.items():
        lines.append(f'| {env_id} | {num_envs} | '
                     + ' | '.join(row.get(name, '-') for name in variants) + ' |')
    return '\n'.join(lines)


HEADER = ('| env | N | variant | env steps/s (median) | / ceiling | / gym best |\n'
          '|---|---:|---|---:|---:|---:|')
