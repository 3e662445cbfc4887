"""Layer 2: pure functions over plain data. No I/O, no Dagster, no Kafka client."""
