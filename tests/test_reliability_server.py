"""Hostile and flaky OpenAI-compatible servers, on loopback: each request succeeds or fails on its own,
every attempt is bounded in time and size, the API key never leaves the Authorization header, and a reply
of the wrong shape is an item error naming the endpoint and the field, never a crash or a default."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from support import SHORT_QA, cached_rows, run_folders, short_questions, write_jsonl

from vnllmtest.backends import Request, ServerSettings, load_backend
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.backends.server_http import retry_after
from vnllmtest.cache import PredictionCache
from vnllmtest.plugin.options import parse_positive
from vnllmtest.redaction import Redactor
from vnllmtest.runner import Runner

API_KEY = "sk-test-PLANTED-7f3a9c"
Answer = Callable[[BaseHTTPRequestHandler, Any], None]


class Loopback:
    """An HTTP server on loopback whose `answer(handler, body)` writes every reply itself (whole, cut,
    trickled or garbled); it records each request's path, headers and JSON body."""

    def __init__(self, answer: Answer):
        self.received: list[tuple[str, dict, Any]] = []
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                loopback.received.append((self.path, dict(self.headers), body))
                answer(self, body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address) -> None:
                pass  # the client hung up on a reply it would not read to the end: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Loopback:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self) -> list[Any]:
        return [body for path, _, body in self.received if path != "/v1/models"]


def send(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def completion(text: str, **extra: Any) -> dict:
    return {"choices": [{"text": text, "finish_reason": "stop", **extra}], "usage": {"completion_tokens": 2}}


def prompt_of(body: dict) -> str:
    return body["prompt"] if "prompt" in body else body["messages"][-1]["content"]


def server_backend(url: str, endpoint: str = "completions", served: str | None = "m", **settings: Any):
    spec = f"openai:{url}" + (f"+model={served}" if served else "") + f"+endpoint={endpoint}"
    values = {"retries": 0, "backoff": 0.01, **settings}
    return load_backend(parse_model_spec(spec), server_settings=ServerSettings(**values))


def ask(backend, *prompts: str, labels: tuple[str, ...] = ()) -> list[Request]:
    texts = [backend.format_prompt([{"role": "user", "content": p}]) for p in prompts]
    return [Request("t", str(i), text, labels, 4) for i, text in enumerate(texts)]


def qa_project(count: int, contexts: tuple[str, ...] = ()) -> pytest.MarkDecorator:
    """A project with suite qa: `count` questions q00, q01, ... answered by Huế (in up to 4 new tokens), the
    first ones asked about `contexts`, and a gate every run passes."""
    suite = {**SHORT_QA, "generation": {"max_new_tokens": 4}, "gates": [{"metric": "f1", "min": 0}]}
    records = short_questions("q", count, "Huế")
    records[: len(contexts)] = [{**record, "context": text} for record, text in zip(records, contexts)]
    return pytest.mark.project(suites={"qa": suite}, records={"qa.jsonl": records})


# --- one request fails, the others count ---------------------------------------------------------


def test_one_failing_request_errors_only_its_own_item_and_the_others_are_scored_and_cached(tmp_path):
    def answer(handler, body):
        if body["prompt"] == "hỏng":
            send(handler, 500, {"error": "boom"})
        elif "logprobs" in body:
            send(handler, 200, completion(" A", logprobs={"top_logprobs": [{" A": -0.1, " B": -2.5}]}))
        else:
            send(handler, 200, completion(f"đáp: {body['prompt']}"))

    with Loopback(answer) as server:
        backend = server_backend(server.url, retries=1)
        cache = PredictionCache(tmp_path)
        requests = ask(backend, "Huế", "hỏng", "Hà Nội", labels=("A", "B"))
        for mode in ("generate", "loglikelihood"):
            predictions = Runner(cache).run(backend, requests, mode)
            assert [p.error is None for p in predictions] == [True, False, True]
            failed = f"openai endpoint {server.url}/completions failed after 2 attempts; last error: HTTP 500"
            assert predictions[1].error.startswith(failed) and predictions[1].finish_reason == "error"
        assert predictions[0].choice_logprobs == pytest.approx({"A": -0.1, "B": -2.5})
        generated = Runner(cache).run(backend, requests, "generate")
        assert [p.text for p in generated] == ["đáp: Huế", "", "đáp: Hà Nội"]
        assert [p.cached for p in generated] == [True, False, True] and cached_rows(tmp_path) == 4


# --- time and size bounds -----------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_request_timeout_bounds_each_attempt_as_a_whole(phase):
    """A server that trickles one byte every 0.1 s (a 7-second reply) is cut off after --request-timeout,
    whether it trickles the body or the headers; a retry is a new attempt with its own bound."""
    payload = json.dumps(completion("Huế")).encode()
    head = f"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()

    def answer(handler, body):
        if phase == "body":
            handler.wfile.write(head)
        for byte in (head if phase == "headers" else b"") + payload:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.1)

    with Loopback(answer) as server:
        started = time.monotonic()
        [generation] = server_backend(server.url, timeout=1.0, retries=1).generate([Request("t", "1", "Huế?", (), 4)])
        elapsed = time.monotonic() - started
    assert generation.error == (
        f"openai endpoint {server.url}/completions failed after 2 attempts; last error: no complete reply within 1 s "
        "(--request-timeout bounds each attempt: connecting and the whole reply)"
    )
    assert len(server.received) == 2 and elapsed < 4


