"""Command-line entry points (absl apps); they define flags and nothing configurable."""
