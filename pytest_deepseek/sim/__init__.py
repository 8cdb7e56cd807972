"""A simulated OpenAI-compatible engine: the embedded default endpoint and a source of known truth."""
