"""Saving settings as an edit of the config.toml the user already has, not a rewrite of it.

A file written afresh from the model loses what only the text holds: comments, blank lines, key
order, how a value was spelled. So the existing text is parsed with tomlkit, which keeps all of
that, and changed only where it says something other than the settings being saved:

- a key whose value is unchanged is not touched; a changed one is replaced on its own line,
  keeping the comment after it;
- a missing key is added only if leaving it out would mean something else (a default, or an
  account's poll interval equal to [poll], stays unwritten, as render_settings leaves it out);
- accounts are matched by name: a new one is appended after the last, a removed one's table goes
  with the lines inside it, except the comments after its last key, which sit above the next
  table and stay there.

save_settings checks the result reads back as exactly the settings saved before writing it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, InlineTable, Item, Table, Trivia

from batchtui.core.config import Settings
from batchtui.core.errors import ConfigError


def edit_settings_text(text: str, settings: Settings, source: Path) -> str:
    """`text` (a config.toml that parsed as settings) changed to say `settings`, and nothing else."""
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:  # tomllib accepted it, so this would be a tomlkit limitation
        raise ConfigError(f"{source}: cannot edit this file in place ({exc}); it was left as it is") from None
    # Python mode, not JSON: JSON mode turns an inf price into None.
    want = _plain_data(settings.model_dump(exclude_none=True))
    defaults = _plain_data(Settings().model_dump(exclude_none=True))
    accounts = want.pop("accounts")
    _edit_table(document, want, defaults, keep={"accounts"})
    # An account's interval that is not written follows [poll], so equal to it means "leave out".
    follows_poll = {"poll_active_seconds": settings.poll.active_seconds,
                    "poll_idle_seconds": settings.poll.idle_seconds}
    _edit_accounts(document, accounts, follows_poll)
    return document.as_string()


def _plain_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_data(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


# --- tables ------------------------------------------------------------------------------------


def _edit_table(table: Any, want: dict[str, Any], omitted: Any, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Make `table` say `want`; `omitted` holds what an absent key means (the model's defaults)."""
    omitted = omitted if isinstance(omitted, dict) else {}
    for key in [k for k in table if k not in want and k not in keep]:
        del table[key]
    for key, value in want.items():
        if key in table:
            current = table[key]
            if isinstance(value, dict) and isinstance(current, dict):
                _edit_table(current, value, omitted.get(key))
            elif not _same(_plain(current), value):
                table[key] = value
        elif key not in omitted or not _same(omitted[key], value):
            if isinstance(value, dict):
                value = _new_table(value, omitted.get(key), inline=isinstance(table, InlineTable))
            _add(table, key, value)


def _new_table(want: dict[str, Any], omitted: Any, *, inline: bool) -> Any:
    table = tomlkit.inline_table() if inline else tomlkit.table()
    _edit_table(table, want, omitted)
    return table


def _add(table: Any, key: str, value: Any) -> None:
    # tomlkit adds a key after the table's last line, which may be a comment about the next
    # table; taken off first, those lines end the table again, above that next table.
    trailing = _take_trailing_lines(table) if isinstance(table, Table) else []
    table[key] = value
    _append_lines(value if isinstance(value, Table) else table, trailing)


def _take_trailing_lines(table: Table) -> list[Item]:
    """Remove and return the comments and blank lines after the table's last key or sub-table."""
    body = table.value.body  # the live list; the trailing lines have no key, so no index shifts
    lines: list[Item] = []
    while body and body[-1][0] is None:
        lines.insert(0, body.pop()[1])
    return lines


def _append_lines(table: Any, lines: list[Item]) -> None:
    for line in lines:
        table.append(None, line)


# --- accounts ----------------------------------------------------------------------------------


def _edit_accounts(document: Any, want: list[dict[str, Any]], follows_poll: dict[str, float]) -> None:
    if "accounts" not in document:
        if want:
            tables = tomlkit.aot()
            for account in want:
                tables.append(_new_table(account, follows_poll, inline=False))
            _add(document, "accounts", tables)
        return
    tables = document["accounts"]  # [[accounts]] tables, or an inline array of inline tables
    names = [account["name"] for account in want]
    for index in reversed(range(len(tables))):
        if _plain(tables[index].get("name")) not in names:
            _remove_account(document, tables, index)
    for account in want:
        index = _index_of(tables, account["name"])
        if index is not None:
            _edit_table(tables[index], account, follows_poll)
        else:
            _append_account(tables, account, follows_poll)
    # Settings keep accounts in order; edits above only remove and append, so this moves nothing
    # unless the caller reordered them.
    for position, name in enumerate(names):
        index = _index_of(tables, name)
        if index != position:
            tables.insert(position, tables.pop(index))
    if not len(tables):
        del document["accounts"]  # an empty array of tables would be written as `accounts = []`


def _index_of(tables: Any, name: str) -> int | None:
    for index, table in enumerate(tables):
        if _plain(table.get("name")) == name:
            return index
    return None


def _append_account(tables: Any, account: dict[str, Any], follows_poll: dict[str, float]) -> None:
    if not isinstance(tables, AoT):
        tables.append(_new_table(account, follows_poll, inline=True))
        return
    trailing = _take_trailing_lines(tables[-1]) if len(tables) else []
    table = _new_table(account, follows_poll, inline=False)
    table.trivia.indent = "\n"  # a blank line above its header, as render_settings writes
    tables.append(table)
    _append_lines(table, trailing)


def _remove_account(document: Any, tables: Any, index: int) -> None:
    trailing = _take_trailing_lines(tables[index]) if isinstance(tables, AoT) else []
    del tables[index]
    if not trailing:
        return
    # Those lines were above the next table: they stay where they were.
    if index > 0:
        _append_lines(tables[index - 1], trailing)
    elif len(tables):
        _prefix_header(tables[0].trivia, trailing)
    elif (header := _header_trivia(_item_after(document, tables))) is not None:
        _prefix_header(header, trailing)
    else:
        _append_lines(document, trailing)  # no header follows: they were at the end of the file


def _prefix_header(trivia: Trivia, lines: list[Item]) -> None:
    trivia.indent = "".join(line.as_string() for line in lines) + trivia.indent


def _header_trivia(item: Any) -> Trivia | None:
    """The trivia of the first header `item` is written with ([prices.x] for a bare [prices])."""
    if isinstance(item, AoT):
        return _header_trivia(item[0]) if len(item) else None
    if not isinstance(item, Table):
        return None
    if not item.is_super_table():
        return item.trivia
    for _key, child in item.value.body:
        if isinstance(child, Table | AoT):
            return _header_trivia(child)
    return None


def _item_after(document: Any, item: Any) -> Any:
    found = False
    for _key, candidate in document.body:
        if found:
            return candidate
        found = candidate is item
    return None


# --- values ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.unwrap() if isinstance(value, Item) else value


def _same(a: Any, b: Any) -> bool:
    """Equal as TOML values: 10 and 10.0 are (a file's `10` need not become `10.0`), 1 and true are not."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            _same(a[key], b[key]) for key in a
        )
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
