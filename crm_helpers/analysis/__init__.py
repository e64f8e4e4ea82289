"""The analysis stack: generated data, validated bulk loads, fast reads, statistics, frames."""
