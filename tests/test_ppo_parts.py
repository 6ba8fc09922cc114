"""PPO's parts against numpy references."""

import numpy as np
import pytest
import tensorflow as tf

from agents_gin.algorithms.advantages import generalized_advantages
from agents_gin.algorithms.memory import EpisodeMemory
from agents_gin.algorithms.normalize import StreamingNormalize
from agents_gin.algorithms.ppo.objectives import ClippedSurrogate, KLPenalty
from agents_gin.networks.distributions import Categorical, DiagGaussian


def numpy_gae(rewards, values, bootstrap, discount, lambda_):
    """One episode, step by step."""
    advantages, following = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(rewards) else bootstrap
        delta = rewards[t] + discount * next_value - values[t]
        following = delta + discount * lambda_ * following
        advantages[t] = following
    return advantages


def test_gae_with_terminated_truncated_and_padding():
    rng = np.random.default_rng(0)
    lengths, steps = [5, 3, 7], 8
    reward, value = rng.normal(size=(3, steps)), rng.normal(size=(3, steps))
    # Episode 0 terminated (nothing follows), 1 and 2 truncated (bootstrap from V(s_T)).
    bootstrap = np.array([0.0, 0.7, -1.3])
    mask = np.arange(steps)[None] < np.array(lengths)[:, None]
    result = generalized_advantages(
        tf.constant(reward * mask, tf.float32), tf.constant(value * mask, tf.float32),
        tf.constant(bootstrap, tf.float32), tf.constant(mask), 0.99, 0.95).numpy()
    for row, length in enumerate(lengths):
        expected = numpy_gae(reward[row, :length], value[row, :length], bootstrap[row], 0.99,
                             0.95)
        np.testing.assert_allclose(result[row, :length], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(result[row, length:], 0)  # Padding stays zero.


def test_gae_lambda_one_is_discounted_return_minus_value():
    reward, value = np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, 0.5, 0.5]])
    result = generalized_advantages(tf.constant(reward, tf.float32),
                                    tf.constant(value, tf.float32), tf.constant([10.0]),
                                    tf.constant([[True] * 3]), 0.9, 1.0).numpy()
    returns = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 10, 2 + 0.9 * 3 + 0.81 * 10, 3 + 0.9 * 10]
    np.testing.assert_allclose(result[0], np.array(returns) - 0.5, rtol=1e-5)


def test_streaming_normalize_matches_numpy():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 50, 3)]
    normalizer = StreamingNormalize((4,), clip=None)
    for batch in batches:
        normalizer.update(tf.constant(batch, tf.float32))
    data = np.concatenate(batches)
    np.testing.assert_allclose(normalizer.mean.numpy(), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(normalizer.std().numpy(), data.std(0, ddof=1), rtol=1e-5)
    sample = rng.normal(size=(5, 4))
    expected = (sample - data.mean(0)) / (data.std(0, ddof=1) + 1e-8)
    np.testing.assert_allclose(normalizer.transform(sample).numpy(), expected, rtol=1e-4)


def test_streaming_normalize_is_unclipped_identity_until_it_has_statistics():
    normalizer = StreamingNormalize((), center=False, clip=2.0)
    # Raw values are not in units of std: the original never clipped them at +-clip.
    np.testing.assert_allclose(normalizer.transform([0.5, -7.0]).numpy(), [0.5, -7.0])
    normalizer.update(tf.constant([1.0, -1.0]))  # Sample std sqrt(2).
    np.testing.assert_allclose(normalizer.transform([0.5, -7.0]).numpy(),
                               [0.5 / np.sqrt(2), -2.0], rtol=1e-5)


def numpy_gaussian_log_prob(x, mean, std):
    return np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), -1)


def test_gaussian_log_prob_entropy_and_kl():
    rng = np.random.default_rng(2)
    mean0, mean1 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    std0, std1 = rng.uniform(0.1, 2, (6, 3)), rng.uniform(0.1, 2, (6, 3))
    action = rng.normal(size=(6, 3))
    p = DiagGaussian(tf.constant(mean0, tf.float32), tf.constant(std0, tf.float32))
    q = DiagGaussian(tf.constant(mean1, tf.float32), tf.constant(std1, tf.float32))
    np.testing.assert_allclose(p.log_prob(tf.constant(action, tf.float32)).numpy(),
                               numpy_gaussian_log_prob(action, mean0, std0), rtol=1e-4)
    np.testing.assert_allclose(p.entropy().numpy(),
                               np.sum(0.5 * np.log(2 * np.pi * np.e * std0 ** 2), -1), rtol=1e-5)
    kl = np.sum(np.log(std1 / std0) + (std0 ** 2 + (mean0 - mean1) ** 2) / (2 * std1 ** 2)
                - 0.5, -1)
    np.testing.assert_allclose(p.kl(q).numpy(), kl, rtol=1e-4)
    np.testing.assert_allclose(p.kl(p).numpy(), 0, atol=1e-6)


def test_gaussian_log_prob_stays_finite_far_in_the_tail():
    p = DiagGaussian(tf.zeros((1, 2)), tf.fill((1, 2), 1e-3))
    # About -2.5e9 (50 standard deviations of 1e-3, squared), not -inf as log(pdf) would be.
    np.testing.assert_allclose(p.log_prob(tf.fill((1, 2), 50.0)).numpy(),
                               numpy_gaussian_log_prob(np.full((1, 2), 50.0), np.zeros((1, 2)),
                                                       np.full((1, 2), 1e-3)), rtol=1e-6)


