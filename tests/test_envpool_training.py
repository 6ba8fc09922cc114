"""EnvPool chosen by a binding trains end to end (skipped without the [envpool] extra)."""

import pytest

from agents_gin import experiment, run_setup
from agents_gin.envs import BatchEnv
from agents_gin.envs.envpool_env import EnvPoolBatchEnv

envpool = pytest.importorskip('envpool')

TINY = ['train.num_envs = 4', 'train.eval_episodes = 2', 'PPO.update_every = 4',
        'PPO.update_epochs = 1', 'Loop.chunk_steps = 100', 'Loop.eval_every = 800',
        'Loop.total_steps = 800', 'FeedForwardGaussian.policy_layers = (8,)',
        'FeedForwardGaussian.value_layers = (8,)']


def test_train_batch_env_binding_builds_envpool_for_training_and_evaluation(tmp_path,
                                                                            monkeypatch):
    built = []
    for cls in (BatchEnv, EnvPoolBatchEnv):
        original = cls.__init__

        def record(self, *args, _original=original, **kwargs):
            built.append(type(self).__name__)
            _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, '__init__', record)
    run_setup.parse_config(['ppo_pendulum.gin'], TINY + [
        'train.batch_env = @EnvPoolBatchEnv', 'EnvPoolBatchEnv.normalize_actions = True',
        'make_env.wrappers = []'])
    summary = experiment.train(str(tmp_path))
    assert built == ['EnvPoolBatchEnv', 'EnvPoolBatchEnv']
    assert summary['env_steps'] == 800 and summary['eval_episodes'] == 2