def test_a_reply_over_the_size_bound_is_an_item_error_and_never_cached(tmp_path):
    """50 MB in reply to max_tokens 4: reading stops at the default bound (4 MiB), not retried, not cached."""
    huge = json.dumps(completion("Huế " * 12_500_000)).encode()

    with Loopback(lambda handler, body: send(handler, 200, huge)) as server:
        backend = server_backend(server.url, retries=3)
        [prediction] = Runner(PredictionCache(tmp_path)).run(backend, ask(backend, "Huế?"), "generate")
    assert prediction.error == (
        f"openai endpoint {server.url}/completions: the reply is over 4194304 bytes, the bound set by "
        "--max-reply-bytes; reading stopped there and nothing of it was kept"
    )
    assert len(server.received) == 1 and cached_rows(tmp_path) == 0


def test_an_answer_over_the_bound_from_any_backend_is_an_item_error_and_an_oversized_cache_entry_is_not_used(
    tmp_path,
):
    records = [{"id": "0", "prediction": "x" * 2000}, {"id": "1", "prediction": "Huế"}]
    replies = write_jsonl(tmp_path / "big.jsonl", records)
    replay = load_backend(parse_model_spec(f"replay:{replies}"))
    long, short = Runner(max_output_bytes=1000).run(replay, ask(replay, "a", "b"), "generate")
    assert long.error == (
        "model 'big' answered with 2000 bytes, over the bound of 1000 (--max-reply-bytes); the answer was not kept"
    )
    assert (short.error, short.text) == (None, "Huế")

    with Loopback(lambda handler, body: send(handler, 200, completion("ồ" * 1000))) as server:
        backend = server_backend(server.url)
        cache = PredictionCache(tmp_path / "cache")
        assert Runner(cache, max_output_bytes=10_000).run(backend, ask(backend, "a"), "generate")[0].error is None
        [again] = Runner(cache, max_output_bytes=1000).run(backend, ask(backend, "a"), "generate")
    assert not again.cached and "answered with 3000 bytes, over the bound of 1000" in again.error
    assert len(server.received) == 2


