"""Local sweeps as a user runs them: from their own folder, with relative paths, failing runs."""

import csv
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from agents_gin import sweep, sweep_hparams, sweep_space
from launch.sweep import parse_grid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A user's gin file: a shipped config (found on the configs/ search path) made tiny.
TINY_GIN = """include 'ppo_pendulum.gin'
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


def test_grid_syntax_parses_lists_and_distributions():
    grid = parse_grid(['PPO.discount=[0.9, 0.95]', "make_env.env_id='Pendulum-v1'",
                       'PPO.learning_rate=loguniform(1e-4, 1e-2)', 'PPO.x = randint(1, 4)'])
    assert grid == {'PPO.discount': [0.9, 0.95], 'make_env.env_id': ['Pendulum-v1'],
                    'PPO.learning_rate': sweep_space.Distribution('loguniform', (1e-4, 1e-2)),
                    'PPO.x': sweep_space.Distribution('randint', (1, 4))}
    settings = sweep.grid_settings({'PPO.discount': [0.9, 0.95], 'make_env.env_id': ['P-v1']})
    assert [sweep.setting_name(s) for s in settings] == [
        'PPO.discount=0.9,make_env.env_id=P-v1', 'PPO.discount=0.95,make_env.env_id=P-v1']


@pytest.mark.parametrize('text, message', [
    ('uniform(1, 1)', 'uniform(1, 1): low must be below high'),
    ('loguniform(0, 1)', 'loguniform(0, 1): low must be a number > 0'),
    ('randint(0.5, 3)', 'randint(0.5, 3): both bounds must be integers'),
    ('choice([])', 'choice([]): give a non-empty list'),
    ('normal(0, 1)', "'normal(0, 1)' is neither a Python literal nor a distribution"),
    ('[0.9, 0.95', "'[0.9, 0.95' is neither a Python literal nor a distribution"),
])
def test_bad_values_name_what_is_wrong(text, message):
    with pytest.raises(ValueError) as error:
        sweep_space.parse_values(text)
    assert str(error.value).startswith(message)


def test_a_grid_refuses_a_distribution():
    with pytest.raises(ValueError, match=r"^PPO.lr=uniform\(0.1, 0.2\) is a distribution: a "
                       r'grid needs a list of values; use random search \(--search=random\)'):
        sweep.run_sweep(['ppo_pendulum.gin'], {'PPO.lr': sweep_space.uniform(0.1, 0.2)}, [0],
                        'unused')


def test_random_search_is_seeded_and_stays_in_range():
    space = {'a': sweep_space.loguniform(1e-4, 1e-2), 'b': sweep_space.uniform(-1.0, 1.0),
             'c': sweep_space.randint(3, 6), 'd': sweep_space.choice(['x', 'y']),
             'e': [10, 20]}
    settings = sweep_space.random_settings(space, 400, seed=7)
    assert settings == sweep_space.random_settings(space, 400, seed=7)
    assert settings != sweep_space.random_settings(space, 400, seed=8)
    assert [name for name, _ in settings[0]] == ['a', 'b', 'c', 'd', 'e']
    values = {name: np.array([dict(s)[name] for s in settings]) for name in space}
    assert values['a'].min() >= 1e-4 and values['a'].max() <= 1e-2
    # Log-uniform: each decade holds about half; a uniform draw would put 90% in the upper one.
    assert 0.4 < np.mean(values['a'] < 1e-3) < 0.6
    assert values['b'].min() >= -1 and values['b'].max() <= 1 and abs(values['b'].mean()) < 0.15
    assert set(values['c']) == {3, 4, 5}  # randint excludes its upper bound.
    assert set(values['d']) == {'x', 'y'} and set(values['e']) == {10, 20}
    assert all(float(f'{v:.4g}') == v for v in values['a'])  # Readable folder names.
    # Lists alone: every distinct setting at most once.
    assert sweep_space.random_settings({'e': [10, 20]}, 5) in ([[('e', 10)], [('e', 20)]],
                                                               [[('e', 20)], [('e', 10)]])
    with pytest.raises(ValueError, match=r'^num_samples must be a positive integer, got None$'):
        sweep_space.random_settings(space, None)


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A user's folder outside the repository holding a tiny gin file; the cwd for the test."""
    folder = tmp_path / 'user'
    folder.mkdir()
    (folder / 'tiny.gin').write_text(TINY_GIN)
    monkeypatch.chdir(folder)
    return str(folder)


def test_a_missing_gin_file_fails_before_anything_starts(user_folder):
    with pytest.raises(ValueError) as error:
        sweep.run_sweep(['nope.gin'], {}, [0], 'sweeps/x')
    assert str(error.value) == (f"gin file not found: 'nope.gin' (looked in {user_folder} and "
                                f"{os.path.join(REPO, 'configs')})")
    assert not os.path.exists('sweeps')


