"""The `speedcopilot` command (filled in by the CLI modules)."""


def main() -> int:
    return 0
