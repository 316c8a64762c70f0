"""Talking to models: providers (openai, oracle, replay), prompt construction, the ask-and-retry loop."""
