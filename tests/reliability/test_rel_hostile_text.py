"""Issue 6, item 6 (the CLI part): provider text is shown literally and can never act.

Ids, names, models, statuses, metadata and error messages come from the provider. Fed with
Rich markup, ANSI and OSC escapes, C0 and C1 controls, bidi overrides, lone surrogates and
100 kB lengths, every place the CLI shows them (the `ls` table, `show`, the error breakdown,
`--json`, messages on stderr) must not raise, must show the text (as printable escapes), and
must let no raw control, format or bidi character through to the terminal.
"""

from __future__ import annotations

import io
import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from batchtui.cli import commands, render
from batchtui.core.accounts import Account
from batchtui.core.models import ErrorBreakdown, ErrorGroup, Outcome, Provider
from batchtui.core.providers.openai_dialects import to_batch
from batchtui.core.text import printable
from reliability.clirun import Cli
from reliability.fake_provider import FakeProvider, openai_batch
from reliability.figures import record
from support.loopback import serve_on_loopback

PIECES = [
    "[bold red]x[/]", "[link=https://evil.example]click[/link]", "[/]", "\x1b[31m", "\x1b[2J\x1b[H",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07", "\x1b]0;pwned\x07", "\x1bP+q\x1b\\", "\x07", "\x08", "\r",
    "\n", "\t", "\x00", "\x7f", "\x9b31m", "\x9d0;t\x9c", "\u202e", "\u2066", "\u2069", "\u200f", "\u200b", "\ufeff",
    "\u061c", "\u00ad", "\U000e0041", "\ud800", "\udfff", "é", "漢字", "🙂",
]
hostile = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=1, max_size=12).map("".join)
huge = hostile.map(lambda s: (s * (100_000 // max(len(s), 1) + 1))[:100_000])
provider_text = st.one_of(hostile, hostile, huge)
EXAMPLES = {"count": 0}
ACCOUNT = Account(name="acct", provider=Provider.OPENAI)


def unsafe(text: str) -> list[str]:
    """Characters that may act on a terminal: controls (bar the newline ending each line),
    format characters (bidi, zero-width...) and surrogates."""
    return [c for c in set(text) if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


def hostile_batch(text: str, tail: str):
    return to_batch(openai_batch(f"batch_{text}", status=text, model=text, endpoint=text,
                                 metadata={text[:64]: text, "note": tail}), account=ACCOUNT)


def breakdown(text: str) -> ErrorBreakdown:
    return ErrorBreakdown(outcomes={Outcome.SERVER_ERROR: 2, Outcome.REQUEST_ERROR: 1},
                          groups=(ErrorGroup(outcome=Outcome.SERVER_ERROR, error_type=text, count=2, sample_message=text),
                                  ErrorGroup(outcome=Outcome.REQUEST_ERROR, error_type=None, count=1,
                                             sample_message=text[::-1])),
                          unparseable=1, unparseable_lines=(7,))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=provider_text, tail=hostile)
def test_tables_and_show_print_provider_text_literally(text, tail):
    EXAMPLES["count"] += 1
    batch = hostile_batch(text, tail)
    out = io.StringIO()
    render.table(render.BATCH_HEADERS, render.batch_rows([batch]), out)
    render.show_batch(batch, breakdown(text), out)
    shown = out.getvalue()
    assert unsafe(shown) == []
    assert printable(batch.id, limit=80) in shown  # in the table
    assert printable(batch.id, limit=200) in shown and printable(tail, limit=200) in shown  # in show
    assert printable(text, limit=80) in shown  # the breakdown's sample, as a table cell


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=provider_text, tail=hostile)
def test_json_output_keeps_provider_text_verbatim_and_inert(text, tail):
    EXAMPLES["count"] += 1
    batch = hostile_batch(text, tail)
    out = io.StringIO()
    document = {**render.batch_json(batch), "errors": render.breakdown_json(breakdown(text))}
    render.dump(document, out)
    shown = out.getvalue()
    assert unsafe(shown) == []
    shown.encode("utf-8")  # what the terminal gets: a lone surrogate here would crash the print
    # A script reads exactly what the provider sent (as far as JSON can say it: two lone
    # surrogates side by side read back as one pair, from any JSON writer).
    assert json.loads(shown) == json.loads(json.dumps(document))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(text=provider_text)
def test_error_messages_on_stderr_are_inert(capsys, text):
    EXAMPLES["count"] += 1
    commands.err(f"batchtui: acct: {text} (HTTP 400)")
    written = capsys.readouterr().err
    assert unsafe(written) == []
    assert printable(text).replace("\\x0a", "\n") in written


# -- the real commands, against a provider whose every string is hostile ------------------------------

HOSTILE = "\x1b[31mRED\x1b[0m\u202egnp.exe\x07[bold]b[/bold]\x9b2J\u2066i\u2069\x1b]8;;https://evil.example\x07x"
BATCH_ID = f"batch_{HOSTILE}"


def hostile_provider() -> FakeProvider:
    fake = FakeProvider()
    batch = openai_batch(BATCH_ID, model=HOSTILE, metadata={"note": HOSTILE}, error_file_id="file-err",
                         request_counts={"total": 3, "completed": 1, "failed": 2})
    results = json.dumps({"id": "r1", "custom_id": "q-1", "response": {"status_code": 200, "body": {
        "model": "gpt-5.4-mini", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}}, "error": None}) + "\n"
    errors = "".join(json.dumps({"id": f"r{i}", "custom_id": f"q-{i}", "response": {"status_code": 500, "body": {
        "error": {"message": HOSTILE * 3, "type": "server_error", "code": HOSTILE}}}, "error": None}) + "\n"
                     for i in (2, 3))
    originals = "".join(json.dumps({"custom_id": f"q-{i}", "method": "POST", "url": "/v1/chat/completions",
                                    "body": {"model": "gpt-5.4-mini", "messages": []}}) + "\n" for i in (1, 2, 3))

    def route(request: Request) -> Response:
        path, method = request.url.path, request.method
        if path == "/v1/batches" and method == "GET":
            return JSONResponse({"object": "list", "data": [batch], "has_more": False})
        if path == "/v1/batches" and method == "POST":
            return JSONResponse(openai_batch(f"batch_new{HOSTILE}", status="validating"))
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            return JSONResponse({**batch, "status": "cancelling", "id": f"batch_live{HOSTILE}"})
        if path == f"/v1/batches/{BATCH_ID}":
            return JSONResponse(batch)
        if path == f"/v1/batches/batch_live{HOSTILE}":
            return JSONResponse({**batch, "status": "in_progress", "id": f"batch_live{HOSTILE}"})
        if path == "/v1/files" and method == "POST":
            return JSONResponse({"id": "file-up", "object": "file", "purpose": "batch"})
        contents = {"/v1/files/file-out/content": results, "/v1/files/file-err/content": errors,
                    "/v1/files/file-in/content": originals}
        if path in contents:
            return Response(contents[path].encode(), media_type="application/octet-stream")
        return JSONResponse({"error": {"message": f"No such thing: {HOSTILE}", "type": "invalid_request_error",
                                       "code": HOSTILE}}, status_code=404)

    fake.fallback = route
    return fake


def test_every_command_shows_hostile_provider_text_without_letting_it_act(tmp_path):
    fake = hostile_provider()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "gpt-5.4-mini", "messages": []}}) + "\n")
    with serve_on_loopback(fake) as host:
        cli = Cli(tmp_path)
        cli.add_account("acct", "openai", f"{host}/v1", "sk-hostile-text-key")
        runs = [
            cli("ls"), cli("ls", "--json"), cli("show", BATCH_ID), cli("show", BATCH_ID, "--json"),
            cli("fetch", BATCH_ID, "--out", str(tmp_path / "out")), cli("retry", BATCH_ID, "--dry-run"),
            cli("retry", BATCH_ID), cli("retry", BATCH_ID, "--json", "--force"),
            cli("submit", str(jsonl), "--account", "acct"), cli("submit", str(jsonl), "--account", "acct", "--json"),
            cli("cancel", f"batch_live{HOSTILE}", "--account", "acct"),
            cli("show", f"batch_gone{HOSTILE}", "--account", "acct"),  # a 404 whose message is hostile
        ]
    for result in runs:
        for stream in (result.stdout, result.stderr):
            shown = stream.decode("utf-8")
            assert unsafe(shown) == [], (result.args[3:], shown[:500])
            assert "Traceback" not in shown
    everything = b"".join(cli.outputs).decode()
    assert printable(HOSTILE) in everything  # shown, as escapes
    assert [r.returncode for r in runs] == [0] * 11 + [2], [r.stderr[-300:] for r in runs]
    EXAMPLES["count"] += len(runs)


def test_zz_record_hostile_text_figures():
    assert EXAMPLES["count"], "run with the tests above"
    record("hostile_text_cli", strings_and_commands_tried=EXAMPLES["count"], escapes_reaching_the_terminal=0)
