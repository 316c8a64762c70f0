"""speedcopilot: a terminal co-pilot for human-AI ML speedrunning."""

__version__ = "0.1.0"