def test_sweep_from_the_users_folder_with_relative_paths(user_folder):
    grid = {'PPO.discount': [0.9, 0.95]}
    rows = sweep.run_sweep(['tiny.gin'], grid, [4], 'sweeps/discount', workers=2)
    root = os.path.join(user_folder, 'sweeps', 'discount')
    assert not os.path.exists(os.path.join(REPO, 'sweeps'))
    assert [(row['setting'], row['seed'], row['status']) for row in rows] == [
        ('PPO.discount=0.9', 4, 'finished'), ('PPO.discount=0.95', 4, 'finished')]
    for row in rows:
        run = os.path.join(root, row['setting'], f'seed{row["seed"]}-tiny')
        assert row['run_dir'] == run and row['log'] == os.path.join(root, row['setting'],
                                                                    f'seed{row["seed"]}.log')
        with open(os.path.join(run, 'metrics.jsonl')) as file:
            last = [json.loads(line) for line in file][-1]
        assert row['eval_return'] == last['eval_return'] and row['env_steps'] == 800
        assert row['steps_per_second'] == round(800 / last['seconds'], 1)
        assert row['error'] == '' and row['attempts'] == 1
        command = open(os.path.join(run, 'command')).read()
        # The training process got absolute paths and ran in the user's folder.
        assert f'--gin_file={user_folder}/tiny.gin' in command
        assert f'--logdir={os.path.dirname(run)} --timestamp=seed4 --seed=4 ' in command
        assert f'[sweep] cwd {user_folder}\n' in open(row['log']).read()
        assert f"PPO.discount = {row['setting'].split('=')[1]}" in open(
            os.path.join(run, 'config.gin')).read()
    with open(os.path.join(root, 'summary.csv')) as file:
        saved = list(csv.DictReader(file))
    assert [(r['setting'], r['seed'], r['status'], float(r['eval_return'])) for r in saved] == [
        (r['setting'], str(r['seed']), r['status'], r['eval_return']) for r in rows]
    check_hparams(root, rows)

    # One run lost its completion mark: only it runs again, and it resumes.
    os.remove(os.path.join(rows[1]['run_dir'], 'finished.json'))
    again = sweep.run_sweep(['tiny.gin'], grid, [4], 'sweeps/discount', workers=2)
    assert [row['attempts'] for row in again] == [1, 2]
    assert [row['status'] for row in again] == ['finished'] * 2
    commands = [len(open(os.path.join(row['run_dir'], 'command')).read().splitlines())
                for row in again]
    assert commands == [1, 2]


def test_summary_per_setting_against_numpy():
    returns = {('a=1', 0): -10.0, ('a=1', 1): -20.0, ('a=1', 2): None, ('a=2', 0): -5.5}
    rows = [{'setting': setting, 'seed': seed, 'eval_return': value,
             'status': 'failed' if value is None else 'finished'}
            for (setting, seed), value in returns.items()]
    rows.append({'setting': 'a=2', 'seed': 1, 'eval_return': -1.0, 'status': 'stopped'})
    summary = sweep.summarize(rows)
    assert [(s['setting'], s['seeds'], s['finished'], s['failed'], s['stopped'])
            for s in summary] == [('a=1', 3, 2, 1, 0), ('a=2', 2, 1, 0, 1)]
    assert summary[0]['mean_return'] == np.mean([-10, -20])
    assert summary[0]['median_return'] == np.median([-10, -20])
    assert summary[0]['returns'] == '-10.0 -20.0'
    # A stopped run's return is not a final one: it stays out of the statistics.
    assert summary[1]['mean_return'] == -5.5 and summary[1]['returns'] == '-5.5'
    table = sweep.format_table(rows).splitlines()
    assert table[2] == '| a=1 | 2/3 | 1 | 0 | -15.0 | -15.0 | -10.0 -20.0 |'


