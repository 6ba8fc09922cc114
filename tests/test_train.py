"""The launcher end to end: run directory, resume, signals, bad input, shipped configs."""

import glob
import json
import os
import signal
import subprocess
import sys

import gin
import pytest
import tensorflow as tf

from agents_gin import experiment, run_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, 'configs')
TINY = ['train.num_envs = 4', 'train.eval_episodes = 2', 'PPO.update_every = 4',
        'PPO.update_epochs = 2', 'Loop.chunk_steps = 100', 'Loop.eval_every = 800',
        'Loop.total_steps = 1600']


def launch(logdir, *args, gin_file='configs/ppo_pendulum.gin', params=TINY, wait=True):
    command = [sys.executable, '-m', 'launch.train', f'--logdir={logdir}', *args]
    if gin_file:
        command.append(f'--gin_file={gin_file}')
    command += [f'--gin_param={param}' for param in params]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def metrics(run_dir):
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file]


def event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_run_directory_resume_and_reproduction(tmp_path):
    result = launch(tmp_path, '--timestamp=first', '--seed=3')
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = tmp_path / 'first-ppo_pendulum'
    assert result.stdout.splitlines()[0] == f'new run {run_dir}'
    names = set(os.listdir(run_dir))
    assert {'config.gin', 'command', 'checkpoints', 'train', 'eval', 'metrics.jsonl'} <= names
    assert any(name.startswith('operative_config-') for name in names)
    config = (run_dir / 'config.gin').read_text()
    assert config.startswith('import ') and 'train.seed = 3' in config
    assert "make_env.env_id = 'Pendulum-v1'" in config
    assert [m['env_steps'] for m in metrics(run_dir)] == [800, 1600]
    assert {'charts/episode_return', 'losses/policy_loss', 'losses/value_loss',
            'charts/learning_rate', 'gin/operative_config'} <= event_tags(run_dir / 'train')
    assert {'eval/episode_return', 'eval/episode_length'} <= event_tags(run_dir / 'eval')
    assert 'ckpt-1600.index' in os.listdir(run_dir / 'checkpoints')

    # Resume with the saved config and a longer budget: the step count continues.
    result = launch(tmp_path, '--timestamp=first', gin_file=None,
                    params=['Loop.total_steps = 2400'])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == f'resuming {run_dir} at env step 1600'
    assert [m['env_steps'] for m in metrics(run_dir)] == [800, 1600, 2400]
    assert len((run_dir / 'command').read_text().splitlines()) == 2

    # The saved config.gin, given back, reproduces the first run's returns.
    result = launch(tmp_path, '--timestamp=again', gin_file=str(run_dir / 'config.gin'),
                    params=[])
    assert result.returncode == 0, result.stdout + result.stderr
    again = metrics(tmp_path / 'again-config')
    assert [m['eval_return'] for m in again] == [m['eval_return'] for m in metrics(run_dir)][:2]


def test_sigterm_saves_a_loadable_checkpoint(tmp_path):
    process = launch(tmp_path, '--timestamp=stop', wait=False,
                     params=TINY[:-1] + ['Loop.total_steps = 10000000'])
    # Wait for the first evaluation (env step 800): a periodic progress line may come
    # earlier, after the first chunk of 400 steps, when the machine is loaded.
    for line in process.stdout:
        if line.startswith('step') and 'eval return' in line:
            break
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output
    latest = tf.train.latest_checkpoint(tmp_path / 'stop-ppo_pendulum' / 'checkpoints')
    assert f'Stopped by SIGTERM after saving {latest}' in output
    reader = tf.train.load_checkpoint(latest)
    steps = reader.get_tensor('env_steps/.ATTRIBUTES/VARIABLE_VALUE')
    # Saved between graph calls: a whole number of chunks (100 steps x 4 envs).
    assert steps >= 800 and steps % 400 == 0 and latest.endswith(f'ckpt-{steps}')
    assert not glob.glob(str(tmp_path / 'stop-ppo_pendulum' / 'checkpoints' / '*_temp*'))


def test_missing_gin_file_is_named(tmp_path):
    result = launch(tmp_path, gin_file='configs/no_such.gin', params=[])
    assert result.returncode == 2
    assert result.stdout.startswith(f'Error: gin file not found: configs/no_such.gin (looked in '
                                    f'{ROOT}, {CONFIGS})')
    assert os.listdir(tmp_path) == []


def parse(*bindings, config='ppo_pendulum.gin'):
    run_setup.parse_config([os.path.join(CONFIGS, config)], list(bindings), [CONFIGS])


