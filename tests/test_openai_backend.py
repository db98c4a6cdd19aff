"""The OpenAI-compatible backend against real servers on loopback: llama-cpp-python's server with the
bundled Gemma GGUF, and small scripted HTTP servers for retries, refusals and API keys."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy
import pytest
from support import cached_rows, read_run, run_folders

from vnllmtest.backends import Request, ServerSettings, load_backend
from vnllmtest.backends.bundled import gguf_file
from vnllmtest.backends.registry import parse_model_spec
from vnllmtest.runner import Runner

API_KEY = "sk-test-PLANTED-7f3a9c"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on loopback, serving the bundled GGUF."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        model, _ = gguf_file("gemma3-270m")
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--n_ctx", "4096", "--verbose", "false"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("llama-cpp-python server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def llama_server() -> Iterator[LlamaServer]:
    """Request it before `project`: its pytester forgets modules first imported after it starts, and the
    HTTP client imports parts of itself on first use."""
    server = LlamaServer(free_port()).start()
    yield server
    server.kill()


# The repository's suites in a fresh folder. Runs there go through a subprocess: an in-process run would drop
# the HTTP modules it imported first, and the client's exception mapping with them.
pytestmark = pytest.mark.project(samples=True)


def test_completions_endpoint_runs_suites_and_scores_options_by_logprobs(llama_server, project):
    spec = f"--model=openai:{llama_server.url}+endpoint=completions"
    result = project.runpytest_subprocess(
        "suites/vmlu.yaml", "suites/visquad2.yaml", "--data", "sample", "--limit", "4", spec
    )
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "error" not in outcomes, result.stdout.str()[-2000:]
    [run] = run_folders(project.path)
    items = run.items
    vmlu = [item for item in items if item["suite"] == "vmlu"]
    assert all(item["mode"] == "loglikelihood+generate" and item["choice_logprobs"] for item in vmlu)
    assert all(item["output"] is not None and item["cache_key"] for item in items)
    model = next(iter(run.manifest["models"].values()))
    assert model["device"] == f"server {llama_server.url}" and model["fingerprint"].startswith("openai:")


def test_requests_sharing_a_beginning_reach_the_server_one_after_another(llama_server, monkeypatch):
    """Not longest first: adjacent prompts with a common start let the server's prefix cache reuse it."""
    backend = load_backend(parse_model_spec(f"openai:{llama_server.url}+endpoint=completions"))
    passages = ["Đoạn văn: Hà Nội là thủ đô.", "Đoạn văn: Huế từng là kinh đô của nhà Nguyễn, bên sông Hương."]
    questions = ["\nCâu hỏi: Ở đâu?\nTrả lời:", "\nCâu hỏi: Thành phố này nổi tiếng vì điều gì?\nTrả lời:"]
    prompts = [passage + question for question in questions for passage in passages]
    sent: list[str] = []
    real = backend.generate
    monkeypatch.setattr(backend, "generate", lambda batch: sent.extend(r.prompt for r in batch) or real(batch))
    Runner(batch_size=2).run(backend, [Request("t", str(i), p, (), 4) for i, p in enumerate(prompts)], "generate")
    starts = [prompt.split("\n")[0] for prompt in sent]
    assert starts[0] == starts[1] != starts[2] == starts[3] and sorted(starts) == sorted(
        prompt.split("\n")[0] for prompt in prompts
    )


def test_chat_endpoint_answers_through_the_servers_chat_template(llama_server):
    backend = load_backend(parse_model_spec(f"openai:{llama_server.url}"))
    prompt = backend.format_prompt([{"role": "user", "content": "Thủ đô của Việt Nam là gì?"}])
    assert json.loads(prompt)["messages"][0]["content"] == "Thủ đô của Việt Nam là gì?"
    [generation] = backend.generate([Request("t", "1", prompt, (), 16)])
    assert generation.error is None and generation.finish_reason in ("stop", "length")
    assert backend.supports_loglikelihood


def test_label_tokens_pick_the_spellings_read_from_the_top_logprobs(llama_server):
    backend = load_backend(parse_model_spec(f"openai:{llama_server.url}+endpoint=completions"))
    prompt = "Câu hỏi: 1 + 1 bằng mấy?\nA. 2\nB. 3\nĐáp án:"
    scores = {
        spelling: backend.score_choices([Request("t", "1", prompt, ("A", "B"), 1, label_tokens=spelling)])[0]
        for spelling in ("spaced", "bare", "either")
    }
    for label in "AB":
        spaced, bare = scores["spaced"][label], scores["bare"][label]
        assert scores["either"][label] == pytest.approx(numpy.logaddexp(spaced, bare))  # -inf when neither is there
    assert max(scores["spaced"].values()) > float("-inf")  # " A" or " B" is among the server's top tokens