def check_hparams(root, rows):
    """The HParams experiment at the root and one session per run, read back with TF."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata

    def summaries(folder):
        (path,) = glob.glob(os.path.join(folder, 'events.out.tfevents.*'))
        return [(event.step, value) for event in tf.compat.v1.train.summary_iterator(path)
                for value in event.summary.value]

    (experiment,) = [v for _, v in summaries(root)]
    experiment = metadata.parse_experiment_plugin_data(experiment.metadata.plugin_data.content)
    assert [h.name for h in experiment.hparam_infos] == ['PPO.discount', 'seed']
    assert [m.name.tag for m in experiment.metric_infos] == [sweep_hparams.RETURN_TAG,
                                                             sweep_hparams.RATE_TAG]
    for row in rows:
        start, final, rate = summaries(os.path.join(row['run_dir'], 'hparams'))
        session = metadata.parse_session_start_info_plugin_data(
            start[1].metadata.plugin_data.content)
        assert {k: v.number_value for k, v in session.hparams.items()} == {
            'PPO.discount': float(row['setting'].split('=')[1]), 'seed': row['seed']}
        assert final[0] == rate[0] == row['env_steps']
        assert final[1].tag == sweep_hparams.RETURN_TAG and rate[1].tag == sweep_hparams.RATE_TAG
        assert final[1].simple_value == pytest.approx(row['eval_return'], rel=1e-6)
        assert rate[1].simple_value == pytest.approx(row['steps_per_second'], rel=1e-6)


def test_failed_runs_are_loud(user_folder):
    """A bad binding: the row, summary.csv and the CLI's exit status and message say so."""
    result = subprocess.run(
        [sys.executable, '-m', 'launch.sweep', '--gin_file=ppo_pendulum.gin',
         '--grid=PPO.discount=[0.9]', '--gin_param=PPO.no_such_thing = 1', '--seeds=3',
         '--root=sweeps/bad'], cwd=user_folder, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 1, result.stderr[-2000:]
    root = os.path.join(user_folder, 'sweeps', 'bad')
    log = os.path.join(root, 'PPO.discount=0.9', 'seed3.log')
    (row,) = sweep.read_csv(os.path.join(root, 'summary.csv'))
    error = row.pop('error')
    assert row == {'setting': 'PPO.discount=0.9', 'seed': '3', 'status': 'failed',
                   'eval_return': '', 'env_steps': '', 'steps_per_second': '', 'attempts': '1',
                   'node': os.uname().nodename,
                   'run_dir': os.path.join(root, 'PPO.discount=0.9', 'seed3-ppo_pendulum'),
                   'log': log}
    lines = error.splitlines()
    assert lines[0] == 'exit code 2:'
    assert lines[-1].startswith("Error: PPO.no_such_thing is not a parameter of PPO.")
    assert not any('oneDNN' in line for line in lines)  # TF's chatter is left out.
    assert f'1 of 1 runs failed:\n- PPO.discount=0.9 seed 3: log {log}\n  exit code 2:' in (
        result.stderr)
    # The bare name of a shipped config was resolved to the shipped file.
    assert f"--gin_file={os.path.join(REPO, 'configs', 'ppo_pendulum.gin')}" in open(log).read()
    # The returned rows hold the same as summary.csv.
    from agents_gin.sweep import Run
    run = Run((('PPO.discount', 0.9),), 3, row['run_dir'], (), (), user_folder)
    assert sweep.read_result(run)['error'] == error


@pytest.mark.parametrize('log, status, error', [
    ('[sweep] attempt 1 on a at t\nx\n[sweep] exit code 1\n'
     '[sweep] attempt 2 on b at t\nI0000 00:00:17.5   26 port.cc:153] oneDNN\nboom\n'
     '[sweep] exit code 3\n', 'failed', 'exit code 3:\nboom'),
    ('[sweep] attempt 1 on b at t\nstep 400\n[sweep] stopped by SystemExit in the sweep\n'
     'Interrupted by SIGTERM\n', 'stopped', ''),
    ('[sweep] attempt 1 on b at t\nstep 400\n', 'failed',
     'no exit status recorded (the process running the sweep died):\nstep 400'),
    ('[sweep] attempt 1 on b at t\n[sweep] exit code 0\n', 'failed',
     'exit code 0 without finished.json:'),
    (None, 'failed', 'never started'),
])
def test_how_a_run_ended_is_read_from_its_log(tmp_path, log, status, error):
    run = sweep.Run((), 0, str(tmp_path / 'default' / 'seed0-x'), (), (), str(tmp_path))
    if log is not None:
        os.makedirs(os.path.dirname(run.log))
        with open(run.log, 'w') as file:
            file.write(log)
    row = sweep.read_result(run)
    assert (row['status'], row['error']) == (status, error)
    assert row['attempts'] == (0 if log is None else log.count('[sweep] attempt'))
    assert row['node'] == ('' if log is None else 'b')


@pytest.mark.parametrize('flags, message', [
    (['--grid=PPO.lr=uniform(1, 0)'],
     "Error: --grid='PPO.lr=uniform(1, 0)': uniform(1, 0): low must be below high"),
    (['--grid=PPO.lr'], "Error: --grid='PPO.lr': write NAME=VALUES, e.g. "
     "'PPO.discount=[0.9, 0.95]'"),
    (['--gin_file=mine.gin'], "Error: gin file not found: 'mine.gin' (looked in {cwd} and "
     "{repo}/configs)"),
    (['--seeds=0,one'], 'Error: --seeds=0,one: seeds must be integers, e.g. --seeds=0,1,2'),
    (['--scheduler=asha'], 'Error: --scheduler and --ray_address need --backend=ray'),
    (['--search=random'], 'Error: num_samples must be a positive integer, got None'),
])
def test_cli_mistakes_exit_2_with_one_line(user_folder, flags, message):
    result = subprocess.run(
        [sys.executable, '-m', 'launch.sweep', '--root=sweeps/x', '--gin_file=tiny.gin']
        + flags, cwd=user_folder, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert (result.returncode, result.stdout) == (2, '')
    assert result.stderr.splitlines()[-1] == message.format(cwd=user_folder, repo=REPO)
    assert not os.path.exists(os.path.join(user_folder, 'sweeps'))
