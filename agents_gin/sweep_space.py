"""What a sweep ranges over: lists of values (grid) and distributions (random search).

A search space is {binding: values}, where values is a list (every value in a
grid; a uniform choice in random search) or one of the distributions below.
The launcher writes them as text in the grid syntax:

    --grid='PPO.discount=[0.9, 0.95]'                 a list
    --grid='PPO.learning_rate=loguniform(1e-4, 1e-2)' log-uniform in [1e-4, 1e-2]
    --grid='PPO.clip=uniform(0.1, 0.3)'               uniform in [0.1, 0.3]
    --grid='PPO.update_epochs=randint(5, 20)'         an integer in [5, 20)
    --grid="train.algorithm=choice(['@PPO', '@PAAC'])" one of the values

Sampled floats are rounded to 4 significant digits, so that run directories
(named after the values) stay readable; they still lie in [low, high].
"""

import ast
import dataclasses
import itertools
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Distribution:
    """One random-search distribution: kind in uniform, loguniform, randint, choice."""

    kind: str
    args: tuple

    def sample(self, rng):
        """One value drawn with the numpy Generator `rng`."""
        if self.kind == 'choice':
            return self.args[0][int(rng.integers(len(self.args[0])))]
        low, high = self.args
        if self.kind == 'randint':
            return int(rng.integers(low, high))
        if self.kind == 'loguniform':
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            value = rng.uniform(low, high)
        # Rounding may reach a bound, never pass it.
        return min(max(float(f'{value:.4g}'), low), high)

    def __str__(self):
        """The distribution in the grid syntax it was written in."""
        return f'{self.kind}({", ".join(repr(arg) for arg in self.args)})'


def uniform(low, high):
    """A float uniform in [low, high]."""
    return _checked('uniform', low, high)


def loguniform(low, high):
    """A float whose logarithm is uniform: for rates spanning decades. 0 < low < high."""
    if not (isinstance(low, (int, float)) and low > 0):
        raise ValueError(f'loguniform({low!r}, {high!r}): low must be a number > 0')
    return _checked('loguniform', low, high)


def randint(low, high):
    """An integer in [low, high) (high excluded, as Python's range)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise ValueError(f'randint({low!r}, {high!r}): both bounds must be integers')
    return _checked('randint', low, high)


def choice(values):
    """One of `values`, uniformly."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f'choice({values!r}): give a non-empty list, e.g. choice([1, 2])')
    return Distribution('choice', (list(values),))


def _checked(kind, low, high):
    """A Distribution after checking that [low, high] is a numeric, non-empty range."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ValueError(f'{kind}({low!r}, {high!r}): bounds must be numbers')
    if not low < high:
        raise ValueError(f'{kind}({low!r}, {high!r}): low must be below high')
    return Distribution(kind, (low, high))


DISTRIBUTIONS = {'uniform': uniform, 'loguniform': loguniform, 'randint': randint,
                 'choice': choice}


def parse_values(text):
    """A list of values or a Distribution from its text, e.g. '[0.9, 0.95]', 'uniform(0, 1)'."""
    try:
        node = ast.parse(text.strip(), mode='eval').body
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in DISTRIBUTIONS
                    and not node.keywords):
                raise ValueError('unknown distribution')
            args = [ast.literal_eval(arg) for arg in node.args]
            return DISTRIBUTIONS[node.func.id](*args)
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError) as error:
        if isinstance(error, ValueError) and str(error).startswith(tuple(DISTRIBUTIONS)):
            raise  # Already names the distribution and what is wrong.
        raise ValueError(
            f'{text!r} is neither a Python literal nor a distribution; write a list '
            "'[0.9, 0.95]' or one of " + ', '.join(f'{name}(...)' for name in DISTRIBUTIONS)
        ) from error
    return list(value) if isinstance(value, (list, tuple)) else [value]


def grid_settings(space):
    """Every combination of the listed values, as lists of (binding, value), names sorted."""
    for name, values in space.items():
        if isinstance(values, Distribution):
            raise ValueError(f'{name}={values} is a distribution: a grid needs a list of '
                             'values; use random search (--search=random) to sample it')
    names = sorted(space)
    return [list(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]


def random_settings(space, num_samples, seed=0):
    """`num_samples` distinct settings drawn from `space` (lists are uniform choices).

    The same space, count and seed give the same settings, so running a random
    sweep again finds (and skips) its finished runs. A space of lists only has
    fewer distinct settings than that at times; then each is drawn once.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f'num_samples must be a positive integer, got {num_samples!r}')
    names = sorted(space)
    if not any(isinstance(space[name], Distribution) for name in names):
        combinations = grid_settings(space)
        if num_samples >= len(combinations):
            return combinations
    rng = np.random.default_rng(seed)
    settings, seen = [], set()
    for _ in range(100 * num_samples):
        setting = [(name, _draw(space[name], rng)) for name in names]
        key = repr(setting)
        if key not in seen:
            seen.add(key)
            settings.append(setting)
            if len(settings) == num_samples:
                break
    return settings


def _draw(values, rng):
    """One value from a list or a Distribution."""
    if isinstance(values, Distribution):
        return values.sample(rng)
    return values[int(rng.integers(len(values)))]
