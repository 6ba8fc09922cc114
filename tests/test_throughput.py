"""The throughput benchmark: variants chosen by prefix, JSON rows with ratios to the raw loop."""

import json
import os
import subprocess
import sys

import gin
import pytest

from agents_gin.benchmarks import throughput

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rows_hold_ratios_to_the_raw_loop_of_the_same_cell():
    rates = {throughput.CEILING: 2000.0, 'ppo collection (in-process)': 1500.0}
    rows = throughput.rows('Pendulum-v1', 8, rates)
    assert rows == [
        {'env': 'Pendulum-v1', 'num_envs': 8, 'variant': throughput.CEILING,
         'steps_per_second': 2000.0, 'ratio': 1.0},
        {'env': 'Pendulum-v1', 'num_envs': 8, 'variant': 'ppo collection (in-process)',
         'steps_per_second': 1500.0, 'ratio': 0.75}]


def test_pivot_makes_one_line_per_cell_and_one_column_per_variant():
    rows = (throughput.rows('Pendulum-v1', 8, {throughput.CEILING: 2000.0, 'ppo x': 1500.0})
            + throughput.rows('Pendulum-v1', 32, {throughput.CEILING: 4000.0}))
    table = throughput.pivot({'date': '2026-11-29', 'machine': 'vm 2 cores', 'rows': rows})
    lines = table.splitlines()
    assert lines[0].startswith('2026-11-29, vm 2 cores; ')
    assert lines[2] == '| env | N | raw loop (ceiling) | ppo x |'
    assert lines[4:] == ['| Pendulum-v1 | 8 | 2,000 (1.00) | 1,500 (0.75) |',
                         '| Pendulum-v1 | 32 | 4,000 (1.00) | - |']


def test_variants_are_chosen_by_prefix_with_the_raw_loop_first():
    chosen = throughput.select(['ppo', 'simulate + MLP (in'])
    assert chosen == [throughput.CEILING, 'ppo collection (in-process)',
                      'simulate + MLP (in-process)']
    with pytest.raises(ValueError, match=r"--variants: no variant starts with 'pp0'; "
                                         r"variants are 'raw loop \(ceiling\)', "):
        throughput.select(['pp0'])


def test_ppo_variant_collects_with_the_shipped_config_and_never_trains(monkeypatch):
    monkeypatch.setattr(throughput, 'STEPS_PER_CALL', 2 * 500)
    gin.bind_parameter('make_env.env_id', 'CartPole-v1')  # Must survive the variant's config.
    step, close = throughput._ppo('Pendulum-v1', 2, None, 0)
    try:
        # 1,002 batch steps in all: 10 episodes of 200 steps end, past update_every = 8,
        # where PPO would train; the variant discards the batch instead.
        assert step() == 2 * 500
        step()
        assert gin.query_parameter('make_env.env_id') == 'CartPole-v1'
        agent = step.simulation.agent
        assert agent.updates.numpy() == 0 and agent.env_steps.numpy() == 2 * 1002
        assert int(agent._num_finished.numpy()) < agent.update_every
        assert agent.network.policy_mlp.layers[0].kernel.shape[1] == 200  # ppo_base's layers.
    finally:
        close()


def test_benchmark_writes_json_rows_and_refuses_unknown_variants(tmp_path):
    path = tmp_path / 'rows.json'
    command = [sys.executable, '-m', 'launch.benchmark', '--envs=Pendulum-v1', '--sizes=2',
               '--repeats=1', '--seconds=0.05', '--variants=BatchEnv in', f'--json={path}']
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(path.read_text())
    assert set(result) == {'date', 'machine', 'rows'}
    assert [row['variant'] for row in result['rows']] == [throughput.CEILING,
                                                          'BatchEnv in-process']
    for row in result['rows']:
        assert set(row) == {'env', 'num_envs', 'variant', 'steps_per_second', 'ratio'}
        assert row['env'] == 'Pendulum-v1' and row['num_envs'] == 2
        assert row['steps_per_second'] > 0
    raw, batch = result['rows']
    assert raw['ratio'] == 1.0
    assert batch['ratio'] == pytest.approx(batch['steps_per_second'] / raw['steps_per_second'])
    assert '| Pendulum-v1 | 2 | BatchEnv in-process |' in done.stdout
    command[-2] = '--variants=nope'
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "no variant starts with 'nope'" in done.stderr
