"""Layer 4 (Dagster front end): assets, checks, jobs, schedules, sensors and resources.

Each module ends with a `build_defs(catalog)` (or `defs`) handing its definitions up to
`ecap_ops.definitions`. Nothing here connects to Kafka while definitions load.
"""
