"""Actions that both front ends (Dagster and the CLI) call: gateway reads, core logic,
gateway writes. One action is one function here."""
