"""Deterministic capabilities: signal sources and validation, the enterprise store,
the forecast, policy and the ads adapter. No LLM here: code counts and enforces."""
