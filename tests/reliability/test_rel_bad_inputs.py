"""Issue 6, item 5: one table of bad inputs, each with the clear message it must give.

Every row feeds one bad thing through the engine (a config or theme file, a batch JSONL, a
result file, a provider's answer) and names what the user must read: the file and line, the
field, the host. Rows that bring a bad input to `submit` also prove nothing was sent (the
simulator counts every POST); rows with a broken provider prove the key went to no other
host. A handful run through the CLI as a subprocess, for the exit code and stderr.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.responses import JSONResponse, RedirectResponse, Response

from batchtui.cli import render
from batchtui.core.accounts import Account
from batchtui.core.config import Settings, load_settings
from batchtui.core.engine import Engine
from batchtui.core.errors import BatchtuiError
from batchtui.core.fetch import fetch_results
from batchtui.core.ledger import Ledger
from batchtui.core.models import Provider
from batchtui.core.paths import Paths, ensure_private_dir
from batchtui.core.pricing import PriceTable
from batchtui.core.providers.base import Limits
from batchtui.core.submit import submit_file
from batchtui.sim import Simulator
from reliability.clirun import Cli, text
from reliability.fake_provider import FakeProvider, openai_batch
from reliability.figures import record
from reliability.harness import RecordedSleep, posts, scenario_engine
from support.loopback import serve_on_loopback

KEY = "sk-bad-input-test-key-0123456789"
FAKE_BASE = {"openai": "https://api.openai.test/v1", "anthropic": "https://api.anthropic.test",
             "gemini": "https://gemini.test"}
ELSEWHERE = "https://elsewhere.example"
DEEP = 100_000  # past the json module's recursion limit
TRIED: list[str] = []


class Ctx:
    """What a row may use: a folder, the demo simulator with its engine, a fake provider."""

    def __init__(self, tmp: Path, sim: Simulator, engine: Engine, fake: FakeProvider, fake_engine: Engine):
        self.tmp, self.sim, self.engine, self.fake, self.fake_engine = tmp, sim, engine, fake, fake_engine
        self.paths = Paths(config_dir=tmp / "cfg", data_dir=tmp / "data")

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def config(self, content: str) -> Path:
        ensure_private_dir(self.paths.config_dir)
        self.paths.config_file.write_text(content)
        return self.paths.config_file


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Ctx], Awaitable[str]]  # returns the text the user reads
    expect: tuple[str, ...]  # each must appear in that text ({tmp} is the row's folder)
    sends_nothing: bool = True  # no POST reached the simulator
    xfail: str | None = None  # a known bug in code this task does not own (reported)
    absent: tuple[str, ...] = field(default=())  # must not appear (an echoed secret, say)


async def refused(action: Awaitable) -> str:
    """The error text the user sees when `action` refuses a bad input (it must refuse)."""
    try:
        await action
    except BatchtuiError as exc:
        return str(exc)
    raise AssertionError("the bad input was accepted")


async def sync_refused(action: Callable[[], object]) -> str:
    try:
        action()
    except BatchtuiError as exc:
        return str(exc)
    raise AssertionError("the bad input was accepted")


# -- batch input lines -----------------------------------------------------------------------


def oa(i: int, *, url: str = "/v1/chat/completions", model: str = "gpt-5.4-mini", cid: str | None = None) -> str:
    return json.dumps({"custom_id": cid or f"q-{i}", "method": "POST", "url": url,
                       "body": {"model": model, "messages": [{"role": "user", "content": str(i)}]}})


def an(i: int, cid: str | None = None) -> str:
    return json.dumps({"custom_id": cid or f"t-{i}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": str(i)}]}})


def gm(i: int) -> str:
    return json.dumps({"key": f"g-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": str(i)}]}]}})


def submit(account: str, lines: list[str] | bytes, *, model: str | None = None, limits: Limits | None = None):
    async def run(ctx: Ctx) -> str:
        data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        path = ctx.file("in.jsonl", data)
        acct = ctx.engine.settings.account(account)
        if limits is not None:
            # Lowered on this one client: the real limits are 50k-1M requests and 200 MB-2 GB.
            ctx.engine.client(acct).limits = limits
        return await refused(submit_file(ctx.engine, acct, path, model=model))
    return run


async def retry_with_input(ctx: Ctx) -> str:
    """`retry --input FILE` whose only line is garbage nested 100,000 deep: refused, named."""
    from batchtui.core.retry import plan_retry

    acct = ctx.engine.settings.account("gemini-lab")
    batch = next(b for b in await ctx.engine.list_account(acct) if b.result_files and b.counts.failed)
    path = ctx.file("originals.jsonl", "[" * DEEP + "]" * DEEP + "\n")
    return await refused(plan_retry(ctx.engine, acct, batch, input_path=path))


def submit_missing_file(ctx: Ctx) -> Awaitable[str]:
    return refused(submit_file(ctx.engine, ctx.engine.settings.account("acme-prod"), ctx.tmp / "nowhere.jsonl"))


# -- config and theme files ---------------------------------------------------------------------


def config(content: str):
    async def run(ctx: Ctx) -> str:
        ctx.config(content)
        return await sync_refused(lambda: load_settings(ctx.paths))
    return run


def theme(content: str):
    async def run(ctx: Ctx) -> str:
        from batchtui.ui.theming import load_theme_file  # importable without an app

        path = ctx.file("mine.toml", content)
        return await sync_refused(lambda: load_theme_file(path))
    return run


GOOD_THEME = 'name = "mine"\nprimary = "#58a6ff"\n'


# -- result files (through fetch, shown by `show`) -------------------------------------------


def results(body: bytes):
    async def run(ctx: Ctx) -> str:
        ctx.fake.on("GET", "/v1/batches/batch_r", lambda r: JSONResponse(openai_batch("batch_r")))
        ctx.fake.on("GET", "/v1/files/file-out/content", lambda r: Response(body, media_type="application/octet-stream"))
        acct = ctx.fake_engine.settings.account("fake-openai")
        batch = await ctx.fake_engine.refresh(acct, "batch_r")
        fetched = await fetch_results(ctx.fake_engine, acct, batch, ctx.tmp / "out")
        assert fetched.files[0].path.read_bytes() == body  # what was served, garbage included
        out = _StringOut()
        render.show_batch(batch, fetched.summary.breakdown, out)
        return out.getvalue()
    return run


class _StringOut:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def good_result(i: int) -> bytes:
    return json.dumps({"id": f"r{i}", "custom_id": f"q-{i}", "response": {
        "status_code": 200, "body": {"model": "gpt-5.4-mini", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}},
        "error": None}).encode()


# -- provider answers ----------------------------------------------------------------------------


def answer(provider: str, response: Callable[[], Response]):
    """Every request to the fake provider gets `response`; the account lists its batches."""
    async def run(ctx: Ctx) -> str:
        ctx.fake.fallback = lambda request: response()
        acct = ctx.fake_engine.settings.account(f"fake-{provider}")
        return await refused(ctx.fake_engine.list_account(acct))
    return run


def deep_json(depth: int) -> bytes:
    return b'{"data": ' + b"[" * depth + b"]" * depth + b"}"


HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
TEN_MB = "overloaded " * 909_091  # ~10 MB of error message

CASES = [
    # config.toml
    Case("config: invalid TOML", config('[[accounts]]\nname = "work"\nprovider = "openai\n'),
         ("{tmp}/cfg/config.toml:3:", "invalid TOML")),
    Case("config: unknown provider", config('[[accounts]]\nname = "work"\nprovider = "openia"\n'),
         ("{tmp}/cfg/config.toml:3: accounts[0].provider:", "'openai'")),
    Case("config: unknown setting", config('[ui]\nthem = "dark"\n'),
         ("{tmp}/cfg/config.toml:2: ui.them: unknown setting (a typo?)",)),
    Case("config: a key in the file", config(f'[[accounts]]\nname = "w"\nprovider = "openai"\napi_key = "{KEY}"\n'),
         ("config.toml:4: accounts[0].api_key: API keys do not belong in config.toml",), absent=(KEY,)),
    Case("config: base_url not http(s)", config('[[accounts]]\nname = "w"\nprovider = "openai"\nbase_url = "ftp://x"\n'),
         ("config.toml:4: accounts[0].base_url: base_url must start with https://",)),
    Case("config: nested 1,000 deep", config("a = " + "[" * 1000 + "]" * 1000 + "\n"),
         ("{tmp}/cfg/config.toml: invalid TOML: nested too deeply",)),
    # theme files
    Case("theme: invalid TOML", theme('name = "mine"\nprimary = \n'), ("{tmp}/mine.toml: invalid TOML", "line 2")),
    Case("theme: not a colour", theme('name = "mine"\nprimary = "blurple"\n'),
         ("{tmp}/mine.toml: primary: 'blurple' is not a colour",)),
    Case("theme: unknown key", theme(GOOD_THEME + 'primry = "#000000"\n'), ("{tmp}/mine.toml: primry: unknown key",)),
    Case("theme: bad status colour", theme(GOOD_THEME + '[status]\nfailed = "reddish"\n'),
         ("{tmp}/mine.toml: status.failed: 'reddish' is not a colour",)),
    Case("theme: nested 1,000 deep", theme(GOOD_THEME + "x = " + "[" * 1000 + "]" * 1000 + "\n"),
         ("{tmp}/mine.toml: invalid TOML",)),
    # batch JSONL
    Case("jsonl: invalid JSON lines", submit("claude-team", [an(1), "{not json", an(3), "[1, 2"]),
         ("{tmp}/in.jsonl: 2 problem(s); nothing was sent", "line 2: not valid JSON", "line 4: not valid JSON")),
    Case("jsonl: a line that is not an object", submit("claude-team", [an(1), "[1, 2]", '"text"']),
         ("line 2: expected a JSON object, got list", "line 3: expected a JSON object, got str")),
    Case("jsonl: invalid UTF-8", submit("claude-team", an(1).encode() + b"\n\xff\xfe{}\n"),
         ("line 2: not valid JSON",)),
    Case("jsonl: nested 100,000 deep", submit("claude-team", [an(1), "[" * DEEP + "]" * DEEP]),
         ("line 2: not valid JSON (nested too deeply)",)),
    Case("jsonl: duplicate custom_id", submit("claude-team", [an(1), an(2), an(1, "t-1")]),
         ("line 3: duplicate custom id 't-1' (first on line 1)",)),
    Case("jsonl: custom_id with a space (Anthropic)", submit("claude-team", [an(1, "has space")]),
         ("line 1: `custom_id` 'has space' must be 1-64 letters, digits, '_' or '-'",)),
    Case("jsonl: custom_id of 65 characters (Anthropic)", submit("claude-team", [an(1, "x" * 65)]),
         ("line 1: `custom_id` '" + "x" * 65 + "' must be 1-64 letters",)),
    Case("jsonl: missing custom_id (Anthropic)", submit("claude-team", ['{"params": {}}']),
         ("line 1: ",)),
    Case("jsonl: too many requests", submit("claude-team", [an(i) for i in range(4)],
                                            limits=Limits(3, 10**9, r"^[a-zA-Z0-9_-]{1,64}$")),
         ("4 requests; anthropic takes at most 3",)),
    Case("jsonl: too many bytes", submit("acme-prod", [oa(i) for i in range(4)], limits=Limits(50_000, 300)),
         ("{tmp}/in.jsonl is ", "bytes; openai takes at most 300 bytes per batch")),
    Case("jsonl: not a batch endpoint (OpenAI)", submit("acme-prod", [oa(1, url="/v1/assistants")]),
         ("line 1: url must be one of /v1/responses, /v1/chat/completions", "(got '/v1/assistants')")),
    Case("jsonl: url mismatch (OpenAI)", submit("acme-prod", [oa(1), oa(2, url="/v1/responses")]),
         ("line 2: url '/v1/responses' differs from the first line's '/v1/chat/completions'",)),
    Case("jsonl: model mismatch (OpenAI)", submit("acme-prod", [oa(1), oa(2), oa(3, model="gpt-5.4")]),
         ("line 3: model 'gpt-5.4' differs from the first line's 'gpt-5.4-mini'",)),
    Case("jsonl: stream in a batch (OpenAI)",
         submit("acme-prod", [json.dumps({**json.loads(oa(1)), "body": {"model": "m", "stream": True}})]),
         ("line 1: body.stream: true is not allowed in a batch",)),
    Case("jsonl: no request at all", submit("acme-prod", ["", "   "]), ("the file holds no requests",)),
    Case("jsonl: no model for Gemini", submit("gemini-lab", [gm(1)]),
         ("no model for this Gemini batch: pass one, or set the account's default_model",)),
    Case("jsonl: file missing", submit_missing_file, ("cannot read {tmp}/nowhere.jsonl",)),
    Case("retry --input: a line nested 100,000 deep", retry_with_input,
         ("items to retry are not in the originals from {tmp}/originals.jsonl", "pass the original JSONL")),
    # result files: served as they are, shown with what could not be read
    Case("results: garbage and truncated lines", results(
        good_result(1) + b"\nnot json at all\n" + good_result(3) + b"\n\x00\x01\x02\n" + good_result(5)[:40]),
         ("3 unparseable result line(s), e.g. line(s) 2, 4, 5",), sends_nothing=False),
    Case("results: JSON that is not a result line", results(b'[1, 2]\n{"custom_id": 7}\n' + good_result(3) + b"\n"),
         ("1 unparseable result line(s), e.g. line(s) 1",), sends_nothing=False),
    Case("results: a line nested 100,000 deep", results(good_result(1) + b"\n" + b"[" * DEEP + b"]" * DEEP + b"\n"),
         ("1 unparseable result line(s), e.g. line(s) 2",), sends_nothing=False),
    # provider answers
    Case("provider: HTML 502 page", answer("openai", lambda: Response(HTML_502, 502, media_type="text/html")),
         ("fake-openai: unexpected answer: an HTML page (HTTP 502)",), sends_nothing=False),
    Case("provider: non-JSON 200", answer("anthropic", lambda: Response(b"OK", media_type="text/plain")),
         ("fake-anthropic: expected JSON from /v1/messages/batches, got text/plain",), sends_nothing=False),
    Case("provider: 200 with an unexpected schema", answer("openai", lambda: JSONResponse({"data": "nope"})),
         ("fake-openai: a batch list without a data array",), sends_nothing=False),
    Case("provider: 200 with a batch without an id", answer("gemini", lambda: JSONResponse({"operations": [{"x": 1}]})),
         ("fake-gemini: a Gemini batch came without a name",), sends_nothing=False),
    Case("provider: 200 nested 300 deep", answer("openai", lambda: Response(deep_json(300), media_type="application/json")),
         ("fake-openai: the answer from /v1/batches is nested more than 200 levels deep; not read",),
         sends_nothing=False),
    Case("provider: 200 nested 100,000 deep",
         answer("anthropic", lambda: Response(deep_json(DEEP), media_type="application/json")),
         ("fake-anthropic: expected JSON from /v1/messages/batches",), sends_nothing=False),
    Case("provider: error body nested 100,000 deep",
         answer("openai", lambda: Response(deep_json(DEEP), 400, media_type="application/json")),
         ("fake-openai: unexpected answer: a non-JSON body (HTTP 400)",), sends_nothing=False),
    Case("provider: 10 MB error message",
         answer("openai", lambda: JSONResponse({"error": {"message": TEN_MB, "type": "server_error"}}, 400)),
         ("fake-openai: overloaded overloaded", "... (10,000,001 characters) (HTTP 400, server_error)"),
         sends_nothing=False),
    *[Case(f"provider: redirect to another host ({p})",
           answer(p, lambda: RedirectResponse(f"{ELSEWHERE}/steal", status_code=307)),
           (f"fake-{p}: redirected to {ELSEWHERE}/steal; not followed (it would carry the key)",), sends_nothing=False)
      for p in ("openai", "anthropic", "gemini")],
]


@pytest.fixture(scope="module")
def demo_sim():
    # One simulator for the whole table (building the demo takes a second): no row may change
    # it, and every row starts with its request counters at zero.
    return Simulator(seed=5, manual_clock=True, scenario="demo")


@pytest.fixture
async def ctx(tmp_path, demo_sim):
    sim = demo_sim
    for ws in sim.world.workspaces.values():
        ws.requests.clear()
    engine = scenario_engine(tmp_path / "sim-home", sim)
    fake = FakeProvider()
    home = ensure_private_dir(tmp_path / "fake-home")
    settings = Settings(accounts=[Account(name=f"fake-{p}", provider=Provider(p), base_url=url)
                                  for p, url in FAKE_BASE.items()])
    fake_engine = Engine(settings=settings, paths=Paths(home, home), ledger=Ledger.open(home / "ledger.db"),
                         prices=PriceTable.load(), transport=httpx.ASGITransport(app=fake),
                         key_lookup=lambda account: KEY, sleep=RecordedSleep())
    yield Ctx(tmp_path, sim, engine, fake, fake_engine)
    for e in (engine, fake_engine):
        await e.aclose()
        e.close_ledger()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)]
                                               if c.xfail else []) for c in CASES])
async def test_bad_input_gets_a_clear_message_and_sends_nothing(ctx, case):
    TRIED.append(case.name)
    shown = await case.run(ctx)
    for needle in case.expect:
        assert needle.replace("{tmp}", str(ctx.tmp)) in shown, shown[:3000]
    for secret in (KEY, *case.absent):
        assert secret not in shown
    assert len(shown) < 5_000  # a 10 MB message is kept short
    if case.sends_nothing:
        assert posts(ctx.sim) == 0
    # The key went to its own account's host and nowhere else (no redirect was followed).
    assert ctx.fake.hosts_given_credentials() <= {httpx.URL(url).host for url in FAKE_BASE.values()}
    assert all(seen.host != httpx.URL(ELSEWHERE).host for seen in ctx.fake.seen)


# -- the same through the CLI: exit codes and stderr ---------------------------------------------------


def test_the_cli_names_the_problem_and_exits_with_the_contract_code(tmp_path):
    sim = Simulator(seed=5, manual_clock=True, scenario="demo")
    fake = FakeProvider()
    fake.fallback = lambda request: Response(HTML_502, 502, media_type="text/html", headers={"retry-after": "0"})
    with serve_on_loopback(sim) as host, serve_on_loopback(fake) as fake_host:
        cli = Cli(tmp_path)
        cli.add_account("claude", "anthropic", f"{host}/anthropic", "sim-key-anthropic-team")
        cli.add_account("proxy", "openai", f"{fake_host}/v1", KEY)
        bad = tmp_path / "bad.jsonl"
        bad.write_text(an(1) + "\n{oops\n" + an(1) + "\n")
        runs = {
            "submit invalid JSONL": (cli("submit", str(bad), "--account", "claude"), 1,
                                     [f"{bad}: 2 problem(s); nothing was sent", "line 2: not valid JSON",
                                      "line 3: duplicate custom id 't-1' (first on line 1)"]),
            "unknown provider": (cli("accounts", "add", "x", "--provider", "openia", "--key-stdin", input="k\n"), 2,
                                 ["invalid choice: 'openia'"]),
            "unknown account": (cli("submit", str(bad), "--account", "nobody"), 2,
                                ["no account named 'nobody' (accounts: claude, proxy)"]),
            "HTML 502 from a proxy": (cli("ls", "--account", "proxy"), 1,
                                      ["account proxy: proxy: unexpected answer: an HTML page (HTTP 502)"]),
        }
        assert posts(sim) == 0, "a bad input sent something"
        config = cli.home / "config.toml"
        config.write_text(config.read_text() + "\n[ui\n")
        runs["malformed config.toml"] = (cli("ls"), 2, [f"{config}:", "invalid TOML"])
    for what, (result, code, needles) in runs.items():
        stdout, stderr = text(result)
        assert result.returncode == code, (what, stderr)
        assert "Traceback" not in stderr, (what, stderr)
        for needle in needles:
            assert needle in stderr, (what, stderr)
        assert KEY not in stdout + stderr
    assert fake.hosts_given_credentials() <= {"127.0.0.1"}
    TRIED.extend(runs)


def test_zz_record_bad_input_figures():
    assert TRIED, "run with the tests above"
    known = sum(1 for c in CASES if c.xfail and c.name in TRIED)
    record("bad_inputs_table", bad_inputs_tried=len(TRIED), handled_with_a_clear_message=len(TRIED) - known,
           known_crashes_in_code_owned_elsewhere=known)