@qa_project(2)
def test_a_replayed_prediction_over_the_bound_errors_its_item_and_stays_out_of_the_reports(project, replay):
    replies = replay({"q00": "ồ" * 2_500_000, "q01": "Huế"}, "big")
    result = project.runpytest_subprocess(f"--model={replies}", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*ERROR model_error: model 'big' answered with 7500000 bytes, over the bound*"])
    [run] = run_folders(project.path)
    assert all(path.stat().st_size < 100_000 for path in run.path.iterdir())
    assert len(result.stdout.str()) < 100_000


MEMORY_BOMB = r"""
import json, resource, sys, threading, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from vnllmtest.backends import Request, ServerSettings, load_backend
from vnllmtest.backends.registry import parse_model_spec

packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip
block = b"\0" * (1 << 20)
bomb = b"".join(packer.compress(block) for _ in range(1024)) + packer.flush()  # 1 GiB inside about 1 MB

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(bomb)))
        self.end_headers()
        self.wfile.write(bomb)
    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, *args):
        pass

server = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/v1"
spec = parse_model_spec(f"openai:{url}+model=m+endpoint=completions")
backend = load_backend(spec, server_settings=ServerSettings(retries=0))
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (384 << 20), resource.RLIM_INFINITY))
[generation] = backend.generate([Request("t", "1", "Huế?", (), 4)])
print(json.dumps({"url": url, "error": generation.error}))
"""


def test_a_gzip_bomb_is_decoded_only_up_to_the_size_bound_under_a_memory_limit():
    """1 GiB of zeros in a 1 MB gzip reply, with 384 MiB of address space to spare: decoding stops at
    the bound (the whole body used to be decoded into memory)."""
    done = subprocess.run([sys.executable, "-c", MEMORY_BOMB], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["error"].startswith(f"openai endpoint {result['url']}/completions: the reply is over 4194304 bytes")


def test_a_reply_in_an_encoding_not_asked_for_is_refused_without_retry():
    answer = lambda handler, body: send(handler, 200, b"\x8b\x00\x80", {"Content-Encoding": "br"})  # noqa: E731
    with Loopback(answer) as server:
        [generation] = server_backend(server.url, retries=2).generate([Request("t", "1", "Huế?", (), 4)])
    assert generation.error == (
        f"openai endpoint {server.url}/completions: the reply came in content-encoding 'br', which was not asked for"
    )
    assert len(server.received) == 1


# --- concurrency --------------------------------------------------------------------------------

@qa_project(40)
def test_concurrency_is_honoured_whatever_the_batch_size(project):
    """--concurrency 32 with the default --batch-size 8: the server sees 32 requests at once (it used to
    see 8, one batch)."""
    lock = threading.Condition()
    in_flight = [0, 0]  # now, most

    def answer(handler, body):
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            lock.notify_all()
            lock.wait_for(lambda: in_flight[0] >= 32, timeout=1.0)
        send(handler, 200, completion("Huế"))
        with lock:
            in_flight[0] -= 1

    with Loopback(answer) as server:
        model = f"--model=openai:{server.url}+model=m+endpoint=completions"
        result = project.runpytest_subprocess(model, "--concurrency", "32", "--no-cache", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert len(server.posts()) == 40 and in_flight[1] == 32


# --- secrets ------------------------------------------------------------------------------------


@qa_project(5, ("Huế case-401.", "Huế case-503.", "Huế case-quote.", "Huế case-bare.", "Huế."))
def test_an_api_key_echoed_by_the_server_reaches_no_output_report_or_cache(project, monkeypatch):
    """401 and 503 bodies echoing the Authorization header, a reply quoting it and a reply holding the bare
    key: the key is redacted from every message, reply, report file, JUnit XML and the cache."""

    def answer(handler, body):
        prompt, header = body["prompt"], handler.headers["Authorization"]
        if "case-401" in prompt:
            send(handler, 401, {"error": f"invalid credentials: Authorization: {header}"})
        elif "case-503" in prompt:
            send(handler, 503, f"upstream rejected {header}".encode())
        elif "case-quote" in prompt:
            send(handler, 200, completion(f"Huế (Authorization: {header})"))
        elif "case-bare" in prompt:
            send(handler, 200, completion(f"Huế {API_KEY}"))
        else:
            send(handler, 200, completion("Huế"))

    monkeypatch.setenv("MY_SERVER_KEY", API_KEY)
    with Loopback(answer) as server:
        result = project.runpytest_subprocess(
            f"--model=openai:{server.url}+model=m+endpoint=completions",
            "--api-key-env=MY_SERVER_KEY",
            "--retries=1",
            "--cache-dir=cache",
            "--junitxml=junit.xml",
            "-rA",
        )
    assert all(headers["Authorization"] == f"Bearer {API_KEY}" for _, headers, _ in server.received)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1 and API_KEY not in output and "PLANTED" not in output
    assert 'refused the request: HTTP 401: {"error": "invalid credentials: Authorization: Bearer [redacted]"}' in output
    assert "last error: HTTP 503: upstream rejected Bearer [redacted]" in output
    written = [path for path in project.path.rglob("*") if path.is_file()]
    assert {"predictions.sqlite", "items.jsonl", "report.html", "junit.xml"} <= {path.name for path in written}
    assert not [path for path in written if b"PLANTED" in path.read_bytes()]
    [run] = run_folders(project.path)
    outputs = {item["id"]: item["output"] for item in run.items}
    assert outputs["q02"] == "Huế (Authorization: Bearer [redacted])" and outputs["q03"] == "Huế [redacted]"


def test_a_redirect_is_not_followed_so_the_key_never_reaches_another_address(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with Loopback(lambda handler, body: send(handler, 200, completion("Huế"))) as elsewhere:
        target = f"{elsewhere.url}/completions?token={API_KEY}"
        with Loopback(lambda handler, body: send(handler, 307, b"", {"Location": target})) as server:
            [generation] = server_backend(server.url, retries=2).generate([Request("t", "1", "Huế?", (), 4)])
    assert elsewhere.received == [] and len(server.received) == 1
    assert generation.error == (
        f"openai endpoint {server.url}/completions redirected the request (HTTP 307 to {elsewhere.url}/completions"
        "?token=[redacted]); redirects are not followed, so the API key never goes to another address: put the "
        "final URL in the model spec"
    )


# --- replies of the wrong shape -----------------------------------------------------------------

MALFORMED = {
    "not JSON": (b"<html>502 Bad Gateway</html>", "failed after 2 attempts; last error: the reply is not JSON "
                 "(JSONDecodeError): <html>502 Bad Gateway</html>"),
    "JSON nested too deeply": (b"[" * 100_000, "last error: the reply is not JSON (RecursionError): [[["),
    "a JSON list": (b"[]", ": the reply is a JSON list, not an object"),
    "no choices": ({"id": "x"}, "malformed reply: choices is missing, expected a non-empty list"),
    "empty choices": ({"choices": []}, "malformed reply: choices is [] (list), expected a non-empty list"),
    "a null choice": ({"choices": [None]}, "malformed reply: choices[0] is None (NoneType), expected an object"),
    "text not a string": ({"choices": [{"text": 42}]}, "malformed reply: choices[0].text is 42 (int), expected text"),
    "text missing": ({"choices": [{"message": {"content": "A"}}]}, "choices[0].text is missing, expected text"),
    "finish_reason a number": (
        {"choices": [{"text": "A", "finish_reason": 7}]},
        "choices[0].finish_reason is 7 (int), expected text or null",
    ),
    "negative token count": (
        {"choices": [{"text": "A"}], "usage": {"completion_tokens": -3}},
        "usage.completion_tokens is -3 (int), expected a count of tokens",
    ),
    "token count a string": (
        {"choices": [{"text": "A"}], "usage": {"completion_tokens": "12"}},
        "usage.completion_tokens is '12' (str), expected a count of tokens",
    ),
    "an error object with status 200": (
        {"error": {"message": "model overloaded"}},
        "malformed reply: the server sent an error object with a success status: {'message': 'model overloaded'}",
    ),
}
CHAT_MALFORMED = {
    "message null": ({"choices": [{"message": None}]}, "choices[0].message is None (NoneType), expected an object"),
    "content a list": (
        {"choices": [{"message": {"content": ["Huế"]}}]},
        "choices[0].message.content is ['Huế'] (list), expected text or null",
    ),
    "reasoning a number": (
        {"choices": [{"message": {"content": "Huế", "reasoning_content": 1}}]},
        "choices[0].message.reasoning_content is 1 (int), expected text or null",
    ),
}


@pytest.mark.parametrize(
    "endpoint, case",
    [("completions", case) for case in MALFORMED] + [("chat", case) for case in CHAT_MALFORMED],
)
def test_a_reply_of_the_wrong_shape_is_its_items_error_naming_the_endpoint_and_field(endpoint, case):
    bad, expected = {**MALFORMED, **CHAT_MALFORMED}[case]
    good = completion("Huế") if endpoint == "completions" else {"choices": [{"message": {"content": "Huế"}}]}

    def answer(handler, body):
        send(handler, 200, bad if prompt_of(body) == "bad" else good)

    with Loopback(answer) as server:
        backend = server_backend(server.url, endpoint, retries=1)
        fine, broken = backend.generate(ask(backend, "good", "bad"))
    assert (fine.text, fine.error) == ("Huế", None)
    path = "/chat/completions" if endpoint == "chat" else "/completions"
    assert broken.error.startswith(f"openai endpoint {server.url}{path}") and expected in broken.error
    assert len(broken.error) < 600 and broken.finish_reason == "error"


@pytest.mark.parametrize(
    "top, expected",
    [
        ({" A": "cao", " B": -1.0}, "top_logprobs[0][' A'] is 'cao' (str), expected a log-probability"),
        ({" A": float("nan")}, "top_logprobs[0][' A'] is nan (float), expected a log-probability"),
        ({" A": 1e308}, "top_logprobs[0][' A'] is 1e+308 (float), expected a log-probability"),
        ({" A": True}, "top_logprobs[0][' A'] is True (bool), expected a log-probability"),
        ([" A", -0.1], "logprobs.top_logprobs[0] is [' A', -0.1] (list), expected an object of token"),
    ],
    ids=["a string", "NaN", "above 0", "a boolean", "a list for an object"],
)
def test_malformed_log_probabilities_are_an_item_error_never_a_score(top, expected):
    def answer(handler, body):
        send(handler, 200, completion(" A", logprobs={"top_logprobs": [top]}))

    with Loopback(answer) as server:
        backend = server_backend(server.url)
        [scores] = backend.score_choices(ask(backend, "Huế?", labels=("A", "B")))
    assert f"openai endpoint {server.url}/completions: malformed reply: choices[0]." in str(scores)
    assert expected in str(scores)


def test_very_small_log_probabilities_are_summed_without_underflow():
    """Both spellings of A near -1000: their sum of probabilities underflows to 0, and log(0) used to fail
    the whole batch."""
    top = {" A": -1000.0, "A": -1000.0, " B": -2000.0}
    reply = completion(" A", logprobs={"top_logprobs": [top]})
    with Loopback(lambda handler, body: send(handler, 200, reply)) as server:
        backend = server_backend(server.url)
        [scores] = backend.score_choices(ask(backend, "Huế?", labels=("A", "B")))
    assert scores == pytest.approx({"A": -1000.0 + 0.6931471805599453, "B": -2000.0})


def test_a_failed_logprob_probe_is_not_taken_for_a_server_without_logprobs():
    """A 503 on the probe used to make every item `no_logprobs` (unscored, no error); now the scoring
    requests run and each failure is an error naming the endpoint, and the probe is asked again next run."""
    with Loopback(lambda handler, body: send(handler, 503, {"error": "loading"})) as server:
        backend = server_backend(server.url)
        for run in (1, 2):
            [prediction] = Runner().run(backend, ask(backend, "Huế?", labels=("A", "B")), "loglikelihood")
            assert len(server.posts()) == 2 * run  # the probe and the scoring request
    assert prediction.finish_reason == "error"
    assert prediction.error == (
        f'openai endpoint {server.url}/completions failed after 1 attempt; last error: HTTP 503: {{"error": "loading"}}'
    )



@pytest.mark.parametrize("endpoint, status", [("completions", 400), ("chat", 422)])
def test_a_server_that_refuses_logprobs_leaves_the_items_unscored_and_is_asked_once(endpoint, status):
    """HTTP 400/422 to any request with logprobs (as some servers answer): the server has none, so the items
    are unscored, not errors (they used to error, every one); the answer is remembered, not asked per run."""

    def answer(handler, body):
        if "logprobs" in body:
            send(handler, status, {"error": "logprobs are not supported"})
        else:
            chat = {"choices": [{"message": {"content": "A"}}]}
            send(handler, 200, completion("A") if endpoint == "completions" else chat)

    with Loopback(answer) as server:
        backend = server_backend(server.url, endpoint)
        for _ in range(2):
            predictions = Runner().run(backend, ask(backend, "Huế?", "Vinh?", labels=("A", "B")), "loglikelihood")
            assert [(p.finish_reason, p.error) for p in predictions] == [("no_logprobs", None)] * 2
    assert ["logprobs" in body for body in server.posts()] == [True, False]  # the probe, and the same without


def test_a_server_that_refuses_every_request_is_not_taken_for_one_without_logprobs():
    """A wrong key (HTTP 401 to everything): each item errors with the refusal, and the probe is asked again
    next run, for the answer is still unknown."""
    with Loopback(lambda handler, body: send(handler, 401, {"error": "invalid key"})) as server:
        backend = server_backend(server.url)
        for run in (1, 2):
            [prediction] = Runner().run(backend, ask(backend, "Huế?", labels=("A", "B")), "loglikelihood")
            assert prediction.error == (
                f'openai endpoint {server.url}/completions refused the request: HTTP 401: {{"error": "invalid key"}}'
            )
            assert len(server.posts()) == 3 * run  # probe, probe without logprobs, the scoring request


def test_a_refused_probe_whose_check_fails_is_asked_again_and_then_remembered():
    """The probe refused (400), the same request without logprobs met by a 503: still unknown, so the item
    is scored and errors; the next run asks again and, the server back, remembers the answer."""
    flaky = iter([True])

    def answer(handler, body):
        if "logprobs" in body:
            send(handler, 400, {"error": "logprobs are not supported"})
        elif next(flaky, False):
            send(handler, 503, {"error": "loading"})
        else:
            send(handler, 200, completion("A"))

    with Loopback(answer) as server:
        backend = server_backend(server.url)
        requests = ask(backend, "Huế?", labels=("A", "B"))
        [first] = Runner().run(backend, requests, "loglikelihood")
        assert "refused the request: HTTP 400" in first.error
        for _ in range(2):
            [later] = Runner().run(backend, requests, "loglikelihood")
            assert (later.finish_reason, later.error) == ("no_logprobs", None)
    assert ["logprobs" in body for body in server.posts()] == [True, False, True, True, False]


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("concurrency", 0, "a whole number of at least 1, got 0"),
        ("concurrency", True, "a whole number of at least 1, got True"),
        ("concurrency", 2.5, "a whole number of at least 1, got 2.5"),
        ("retries", -1, "a whole number of at least 0, got -1"),
        ("max_reply_bytes", 0, "a whole number of at least 1, got 0"),
        ("timeout", 0, "a finite number of seconds above 0, got 0"),
        ("timeout", float("nan"), "a finite number of seconds above 0, got nan"),
        ("timeout", float("inf"), "a finite number of seconds above 0, got inf"),
        pytest.param("timeout", 10**400, "a finite number of seconds above 0, got a 1,329-bit number", id="huge"),
        ("backoff", -0.5, "a finite number of seconds at least 0, got -0.5"),
        ("api_key_env", None, "the name of an environment variable, got None"),
    ],
)
def test_server_settings_that_cannot_work_are_refused_where_they_are_made(field, value, problem):
    """Runner and backends are usable without the command line: `concurrency=0` used to wait forever on a
    semaphore that never opens."""
    with pytest.raises(ValueError) as refused:
        ServerSettings(**{field: value})
    assert str(refused.value) == f"ServerSettings.{field} must be {problem}"


def test_a_backend_asking_for_batches_of_no_requests_is_refused_not_looped_on(tmp_path):
    replies = write_jsonl(tmp_path / "r.jsonl", [{"id": "0", "prediction": "A"}])
    replay = load_backend(parse_model_spec(f"replay:{replies}"))
    replay.preferred_batch_size = -1  # its batches were pending[:-1]: the last request never left the queue
    with pytest.raises(ValueError, match=r"backend 'r': preferred_batch_size must be None or a whole number of at "):
        Runner().run(replay, ask(replay, "a", "b"), "generate")


def test_model_replies_keep_token_like_text_that_server_error_texts_redact(tmp_path, monkeypatch):
    """"Basic 2024-2025 syllabus" and "sk-learn_pipeline1" are answers: kept as the replay backend keeps
    them, in the prediction and the cache (they used to become "[redacted]"); only the key is redacted from
    a reply. In an error body they are redacted, as anything like a credential is."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    answer_text = "Basic 2024-2025 syllabus: sk-learn_pipeline1, Bearer abcdef123456"

    def answer(handler, body):
        if body["prompt"] == "error":
            send(handler, 400, answer_text.encode())
        else:
            send(handler, 200, completion(f"{answer_text} {API_KEY}"))

    replies = write_jsonl(tmp_path / "r.jsonl", [{"id": "0", "prediction": answer_text}])
    replay = load_backend(parse_model_spec(f"replay:{replies}"))
    [replayed] = Runner().run(replay, ask(replay, "Huế?"), "generate")
    with Loopback(answer) as server:
        backend = server_backend(server.url)
        cache = PredictionCache(tmp_path / "cache")
        served, refused = Runner(cache).run(backend, ask(backend, "Huế?", "error"), "generate")
        [again] = Runner(cache).run(backend, ask(backend, "Huế?"), "generate")
    assert served.text == again.text == f"{replayed.text} [redacted]" and again.cached
    assert refused.error.endswith("HTTP 400: Basic [redacted] syllabus: [redacted], Bearer [redacted]")


LEAKY_KEY = "k3y-PLANTED-7f3a9c0e11aa"  # nothing like a token: only the key itself can be recognised
ECHO = "x" * 20 + LEAKY_KEY + "y" * 300  # the key across the cut of a quoted value


@pytest.mark.parametrize(
    "mode, reply",
    [
        ("generate", {"error": {"message": ECHO}}),
        ("generate", {"choices": [{"text": "A"}], "usage": {"completion_tokens": ECHO}}),
        ("generate", {"choices": [ECHO]}),
        ("loglikelihood", {"choices": [{"text": "A", "logprobs": {"top_logprobs": [{" A": -0.1, ECHO: "x"}]}}]}),
    ],
    ids=["error object", "token count", "a choice that is text", "a token"],
)
def test_a_key_echoed_in_a_long_malformed_reply_is_redacted_before_any_cut(mode, reply, monkeypatch):
    """The value quoted in a malformed-reply message is cut to a bounded length; the key is redacted from
    the whole reply first (it used to be cut first, leaving part of the key where the redaction missed it)."""
    monkeypatch.setenv("OPENAI_API_KEY", LEAKY_KEY)
    with Loopback(lambda handler, body: send(handler, 200, reply)) as server:
        backend = server_backend(server.url)
        [prediction] = Runner().run(backend, ask(backend, "Huế?", labels=("A", "B")), mode)
    assert prediction.error.startswith(f"openai endpoint {server.url}/completions: malformed reply: ")
    assert "PLANTED" not in prediction.error and "7f3a9c" not in prediction.error and len(prediction.error) < 700


@pytest.mark.parametrize("where", ["content-encoding", "location", "error body"])
@pytest.mark.parametrize("at", [30, 95, 195, 12_795, None])
def test_a_key_anywhere_in_a_long_server_text_is_redacted_before_it_is_cut(where, at, monkeypatch):
    """The key across each place a server's text used to be cut (40 characters of a content-encoding, which
    was also lower-cased first; 200 or 12,800 of a body) or at its very end: no part of it in the message,
    which stays short."""
    monkeypatch.setenv("OPENAI_API_KEY", LEAKY_KEY)
    text = "x" * (2000 if at is None else at) + LEAKY_KEY + ("" if at is None else "x" * 300)

    def answer(handler, body):
        if where == "content-encoding":
            send(handler, 200, b"{}", {"Content-Encoding": text})
        elif where == "location":
            send(handler, 302, b"", {"Location": f"http://127.0.0.1:9/{text}"})
        else:
            send(handler, 404, text.encode() + b"x" * 20_000 * (at is not None))

    with Loopback(answer) as server:
        [generation] = server_backend(server.url).generate([Request("t", "1", "Huế?", (), 4)])
    assert generation.error.startswith(f"openai endpoint {server.url}/completions")
    assert "plant" not in generation.error.lower() and "7f3a9c" not in generation.error
    assert len(generation.error) < 700

# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, wait",
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("99999999999999999999", 30.0),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("²", None),  # a digit to str.isdigit, not to float(): it used to fail the batch
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # in the past
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(header, wait):
    assert retry_after(header) == wait


def test_retry_after_as_an_http_date_is_honoured_up_to_the_cap():
    in_ten_seconds, in_an_hour = (datetime.now(timezone.utc) + timedelta(seconds=s) for s in (10, 3600))
    assert 8 < retry_after(format_datetime(in_ten_seconds, usegmt=True)) <= 10
    assert retry_after(format_datetime(in_an_hour, usegmt=True)) == 30


def test_an_unreadable_retry_after_falls_back_to_the_back_off():
    replies = iter([(429, {"Retry-After": "²"}), (503, {"Retry-After": "-1"}), (200, {})])

    def answer(handler, body):
        status, headers = next(replies)
        send(handler, status, completion("Huế") if status == 200 else {"error": "wait"}, headers)

    with Loopback(answer) as server:
        [generation] = server_backend(server.url, retries=2).generate([Request("t", "1", "Huế?", (), 4)])
    assert (generation.text, generation.error) == ("Huế", None) and len(server.received) == 3


def test_a_connection_closed_mid_reply_is_retried_and_does_not_mark_the_server_down():
    """A reply cut short is a new attempt; after the last one it is that item's error, and the next
    requests still go to the server (it used to be taken for a server that is gone)."""

    def answer(handler, body):
        if body["prompt"] == "cut":
            handler.wfile.write(b'HTTP/1.0 200 OK\r\nContent-Length: 500\r\n\r\n{"cho')
        else:
            send(handler, 200, completion("Huế"))

    with Loopback(answer) as server:
        backend = server_backend(server.url, retries=1)
        [cut] = backend.generate([Request("t", "1", "cut", (), 4)])
        [after] = backend.generate([Request("t", "2", "fine", (), 4)])
    assert cut.error.startswith(
        f"openai endpoint {server.url}/completions failed after 2 attempts; last error: RemoteProtocolError: "
    )
    assert (after.text, after.error) == ("Huế", None) and len(server.received) == 3


def test_garbage_instead_of_http_is_retried_then_an_item_error():
    def answer(handler, body):
        handler.wfile.write(b"SSH-2.0-OpenSSH_9.6 " + API_KEY.encode() + b"\r\n\r\n")

    with Loopback(answer) as server:
        [generation] = server_backend(server.url, retries=1).generate([Request("t", "1", "Huế?", (), 4)])
    expected = f"openai endpoint {server.url}/completions failed after 2 attempts; last error: RemoteProtocolError: "
    assert generation.error.startswith(expected)
    assert API_KEY not in generation.error and len(server.received) == 2


# --- the /models listing --------------------------------------------------------------------------

LISTINGS = {
    "huge": (200, {"data": [{"id": "m"}], "padding": "x" * 5_000_000}, "/models: the reply is over 4194304 bytes"),
    "data an object": (200, {"data": {}}, "listed no usable model (data is {} (dict), expected a non-empty list"),
    "data empty": (200, {"data": []}, "/models listed no usable model (data is [] (list)"),
    "id too long": (200, {"data": [{"id": "x" * 10_000}]}, "data[0].id is 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    "id a number": (200, {"data": [{"id": 7}]}, "data[0].id is 7 (int), expected a model name of at most 256"),
    "not found": (404, {"error": "no such route"}, '/models refused the request: HTTP 404: {"error": "no such route"}'),
}


@pytest.mark.parametrize("case", list(LISTINGS))
def test_a_models_listing_that_names_no_usable_model_errors_every_item_with_the_fix(case):
    status, listing, expected = LISTINGS[case]

    def answer(handler, body):
        if handler.path == "/v1/models":
            send(handler, status, listing)
        else:
            send(handler, 200, completion("Huế"))

    with Loopback(answer) as server:
        backend = server_backend(server.url, served=None)
        generations = backend.generate(ask(backend, "a", "b"))
    assert server.posts() == [] and all(g.error == generations[0].error for g in generations)
    message = generations[0].error
    assert message.startswith(f"openai endpoint {server.url}/models") and expected in message
    assert message.endswith("+model=NAME") and len(message) < 600


# --- the run as a whole -------------------------------------------------------------------------


def test_a_backend_called_from_a_running_event_loop_still_answers():
    """The requests run on an event loop of their own: code that already runs one (a notebook) can call it."""
    with Loopback(lambda handler, body: send(handler, 200, completion("Huế"))) as server:
        backend = server_backend(server.url)

        async def notebook_cell():
            return backend.generate([Request("t", "1", "Huế?", (), 4)])

        [generation] = asyncio.run(notebook_cell())
    assert (generation.text, generation.error) == ("Huế", None)


@pytest.mark.parametrize(
    "kind, text, problem",
    [
        (float, "0", "must be a number above 0, got '0'"),
        (float, "nan", "must be a number above 0, got 'nan'"),
        (float, "inf", "must be a number above 0, got 'inf'"),
        (int, "-1", "must be a number above 0, got '-1'"),
        (int, "lots", "expected a number, got 'lots'"),
    ],
)
def test_server_bounds_that_cannot_work_are_refused(kind, text, problem):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(problem)):
        parse_positive(kind)(text)


@pytest.mark.project()
def test_a_request_timeout_of_zero_is_a_usage_error(project):
    result = project.runpytest_subprocess("--request-timeout=0")
    assert result.ret == 4
    assert "argument --request-timeout: must be a number above 0, got '0'" in result.stderr.str()


@pytest.mark.project()
def test_help_documents_the_server_bounds(project):
    text = " ".join(project.runpytest_subprocess("--help").stdout.str().split())
    assert "--max-reply-bytes=N" in text and "Default: 4194304 (4 MiB)" in text
    assert "seconds per attempt of a server request, connecting and the whole reply" in text
    assert "requests in flight per server (openai:), whatever --batch-size says" in text


def test_redaction_covers_the_key_in_its_escaped_forms_and_leaves_prose_and_placeholders_alone():
    key = 'k3y/with"signs+' + "x" * 8
    messages, replies = Redactor([key]), Redactor([key, "EMPTY"], min_length=8, tokens=False)
    assert messages(f'{{"auth": {json.dumps(key)}}} {quote(key, safe="")}') == '{"auth": "[redacted]"} [redacted]'
    assert messages("Authorization: Basic dXNlcjpwYXNz== and sk-proj-abcdefgh12") == (
        "Authorization: Basic [redacted] and [redacted]"
    )
    prose = "EMPTY basic knowledge. Bearer knowledge, bearer bonds"
    assert messages(prose) == replies(prose) == prose
    answer = "Basic 2024-2025 syllabus, sk-learn_pipeline1, Bearer abcdef123456"
    assert replies(f"{answer} {key}") == f"{answer} [redacted]"
    assert messages(answer) == "Basic [redacted] syllabus, [redacted], Bearer [redacted]"


def test_a_reply_is_redacted_in_every_text_and_object_key_however_deeply_nested():
    key = "k3y-PLANTED-7f3a9c0e11aa"
    redact = Redactor([key], tokens=False)
    reply = {"choices": [{"text": f"Huế {key}", "logprobs": {key: -0.1, "A": -1.0}}], "n": 3, "ok": None}
    choice = {"text": "Huế [redacted]", "logprobs": {"A": -1.0, "[redacted]": -0.1}}
    assert redact.within(reply) == {"choices": [choice], "n": 3, "ok": None}
    deep: list = [key]
    for _ in range(100_000):  # deeper than any recursion limit
        deep = [deep]
    innermost = redact.within(deep)
    while isinstance(innermost[0], list):
        innermost = innermost[0]
    assert innermost == ["[redacted]"] and redact.within(key) == "[redacted]"