def test_server_killed_midway_fails_clearly_and_a_rerun_resumes_from_the_cache(llama_server, project):
    cache_dir = project.path / "cache"
    args = [
        "suites/visquad2.yaml",
        "--data",
        "sample",
        f"--model=openai:{llama_server.url}+endpoint=completions",
        "--batch-size",
        "1",
        "--concurrency",
        "1",
        "--retries",
        "1",
        "--cache-dir",
        str(cache_dir),
        "-p",
        "no:cacheprovider",
    ]
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while cached_rows(cache_dir) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    llama_server.kill()
    output, _ = run.communicate(timeout=300)
    kept = cached_rows(cache_dir)
    assert run.returncode == 1 and 4 <= kept < 30, output[-2000:]
    assert f"openai endpoint {llama_server.url}/completions failed after 2 attempts; last error: Connect" in output
    llama_server.start()
    result = project.runpytest_subprocess(*args)
    assert result.ret == 0, result.stdout.str()[-2000:]
    items = read_run(project.path).items
    assert len(items) == 30 and sum(item["cached"] for item in items) == kept
    assert all(item["status"] != "error" for item in items)


# --- scripted servers ------------------------------------------------------------------------


class Script:
    """Replies a scripted server gives, in order (the last one repeats), and what it received; with
    `refuse_logprobs`, requests asking for logprobs get that HTTP status instead."""

    def __init__(self, replies: list[tuple[int, dict, dict]]):
        self.replies = replies
        self.received: list[tuple[str, dict, dict]] = []
        self.refuse_logprobs: int | None = None


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.received.append((self.path, dict(self.headers), body))
            status, headers, reply = script.replies[min(len(script.received), len(script.replies)) - 1]
            if script.refuse_logprobs and "logprobs" in body:
                status, headers, reply = script.refuse_logprobs, {}, {"error": "logprobs are not supported"}
            payload = json.dumps(reply).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    server.shutdown()


def completion(text: str) -> dict:
    return {"choices": [{"text": text, "finish_reason": "stop"}], "usage": {"completion_tokens": 2}}


FAST = ServerSettings(retries=3, backoff=0.01)


def backend_for(url: str, settings: ServerSettings = FAST):
    return load_backend(parse_model_spec(f"openai:{url}+model=vi-model+endpoint=completions"), server_settings=settings)


def test_rate_limits_and_server_errors_are_retried_with_back_off(scripted, monkeypatch):
    url, script = scripted
    script.replies = [
        (429, {"Retry-After": "0"}, {"error": "slow down"}),
        (503, {}, {}),
        (200, {}, completion(" Hà Nội")),
    ]
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    [generation] = backend_for(url).generate([Request("t", "1", "Thủ đô?", (), 8)])
    assert generation.text == " Hà Nội" and generation.new_tokens == 2
    assert len(script.received) == 3
    path, headers, body = script.received[-1]
    assert path == "/v1/completions" and headers["Authorization"] == f"Bearer {API_KEY}"
    assert body == {"max_tokens": 8, "temperature": 0, "seed": 0, "model": "vi-model", "prompt": "Thủ đô?"}


def test_the_last_failed_retry_names_the_endpoint_and_not_the_key(scripted, monkeypatch):
    url, script = scripted
    script.replies = [(500, {}, {"error": "boom"})]
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    [generation] = backend_for(url).generate([Request("t", "1", "Thủ đô?", (), 8)])
    assert f"openai endpoint {url}/completions failed after 4 attempts; last error: HTTP 500" in generation.error
    assert API_KEY not in generation.error and len(script.received) == 4


def test_a_refused_request_is_not_retried(scripted):
    url, script = scripted
    script.replies = [(400, {}, {"error": "bad prompt"})]
    [generation] = backend_for(url).generate([Request("t", "1", "Thủ đô?", (), 8)])
    assert generation.error == f'openai endpoint {url}/completions refused the request: HTTP 400: {{"error": "bad prompt"}}'
    assert len(script.received) == 1