@pytest.mark.parametrize('binding, message', [
    ('PPO.lerning_rate = 0.1',
     r"^PPO.lerning_rate is not a parameter of PPO. Did you mean: learning_rate, "
     r"learning_rate_decay\? Parameters "
     r"of PPO: network, objective, "),
    ('PPOO.learning_rate = 0.1', "No configurable matching 'PPOO'.*Did you mean: PPO"),
])
def test_misspelled_bindings_are_named_with_a_suggestion(binding, message):
    with pytest.raises(run_setup.ConfigError, match=f'(?s){message}'):
        parse(binding)


@pytest.mark.parametrize('bindings, error, message', [
    (["make_env.env_id = 'Pendulm-v1'"], ValueError,
     r"Unknown environment id 'Pendulm-v1' \(bound as make_env.env_id\)"),
    (["make_env.env_id = 'CartPole-v1'", 'make_env.wrappers = []'], ValueError,
     r'FeedForwardGaussian needs a Box action space, but the env has Discrete\(2\); bind the '
     r'network to @FeedForwardCategorical'),
    (["make_env.env_id = 'Blackjack-v1'", 'make_env.wrappers = []',
      'PPO.network = @FeedForwardCategorical'], ValueError,
     r'FeedForwardCategorical takes Box observations, got Tuple.*FlattenObservation'),
    (['make_env.max_episode_steps = 500'], ValueError,
     r'may last 500 steps, more than PPO.max_length = 200'),
])
def test_bad_experiments_fail_before_training(tmp_path, bindings, error, message):
    parse(*bindings, *TINY)
    with pytest.raises(error, match=message):
        experiment.train(str(tmp_path))
    assert not os.path.exists(tmp_path / 'checkpoints')


def test_categorical_network_on_pendulum_is_refused(tmp_path):
    parse(*TINY, config='ppo_cartpole.gin')
    gin.clear_config()
    parse('PPO.network = @FeedForwardCategorical', *TINY)
    with pytest.raises(ValueError, match=r'FeedForwardCategorical needs a Discrete action '
                       r'space.*bind the network to @FeedForwardGaussian'):
        experiment.train(str(tmp_path))


# 20-step episodes: the diverging update lands inside a chunk, so the next
# actions are NaN before the chunk ends; the update is still what is reported.
# One gradient step per update: its loss is finite, only the weights it leaves are not.
@pytest.mark.parametrize('episode', [[], ['make_env.max_episode_steps = 20'], [
    'make_env.max_episode_steps = 20', 'PPO.update_epochs = 1', 'PPO.minibatch_size = 10000']])
def test_non_finite_loss_is_reported_and_not_saved(tmp_path, episode):
    parse(*TINY, 'PPO.learning_rate = 1e30', *episode)
    with pytest.raises(FloatingPointError, match=r'(Non-finite loss or gradient|The policy acted '
                       r'with non-finite values after) (in )?update \d+ near env step [\d,]+.*'
                       r'Nothing was saved'):
        experiment.train(str(tmp_path))
    assert tf.train.latest_checkpoint(tmp_path / 'checkpoints') is None


def test_recurrent_policy_trains_on_chunks_and_evaluates(tmp_path):
    parse(*TINY, 'PPO.network = @RecurrentGaussian', 'PPO.chunk_length = 50',
          'PPO.minibatch_size = 4', 'RecurrentGaussian.policy_layers = (32, 16)',
          'RecurrentGaussian.value_layers = (32,)')
    result = experiment.train(str(tmp_path))
    # Four 200-step episodes per update (PPO.update_every = 4 on 4 envs): updates at 800, 1600.
    assert result['env_steps'] == 1600 and result['updates'] == 2
    assert result['eval_episodes'] == 2
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(tmp_path / 'checkpoints'))
    assert any('gru' in name for name in reader.get_variable_to_shape_map())


def test_chunk_length_must_divide_the_memory():
    parse(*TINY, 'PPO.network = @RecurrentGaussian', 'PPO.chunk_length = 30')
    with pytest.raises(ValueError, match=r'^PPO.chunk_length = 30 is invalid: expected a divisor '
                       r'of PPO.max_length = 200.'):
        experiment.train('/nonexistent')


def test_leftover_temporary_checkpoints_are_removed(tmp_path):
    from agents_gin.loop import _remove_temporary_checkpoints
    folder = tmp_path / 'checkpoints'
    (folder / 'ckpt-800_temp' / 'part-00000-of-00001').mkdir(parents=True)
    (folder / 'ckpt-800.index').write_text('kept')
    _remove_temporary_checkpoints(str(folder))
    assert sorted(os.listdir(folder)) == ['ckpt-800.index']