def test_categorical_log_prob_entropy_kl_and_samples():
    logits0 = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 80.0]])
    logits1 = np.array([[0.2, -1.0, 3.0], [1.0, 2.0, 3.0]])
    probs0 = np.exp(logits0 - logits0.max(1, keepdims=True))
    probs0 /= probs0.sum(1, keepdims=True)
    probs1 = np.exp(logits1) / np.exp(logits1).sum(1, keepdims=True)
    p, q = Categorical(tf.constant(logits0, tf.float32)), Categorical(tf.constant(logits1,
                                                                                 tf.float32))
    np.testing.assert_allclose(p.log_prob(tf.constant([1, 2])).numpy(),
                               np.log([probs0[0, 1], probs0[1, 2]]), rtol=1e-5)
    entropy = -np.sum(probs0 * np.log(np.maximum(probs0, 1e-30)), 1)
    np.testing.assert_allclose(p.entropy().numpy(), entropy, rtol=1e-4, atol=1e-6)
    kl = np.sum(probs0 * (np.log(np.maximum(probs0, 1e-30)) - np.log(probs1)), 1)
    np.testing.assert_allclose(p.kl(q).numpy(), kl, rtol=1e-4)
    samples = Categorical(tf.constant([[0.0, np.log(3.0)]], tf.float32))
    generator = tf.random.Generator.from_seed(0)
    drawn = [int(samples.sample(generator)[0]) for _ in range(2000)]
    assert abs(np.mean(drawn) - 0.75) < 0.04


def test_kl_penalty_adapts_with_floor():
    objective = KLPenalty(target=0.01, init_penalty=1.0, min_penalty=0.1)
    assert objective.adapt(tf.constant(0.02)).numpy() == pytest.approx(1.5)
    assert objective.adapt(tf.constant(0.01)).numpy() == pytest.approx(1.5)
    for _ in range(20):
        objective.adapt(tf.constant(0.0))
    assert objective.penalty.numpy() == pytest.approx(0.1)  # Floored, not decayed to 0.


def test_objectives_match_their_formulas():
    log_ratio = tf.constant([0.5, -0.5, 0.0])
    advantage = tf.constant([1.0, 1.0, -2.0])
    kl = tf.constant([0.01, 0.03, 0.02])
    ratio = np.exp([0.5, -0.5, 0.0])
    clipped = np.minimum(ratio * [1, 1, -2], np.clip(ratio, 0.8, 1.2) * [1, 1, -2])
    assert ClippedSurrogate(0.2)(log_ratio, advantage, kl).numpy() == pytest.approx(
        -clipped.mean(), rel=1e-5)
    penalty = KLPenalty(target=0.01, cutoff_factor=1.5, cutoff_coef=1000, init_penalty=2.0)
    expected = -(ratio * [1, 1, -2]).mean() + 2.0 * 0.02 + 1000 * (0.02 - 0.015) ** 2
    assert penalty(log_ratio, advantage, kl).numpy() == pytest.approx(expected, rel=1e-5)


def test_kl_cutoff_applies_per_episode_as_in_batch_ppo():
    # Episode 7 (two steps, mean KL 0.04) is past the cutoff 0.02; episode 3 (0.001) is not.
    # The minibatch mean (0.027) is past it too, but the cutoff is a mean over episodes.
    log_ratio, advantage = tf.zeros(3), tf.zeros(3)
    kl = tf.constant([0.03, 0.001, 0.05])
    segments = tf.constant([7, 3, 7])
    penalty = KLPenalty(target=0.01, cutoff_factor=2.0, cutoff_coef=1000, init_penalty=0.5)
    mean_kl = (0.03 + 0.001 + 0.05) / 3
    expected = 0.5 * mean_kl + 1000 * ((0.04 - 0.02) ** 2 + 0.0) / 2
    assert penalty(log_ratio, advantage, kl, segments).numpy() == pytest.approx(expected,
                                                                                rel=1e-5)
    # Below the threshold in every episode: no cutoff at all, though one step is above it.
    kl = tf.constant([0.03, 0.001, 0.0])
    assert penalty(log_ratio, advantage, kl, segments).numpy() == pytest.approx(
        0.5 * 0.031 / 3, rel=1e-5)


def test_memory_holds_episodes_of_varied_lengths():
    template = {'observ': ((2,), tf.float32), 'action': ((), tf.int32)}
    episodes = EpisodeMemory(template, capacity=3, max_length=4)
    for step in range(3):
        rows = tf.constant([0, 2] if step < 2 else [0])
        episodes.append({'observ': tf.fill((len(rows), 2), float(step)),
                         'action': tf.fill((len(rows),), step)}, rows)
    np.testing.assert_array_equal(episodes.length.numpy(), [3, 0, 2])
    np.testing.assert_array_equal(episodes.mask().numpy()[2], [True, True, False, False])
    np.testing.assert_array_equal(episodes.buffers['action'].numpy()[0, :3], [0, 1, 2])
    finished = EpisodeMemory(template, capacity=5, max_length=4)
    finished.copy_rows(episodes, tf.constant([2, 0]), tf.constant([3, 4]))
    np.testing.assert_array_equal(finished.length.numpy(), [0, 0, 0, 2, 3])
    np.testing.assert_array_equal(finished.buffers['observ'].numpy()[4, :3, 0], [0, 1, 2])
    episodes.clear(tf.constant([0]))
    np.testing.assert_array_equal(episodes.length.numpy(), [0, 0, 2])


def test_memory_refuses_an_overlong_episode():
    memory = EpisodeMemory({'x': ((), tf.float32)}, capacity=1, max_length=2)
    for _ in range(2):
        memory.append({'x': tf.zeros(1)}, tf.constant([0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match='longer than the memory holds'):
        memory.append({'x': tf.zeros(1)}, tf.constant([0]))
