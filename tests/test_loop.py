"""The loop in this process with mock environments whose episodes are known exactly.

MockEnv episodes last 5 steps and pay 1 per step, so every return is 5 and the
env steps of each phase are known; the agents are the protocol's simple ones.
"""

import functools
import glob
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.interface import Agent, check_agent, write_scalar
from agents_gin.algorithms.simple_agents import MLPAgent, RandomAgent
from agents_gin.envs import BatchEnv, FaultyEnv, MockEnv
from agents_gin.envs.in_graph import InGraphBatchEnv
from agents_gin.loop import Loop
from agents_gin.simulate import Simulation

NUM_ENVS, EVAL_ENVS = 2, 3


class ProbeAgent(RandomAgent):
    """Writes a summary from inside the graph at every step, as learners do per update."""

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        super().experience(agent_indices, observ, action, reward, terminated, truncated,
                           next_observ)
        write_scalar('losses/probe', tf.reduce_mean(reward), step=self.env_steps)


def run_loop(run_dir, total_steps, agent_class=ProbeAgent, eval_constructor=None,
             eval_workers=0, train_constructor=None, **loop_args):
    """Builds envs, agent and simulations and runs a Loop; returns (summary, agent)."""
    train_env = BatchEnv([train_constructor or functools.partial(MockEnv, lengths=(5,))]
                         * NUM_ENVS)
    eval_env = BatchEnv([eval_constructor or functools.partial(MockEnv, lengths=(5,))]
                        * EVAL_ENVS, num_workers=eval_workers, max_restarts=10)
    try:
        agent = agent_class(train_env.observation_space, train_env.action_space, NUM_ENVS,
                            total_steps=total_steps, seed=0)
        loop = Loop(str(run_dir), total_steps=total_steps, **{
            'eval_every': 20, 'chunk_steps': 5, **loop_args})
        summary = loop.run(agent, Simulation(InGraphBatchEnv(train_env), agent),
                           Simulation(InGraphBatchEnv(eval_env), agent.greedy_policy(EVAL_ENVS)),
                           eval_seed=100)
        return summary, agent
    finally:
        train_env.close()
        eval_env.close()


def records(run_dir):
    with open(os.path.join(run_dir, 'metrics.jsonl')) as file:
        return [json.loads(line) for line in file]


def scalars(folder):
    """Tag -> [(step, value)] over the folder's event files, in file order."""
    result = {}
    for path in sorted(glob.glob(os.path.join(folder, 'events.out.tfevents.*'))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag != 'gin/operative_config':
                    result.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor))))
    return result


def test_phases_records_summaries_and_the_agents_own_statistics(tmp_path):
    summary, agent = run_loop(tmp_path, total_steps=60)
    # 10 env steps per chunk; evaluations at 20, 40, 60 (greedy steps are not counted).
    assert int(agent.env_steps) == 60
    logged = records(tmp_path)
    assert [r['env_steps'] for r in logged] == [20, 40, 60]
    for record in logged:
        assert record['eval_return'] == 5.0 and record['eval_return_std'] == 0.0
        assert record['eval_length'] == 5.0 and record['eval_episodes'] == EVAL_ENVS
        assert record['train_return'] == 5.0 and record['worker_restarts'] == 0
    assert summary == {'eval_return': 5.0, 'eval_return_std': 0.0, 'eval_episodes': EVAL_ENVS,
                       'env_steps': 60, 'updates': 0, 'worker_restarts': 0,
                       'seconds': summary['seconds']}
    assert summary['seconds'] > 0
    train = scalars(tmp_path / 'train')
    # The agent's in-graph summary: one point per batch step, at its env step.
    assert [step for step, _ in train['losses/probe']] == list(range(2, 61, 2))
    assert all(value == 1.0 for _, value in train['losses/probe'])
    assert [step for step, _ in train['charts/episode_return']] == list(range(10, 61, 10))
    assert {value for _, value in train['charts/episode_return']} == {5.0}
    assert [value for _, value in train['charts/worker_restarts']] == [0.0] * 6
    assert scalars(tmp_path / 'eval')['eval/episode_return'] == [(20, 5.0), (40, 5.0),
                                                                  (60, 5.0)]
    names = sorted(os.listdir(tmp_path / 'checkpoints'))
    assert [n for n in names if n.endswith('.index')] == [
        'ckpt-20.index', 'ckpt-40.index', 'ckpt-60.index']


def test_resume_drops_logs_past_the_checkpoint_and_a_torn_line(tmp_path, caplog):
    run_loop(tmp_path, total_steps=40)
    # What a process killed later leaves: records and events past ckpt-40, and a
    # record cut in the middle of its line.
    with open(tmp_path / 'metrics.jsonl', 'a') as file:
        file.write(json.dumps({'env_steps': 60, 'eval_return': -1.0}) + '\n')
        file.write('{"env_steps": 80, "eval_ret')
    writer = tf.summary.create_file_writer(str(tmp_path / 'train'))
    with writer.as_default():
        for step in (50, 60, 70):
            tf.summary.scalar('charts/episode_return', -1.0, step=step)
            tf.summary.scalar('losses/probe', -1.0, step=step)
    writer.close()
    with caplog.at_level(logging.WARNING):
        summary, _ = run_loop(tmp_path, total_steps=80)
    assert 'Dropping unreadable line 4 of' in caplog.text
    assert 'Dropping 1 records of' in caplog.text
    assert [r['env_steps'] for r in records(tmp_path)] == [20, 40, 60, 80]
    assert all(r['eval_return'] == 5.0 for r in records(tmp_path))
    train = scalars(tmp_path / 'train')
    for tag in ('charts/episode_return', 'losses/probe'):
        steps = [step for step, _ in train[tag]]
        assert steps == sorted(set(steps)), tag
        assert -1.0 not in [value for _, value in train[tag]], tag
    assert summary['env_steps'] == 80


