"""Learning algorithms (PPO, PAAC) and simple agents for tests and benchmarks."""
