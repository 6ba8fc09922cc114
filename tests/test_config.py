"""A config means what it says: refused bindings, validated values, unused bindings, includes."""

import glob
import inspect
import os
import subprocess
import sys

import gin
import pytest

from agents_gin import experiment, gin_config, run_setup
from agents_gin.algorithms.optimizers import linear_decay
from agents_gin.checks import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, 'configs')
SHIPPED = sorted(os.path.relpath(path, CONFIGS) for path in glob.glob(f'{CONFIGS}/*.gin'))
TINY = ['train.num_envs = 2', 'train.eval_episodes = 1', 'PPO.update_every = 2',
        'PPO.update_epochs = 1', 'Loop.chunk_steps = 100', 'Loop.eval_every = 400',
        'Loop.total_steps = 400', 'FeedForwardGaussian.policy_layers = (8,)',
        'FeedForwardGaussian.value_layers = (8,)']


def parse(*bindings, config='ppo_pendulum.gin'):
    run_setup.parse_config([config], list(bindings))


def launch(*args, cwd=ROOT):
    command = [sys.executable, '-m', 'launch.train', *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize('binding, message', [
    ('BatchEnv.num_workers = 2', 'BatchEnv.num_workers cannot be bound: the framework passes '
     'it. Set it with train.num_workers instead.'),
    ('BatchEnv.seed = 5', 'BatchEnv.seed cannot be bound: the framework passes it. Set it '
     'with train.seed instead.'),
    ('PPO.total_steps = 10', 'PPO.total_steps cannot be bound: the framework passes it. Set '
     'it with Loop.total_steps instead.'),
    ('StreamingNormalize.clip = 3.0', 'StreamingNormalize.clip cannot be bound: the framework '
     'passes it. Set it with its caller instead.'),
    ('Loop.num_envs = 4', 'Loop.num_envs is not a parameter of Loop. Set it with '
     'train.num_envs instead.'),
    ('Loop.eval_episodes = 4', 'Loop.eval_episodes is not a parameter of Loop. Set it with '
     'train.eval_episodes instead.'),
    ('PPO.clip = 0.1', 'PPO.clip is not a parameter of PPO. Did you mean ClippedSurrogate.clip?'),
    ('PPO.learning_rate_decay_steps = 100', 'PPO.learning_rate_decay_steps is not a parameter '
     'of PPO. It was renamed: bind PPO.learning_rate_decay (a fraction of Loop.total_steps'),
])
def test_bindings_the_framework_sets_are_refused_with_the_binding_to_use(binding, message):
    with pytest.raises(ConfigError) as error:
        parse(binding)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize('binding, message', [
    ("train.num_envs = 'abc'", "train.num_envs = 'abc' is invalid: expected an integer >= 1."),
    ('train.num_envs = -4', 'train.num_envs = -4 is invalid: expected an integer >= 1.'),
    ('train.num_workers = 3', 'train.num_workers = 3 is invalid: expected at most '
     'train.num_envs = 2'),
    ('Loop.chunk_steps = 0', 'Loop.chunk_steps = 0 is invalid: expected an integer >= 1.'),
    ('Loop.total_steps = 2.5', 'Loop.total_steps = 2.5 is invalid: expected an integer >= 0.'),
    ('configure_threads.intra_op = -1',
     'configure_threads.intra_op = -1 is invalid: expected an integer >= 0.'),
    ('make_env.max_episode_steps = 0', 'make_env.max_episode_steps = 0 is invalid: expected an '
     'integer >= 1 or None.'),
    ('make_env.wrappers = 3', 'make_env.wrappers = 3 is invalid: expected a list of wrappers '
     'such as [@gymnasium.wrappers.ClipAction].'),
    ('BatchEnv.max_restarts = -1', 'BatchEnv.max_restarts = -1 is invalid: expected an '
     'integer >= 0.'),
    ('make_env.max_episode_steps = 500', 'Episodes of Pendulum-v1 may last 500 steps, more '
     'than PPO.max_length = 200.'),
])
def test_bad_values_fail_before_anything_is_built(tmp_path, binding, message):
    parse(*TINY, binding)
    with pytest.raises(experiment.BuildError) as error:
        experiment.train(str(tmp_path))
    assert str(error.value).startswith(message)
    assert os.listdir(tmp_path) == []


def test_a_refused_launch_prints_one_error_line_and_leaves_no_run(tmp_path):
    result = launch('--gin_file=ppo_pendulum.gin', f'--logdir={tmp_path}',
                    '--gin_param=train.num_envs = -4', cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert 'Traceback' not in output
    assert result.stdout.strip() == 'Error: train.num_envs = -4 is invalid: expected an ' \
                                    'integer >= 1.'
    assert os.listdir(tmp_path) == []

    target = tmp_path / 'a_file'
    target.write_text('')
    result = launch('--gin_file=ppo_pendulum.gin', f'--logdir={target}')
    assert result.returncode == 2
    assert result.stdout.strip() == (f'Error: --logdir={target} is a file; give a folder for '
                                     'run directories.')


def test_print_config_builds_everything_and_trains_nothing(tmp_path):
    result = launch('--gin_file=ppo_pendulum.gin', '--print_config', f'--logdir={tmp_path}',
                    '--gin_param=FeedForwardCategorical.policy_layers = (8,)',
                    '--gin_param=PPO.learning_rate = 0.002', cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ('Warning: binding FeedForwardCategorical.policy_layers is unused: '
                        'FeedForwardCategorical is never called in this experiment.')
    # Bound values, defaults and the framework's envs all appear.
    for line in ('PPO.learning_rate = 0.002', 'PPO.update_epochs = 10',
                 'PPO.observ_clip = 5.0', "make_env.env_id = 'Pendulum-v1'",
                 'BatchEnv.max_restarts = 0', 'Loop.total_steps = 100000', 'Adam.beta1 = 0.9'):
        assert line in lines, line
    assert os.listdir(tmp_path) == []


def test_unused_bindings_are_named_and_strict_mode_refuses_them(tmp_path, capsys):
    parse(*TINY, 'FeedForwardCategorical.policy_layers = (8,)', 'RMSProp.decay = 0.9')
    assert experiment.train(str(tmp_path), on_built=lambda: False) is None
    assert [binding for binding, _ in gin_config.unused_bindings()] == [
        'FeedForwardCategorical.policy_layers', 'RMSProp.decay']
    run_setup.report_unused_bindings(strict=False)
    assert 'Warning: binding RMSProp.decay is unused: RMSProp is never called in this ' \
           'experiment.' in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r'^2 unused binding\(s\) with --strict_bindings: '
                       r'FeedForwardCategorical.policy_layers, RMSProp.decay.$'):
        run_setup.report_unused_bindings(strict=True)


def test_used_bindings_are_not_reported(tmp_path):
    parse(*TINY)
    experiment.train(str(tmp_path), on_built=lambda: False)
    assert gin_config.unused_bindings() == []


def test_includes_resolve_beside_the_including_file_then_search_paths(tmp_path, monkeypatch):
    experiment_dir, shared = tmp_path / 'exp', tmp_path / 'shared'
    experiment_dir.mkdir()
    shared.mkdir()
    (experiment_dir / 'base.gin').write_text("include 'ppo_pendulum.gin'\n"
                                             'PPO.learning_rate = 0.004\n')
    (experiment_dir / 'exp.gin').write_text("include 'base.gin'\ninclude 'extra.gin'\n")
    (shared / 'extra.gin').write_text('PPO.update_epochs = 3\n')
    monkeypatch.chdir(tmp_path)  # Neither the cwd nor configs/ holds base.gin.
    run_setup.parse_config([str(experiment_dir / 'exp.gin')], [], search_paths=[str(shared)])
    assert gin.query_parameter('PPO.learning_rate') == 0.004
    assert gin.query_parameter('PPO.update_epochs') == 3
    gin.clear_config()
    with pytest.raises(ConfigError, match=r"gin file not found: extra.gin \(looked in "
                       f"{experiment_dir}, {tmp_path}, {CONFIGS}\\)"):
        run_setup.parse_config([str(experiment_dir / 'exp.gin')], [])


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse(config='ppo_halfcheetah.gin')
    assert gin.query_parameter('make_env.env_id') == 'HalfCheetah-v5'


def bound_or_default(configurable, parameter):
    try:
        return gin.query_parameter(f'{configurable}.{parameter}')
    except ValueError:
        target = gin.config._REGISTRY.get_match(configurable).wrapped
        return inspect.signature(target.__init__).parameters[parameter].default


@pytest.mark.parametrize('config', SHIPPED)
def test_every_shipped_config_parses_builds_and_anneals_within_its_run(tmp_path, config):
    code = [line for line in open(os.path.join(CONFIGS, config)).read().splitlines()
            if line.strip() and not line.startswith('#')]
    assert code[0].startswith('import '), f'{config} must start with its imports'
    parse(config=config)
    algorithm = gin.query_parameter('train.algorithm').selector.split('.')[-1]
    total_steps = gin.query_parameter('Loop.total_steps')
    num_envs = gin.query_parameter('train.num_envs')
    rate = bound_or_default(algorithm, 'learning_rate')
    fraction = bound_or_default(algorithm, 'learning_rate_decay')
    # The last update's schedule clock is at most one batch step before the end.
    last = float(linear_decay(rate, total_steps - num_envs, fraction, total_steps))
    assert last > 0, (config, last)
    gin.clear_config()
    parse('train.num_envs = 2', 'train.eval_episodes = 1', config=config)
    assert experiment.train(str(tmp_path), on_built=lambda: False) is None