def test_a_record_lost_after_its_checkpoint_is_evaluated_again(tmp_path):
    run_loop(tmp_path, total_steps=40)
    kept = records(tmp_path)
    with open(tmp_path / 'metrics.jsonl', 'w') as file:  # Died before writing 40's.
        file.write(json.dumps(kept[0]) + '\n')
    # It runs first, before any training (the final evaluation would hide a miss).
    summary, agent = run_loop(tmp_path, total_steps=60)
    again = records(tmp_path)
    assert [r['env_steps'] for r in again] == [20, 40, 60]
    assert again[1] == {**kept[1], 'seconds': again[1]['seconds'],
                        'eval_seconds': again[1]['eval_seconds'], 'train_return': None,
                        'train_return_last100': None}
    assert summary['eval_return'] == 5.0 and int(agent.env_steps) == 60


def test_an_env_error_replaces_tensorflows_wrapper_and_names_the_checkpoint(tmp_path):
    # Step 15 of each env: in the third chunk (env steps 20-30), after ckpt-20.
    faulty = functools.partial(FaultyEnv, fail_on='step', at=15, mode='raise', lengths=(5,))
    with pytest.raises(ValueError) as raised:
        run_loop(tmp_path, total_steps=60, train_constructor=faulty)
    message = str(raised.value)
    assert message == ('injected failure in step\nThe last checkpoint is '
                       f'{tmp_path}/checkpoints/ckpt-20; the run resumes from it.')
    assert raised.value.last_checkpoint == f'{tmp_path}/checkpoints/ckpt-20'


def test_a_restarted_eval_worker_makes_the_evaluation_run_again(tmp_path, caplog):
    # An evaluation is one call of 5 steps. The eval worker's process dies at its
    # 10th step: at the end of every evaluation but the first one it plays (the
    # rerun on a rebuilt worker plays its steps 1-5, the next evaluation 6-10).
    crashing = functools.partial(FaultyEnv, fail_on='step', at=10, mode='exit', lengths=(5,))
    with caplog.at_level(logging.WARNING):
        summary, _ = run_loop(tmp_path, total_steps=80, eval_constructor=crashing,
                              eval_workers=1)
    assert caplog.text.count('evaluating again from the start') == 3
    logged = records(tmp_path)
    assert [r['worker_restarts'] for r in logged] == [0, 1, 2, 3]
    assert all(r['eval_return'] == 5.0 and r['eval_episodes'] == EVAL_ENVS for r in logged)
    assert summary['worker_restarts'] == 3
    # The count carries over to a resumed run (it is in the checkpoint).
    summary, _ = run_loop(tmp_path, total_steps=100)
    assert records(tmp_path)[-1]['worker_restarts'] == 3 and summary['worker_restarts'] == 3


class NonFiniteAgent(RandomAgent):
    """Reports a skipped non-finite gradient step once 30 env steps are done."""

    def experience(self, agent_indices, observ, action, reward, terminated, truncated,
                   next_observ):
        super().experience(agent_indices, observ, action, reward, terminated, truncated,
                           next_observ)
        self.nonfinite_steps.assign(tf.cast(self.env_steps >= 30, tf.int32))


def test_a_non_finite_update_stops_the_run_before_any_save(tmp_path):
    with pytest.raises(FloatingPointError, match=r'Non-finite loss or gradient in update 0 '
                       r'near env step 30 \(1 gradient steps skipped\). Nothing was saved from '
                       r'it; the last good checkpoint is .*ckpt-20\.'):
        run_loop(tmp_path, total_steps=60, agent_class=NonFiniteAgent)
    assert tf.train.latest_checkpoint(tmp_path / 'checkpoints').endswith('ckpt-20')


def test_simple_agents_follow_the_protocol():
    import gymnasium as gym
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    for agent in (RandomAgent(space, space, 4, total_steps=10, seed=1),
                  MLPAgent(space, space, 4, total_steps=10, seed=1)):
        assert isinstance(agent, Agent) and check_agent(agent) is agent
        assert agent.max_length is None and int(agent.updates) == 0
        assert set(agent.checkpoint_items()) == {'env_steps'}
        greedy = agent.greedy_policy(3)
        action = greedy.perform(tf.range(3), tf.zeros((3, 2)))
        assert action.shape == (3, 2)
        greedy.experience(tf.range(3), None, None, None, None, None, None)
        assert int(agent.env_steps) == 0  # Evaluation never moves the clock.
        agent.experience(tf.range(3), None, None, None, None, None, None)
        assert int(agent.env_steps) == 3


def test_an_incomplete_agent_is_named_with_what_it_lacks():
    class Half:
        begin_episode = perform = experience = end_episode = None
        env_steps = updates = nonfinite_steps = checkpoint_items = greedy_policy = None
    with pytest.raises(TypeError, match=r'^Half does not implement the agent protocol '
                       r'\(agents_gin.algorithms.interface.Agent\): missing max_length$'):
        check_agent(Half())
    with pytest.raises(TypeError, match='missing begin_episode, perform, experience, '
                       'end_episode, env_steps, updates, nonfinite_steps, max_length, '
                       'checkpoint_items, greedy_policy$'):
        check_agent(object())
