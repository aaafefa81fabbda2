"""The command palette's batch commands: only those that apply to the selected batch.

Titles and help are our own words, never provider text: the palette renders both as markup.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from batchtui.ui.batch_actions import ACTIONS, BatchActions, applies


class BatchCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        screen = self.screen
        if not isinstance(screen, BatchActions):
            return []
        batch = screen.selected_batch()
        return [(title, help_text, partial(screen.run_action, action))
                for action, (title, help_text) in ACTIONS.items() if applies(action, batch)]

    async def discover(self) -> Hits:
        for title, help_text, command in self._commands():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_text)
