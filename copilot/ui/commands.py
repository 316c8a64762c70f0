"""Command palette entries for every action in the key map."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from copilot.ui.keys import KEYMAP, display_key


class CopilotCommands(Provider):
    """Offers each key-map action by its help text; runs it through the app so checks stay in one place."""

    def _entries(self) -> list[tuple[str, str, str]]:
        entries = []
        for item in KEYMAP:
            if item.palette:
                entries.append((item.help, item.action, display_key(item.keys)))
        return entries

    async def discover(self) -> Hits:
        for text, action, keys in self._entries():
            yield DiscoveryHit(text, partial(self._run, action), help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, action, keys in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self._run, action), help=f"key: {keys}")

    async def _run(self, action: str) -> None:
        await self.app.run_action(action)
