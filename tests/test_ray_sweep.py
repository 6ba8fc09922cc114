"""Sweeps on a real two-node Ray cluster started on this machine (ray.cluster_utils.Cluster).

Needs the optional extra (pip install -e '.[ray]'); skipped without it. About a
minute: starting the nodes takes ~10 s and every trial is a tiny training process.
"""

import os

import pytest

from agents_gin import sweep, sweep_ray

ray = pytest.importorskip('ray', reason="Ray is an optional extra: pip install -e '.[ray]'")
pytestmark = pytest.mark.ray  # Deselect with -m 'not ray' for a quicker suite.

TINY_GIN = """import flaky_envs
include 'ppo_pendulum.gin'
train.num_envs = 2
train.eval_episodes = 1
PPO.update_every = 2
PPO.update_epochs = 1
Loop.chunk_steps = 100
Loop.eval_every = 400
Loop.total_steps = 800
make_env.max_episode_steps = 100
PPO.max_length = 100
"""

# Environments that kill their training process, as a lost node or an OOM kill would.
FLAKY_ENVS = """import os

import gymnasium as gym
from gymnasium.envs.classic_control.pendulum import PendulumEnv

MARKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'crashed-once')
STEPS = [0]


class CrashOncePendulum(PendulumEnv):
    def step(self, action):
        STEPS[0] += 1
        if STEPS[0] == 650 and not os.path.exists(MARKER):
            open(MARKER, 'w').close()
            os._exit(3)
        return super().step(action)


class AlwaysCrashPendulum(PendulumEnv):
    def step(self, action):
        os._exit(3)


gym.register('CrashOncePendulum-v0', entry_point=CrashOncePendulum)
gym.register('AlwaysCrashPendulum-v0', entry_point=AlwaysCrashPendulum)
"""


@pytest.fixture(scope='module')
def cluster():
    """A head and a worker node, one CPU each, so two trials run at once, one per node."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={
        'num_cpus': 1, 'object_store_memory': 100 * 2**20, 'include_dashboard': False})
    nodes.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    folder = tmp_path / 'user'
    folder.mkdir()
    (folder / 'tiny.gin').write_text(TINY_GIN)
    (folder / 'flaky_envs.py').write_text(FLAKY_ENVS)
    monkeypatch.chdir(folder)
    return str(folder)


def attempt_nodes(row):
    """The node id of every attempt in a run's log."""
    with open(row['log']) as file:
        return [line.split()[-3] for line in file if line.startswith(sweep.ATTEMPT)]


def test_trials_on_both_nodes_retried_by_ray_never_locally(cluster, user_folder):
    envs = ['CrashOncePendulum-v0', 'AlwaysCrashPendulum-v0', 'NoSuchEnv-v0']
    rows = sweep.run_sweep(['tiny.gin'], {'make_env.env_id': envs}, [0], 'sweeps/cluster',
                           backend='ray', ray_options=sweep_ray.RayOptions(
                               address=cluster.address, max_failures=1))
    by_env = {row['setting'].split('=')[1]: row for row in rows}
    root = os.path.join(user_folder, 'sweeps', 'cluster')
    for env, row in by_env.items():
        assert row['run_dir'] == os.path.join(root, f'make_env.env_id={env}', 'seed0-tiny')
    node_ids = {node.node_id for node in cluster.list_all_nodes()}
    assert len(node_ids) == 2
    # Two one-CPU nodes and three trials: both nodes ran trials.
    assert {node for row in rows for node in attempt_nodes(row)} == node_ids
    assert all(row['node'].split()[-1] in node_ids for row in rows)

    # A lost training process: Ray retried the trial, which resumed the run and finished.
    crashed_once = by_env['CrashOncePendulum-v0']
    assert (crashed_once['status'], crashed_once['attempts']) == ('finished', 2)
    assert crashed_once['env_steps'] == 800
    log = open(crashed_once['log']).read()
    assert '[sweep] exit code 3\n' in log and log.endswith('[sweep] exit code 0\n')
    assert len(open(os.path.join(crashed_once['run_dir'], 'command')).readlines()) == 2
    # Failing every time: 1 + max_failures attempts, all by Ray, then reported.
    always = by_env['AlwaysCrashPendulum-v0']
    assert (always['status'], always['attempts']) == ('failed', 2)
    assert always['error'].startswith('exit code 3:')
    # A config error fails the same way every time: reported without a retry.
    unknown = by_env['NoSuchEnv-v0']
    assert (unknown['status'], unknown['attempts']) == ('failed', 1)
    assert unknown['error'].splitlines()[0] == 'exit code 2:'
    assert "Unknown environment id 'NoSuchEnv-v0'" in unknown['error']


def test_asha_stops_the_trailing_trial_early(cluster, user_folder):
    # Pendulum costs at least 0 per step: 20-step episodes return more than 100-step ones.
    rows = sweep.run_sweep(['tiny.gin'], {'make_env.max_episode_steps': [20, 100]}, [0],
                           'sweeps/asha', extra_params=['Loop.total_steps = 1200'],
                           backend='ray', ray_options=sweep_ray.RayOptions(
                               address=cluster.address, scheduler='asha', max_concurrent=1))
    good, bad = rows
    assert (good['status'], good['env_steps']) == ('finished', 1200)
    # The second trial reached the first rung (one evaluation) below the first: stopped there.
    assert bad['status'] == 'stopped' and bad['env_steps'] < 1200
    assert bad['eval_return'] < good['eval_return']
    assert not os.path.exists(os.path.join(bad['run_dir'], 'finished.json'))
    with open(bad['log']) as file:
        assert '\n[sweep] stopped by ' in file.read()