@pytest.mark.parametrize("refusal", [None, 400, 422], ids=["ignored", "refused-400", "refused-422"])
def test_without_logprobs_only_the_generate_accuracy_is_scored(scripted, project, refusal):
    """A server that ignores logprobs (Ollama-like) or refuses requests asking for them (HTTP 400/422): vmlu's
    `accuracy` (generate+extract) is scored and `accuracy_loglik` is counted as unscored, never filled from
    the generation (a refusing server used to error every log-likelihood item)."""
    url, script = scripted
    script.replies = [(200, {}, completion("A"))]
    script.refuse_logprobs = refusal
    result = project.runpytest_subprocess(
        "suites/vmlu.yaml", "--data", "sample", "--limit", "2", f"--model=openai:{url}+model=m+endpoint=completions"
    )
    assert "error" not in result.parseoutcomes()
    [run] = run_folders(project.path)
    items = run.items
    assert all(item["mode"] == "loglikelihood+generate" and item["answer"] == "A" for item in items)
    assert all(set(item["metrics"]) == {"accuracy"} and item["loglik_answer"] is None for item in items)
    [group] = run.results
    assert group["unscored"] == {"accuracy": 0, "accuracy_loglik": 2, "mode_agreement": 2}
    assert group["metrics"]["accuracy_loglik"]["n"] == 0
    assert "(2 unscored)" in run.markdown
    result.stdout.fnmatch_lines(["*vnllmtest coverage*", "vmlu *accuracy_loglik*n/a*2"])


def test_the_api_key_never_reaches_reports_caches_or_output(scripted, project, monkeypatch):
    url, script = scripted
    script.replies = [(200, {}, completion("Hà Nội"))]
    monkeypatch.setenv("MY_SERVER_KEY", API_KEY)
    result = project.runpytest_subprocess(
        "suites/visquad2.yaml",
        "--data",
        "sample",
        "--limit",
        "3",
        f"--model=openai:{url}+model=m+endpoint=completions",
        "--api-key-env",
        "MY_SERVER_KEY",
        "-rA",
    )
    assert all(headers["Authorization"] == f"Bearer {API_KEY}" for _, headers, _ in script.received)
    assert API_KEY not in result.stdout.str() + result.stderr.str()
    written = [p for p in project.path.rglob("*") if p.is_file()]
    assert any(p.name == "predictions.sqlite" for p in written) and any(p.name == "summary.json" for p in written)
    assert not [p for p in written if API_KEY.encode() in p.read_bytes()]


def chat_reply(content: str, reasoning: str, finish: str) -> dict:
    message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
    return {"choices": [{"message": message, "finish_reason": finish}], "usage": {"completion_tokens": 9}}


@pytest.mark.parametrize(
    "content, finish, answer, unterminated",
    [
        ("", "length", "", True),  # cut while the server was still reasoning
        ("Hà Nội", "stop", "Hà Nội", False),
        ("Hà Nội\nvì đó là thủ đô", "stop", "Hà Nội", False),  # the stop string cuts the answer, not the reasoning
        ("Hà", "length", "Hà", False),  # cut in the answer: truncated, not thinking
    ],
)
def test_chat_reasoning_is_thinking_and_a_reply_cut_inside_it_is_unterminated(scripted, content, finish, answer, unterminated):
    url, script = scripted
    script.replies = [(200, {}, chat_reply(content, "Đoạn văn nói\nvề thủ đô", finish))]
    chat = load_backend(parse_model_spec(f"openai:{url}+model=vi-model"), server_settings=FAST)
    request = Request("t", "1", chat.format_prompt([{"role": "user", "content": "Thủ đô?"}], True), (), 8, ("\n",))
    [prediction] = Runner().run(chat, [request], "generate")
    assert (prediction.text, prediction.thinking_unterminated) == (answer, unterminated)
    assert prediction.thinking == "Đoạn văn nói\nvề thủ đô"


def test_a_thinking_request_sends_no_stop_and_cuts_only_the_answer(scripted):
    url, script = scripted
    script.replies = [(200, {}, completion("Đoạn văn\nnói về Huế</think>Huế\nvì là cố đô"))] * 2
    backend = backend_for(url)
    prompt = "<|im_start|>user\nCố đô?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    [thinking] = Runner().run(backend, [Request("t", "1", prompt, (), 8, ("\n",), thinking=True)], "generate")
    assert "stop" not in script.received[-1][2]
    assert (thinking.text, thinking.thinking, thinking.thinking_unterminated) == ("Huế", "Đoạn văn\nnói về Huế", False)
    Runner().run(backend, [Request("t", "1", prompt, (), 8, ("\n",))], "generate")
    assert script.received[-1][2]["stop"] == ["\n"]
