import json
import os

from agents_gin import plotting


def write_run(folder, returns):
    os.makedirs(folder)
    with open(os.path.join(folder, 'metrics.jsonl'), 'w') as file:
        for index, value in enumerate(returns):
            file.write(json.dumps({'env_steps': 1000 * (index + 1), 'seconds': 2.0 * (index + 1),
                                   'eval_return': value}) + '\n')


def test_curves_are_drawn_from_run_directories(tmp_path):
    runs = [str(tmp_path / f'2026010{seed}T000000-ppo_pendulum') for seed in range(2)]
    write_run(runs[0], [-1000, -500, -200])
    write_run(runs[1], [-900, -300, -150])
    assert plotting.group_name(runs[0]) == 'ppo_pendulum'
    x, mean, low, high = plotting._band([plotting.read_metrics(run) for run in runs],
                                        'env_steps')
    assert list(x) == [1000, 2000, 3000] and list(mean) == [-950, -400, -175]
    assert list(low) == [-1000, -500, -200] and list(high) == [-900, -300, -150]
    paths = plotting.plot(runs, str(tmp_path / 'curves'), 'Pendulum')
    assert [os.path.basename(path) for path in paths] == ['curves.png', 'curves.svg']
    with open(paths[0], 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    assert '<svg' in open(paths[1]).read()


def test_curves_from_real_tiny_runs(tmp_path):
    import gin

    from agents_gin import experiment, run_setup
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'configs')
    runs = []
    for seed in (0, 1):
        gin.clear_config()
        run_setup.parse_config([os.path.join(configs, 'paac_cartpole.gin')], [
            'train.num_envs = 4', 'train.eval_episodes = 2', 'Loop.total_steps = 2000',
            'Loop.eval_every = 1000', f'train.seed = {seed}'], [configs])
        runs.append(str(tmp_path / f'2026010{seed}T000000-paac_cartpole'))
        experiment.train(runs[-1])
    x, mean, low, high = plotting._band([plotting.read_metrics(run) for run in runs],
                                        'env_steps')
    assert list(x) == [1200, 2000]  # Evaluations after the chunks of 400 steps that pass 1000.
    assert all(low <= mean) and all(mean <= high)
    paths = plotting.plot(runs, str(tmp_path / 'real'))
    assert all(os.path.getsize(path) > 1000 for path in paths)
