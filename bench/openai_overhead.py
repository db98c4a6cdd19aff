"""The `openai:` backend's own overhead: the bundled ViQuAD sample through vnllmtest against a
loopback llama.cpp server (llama-cpp-python, the bundled GGUF), beside a bare httpx loop sending the
same prompts with the same concurrency. The server does the work; the difference is ours.

    python bench/openai_overhead.py [--concurrency 1 4]

Prints a Markdown table: requests, wall seconds, requests/s and the overhead against the bare loop."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import measure

REPO = Path(__file__).resolve().parents[1]


def start_server(port: int) -> subprocess.Popen:
    from vnllmtest.backends.bundled import gguf_file

    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file("gemma3-270m")[0])]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--verbose", "false"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("llama-cpp-python server did not start")


def bare_loop(url: str, prompts: list[str], concurrency: int) -> float:
    """Seconds to send every prompt as a completion request, `concurrency` at a time."""
    body = {"max_tokens": 32, "temperature": 0, "seed": 0, "stop": ["\n"]}
    with httpx.Client(timeout=600) as client:

        def send(prompt: str) -> str:
            reply = client.post(f"{url}/completions", json={**body, "prompt": prompt})
            reply.raise_for_status()
            return reply.json()["choices"][0]["text"]

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, prompts))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vnllmtest-openai"))
    options = parser.parse_args()
    shutil.rmtree(options.workdir, ignore_errors=True)
    options.workdir.mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(port)
    try:
        print("| Concurrency | Competitor | Requests | Wall (s) | Requests/s | Overhead |")
        print("| ---: | --- | ---: | ---: | ---: | ---: |")
        for concurrency in options.concurrency:
            reports = options.workdir / f"reports-{concurrency}"
            command = [sys.executable, "-m", "pytest", str(REPO / "suites" / "visquad2.yaml"), "--data", "sample"]
            command += ["--model", f"openai:{url}+endpoint=completions", "--concurrency", str(concurrency)]
            command += [
                "--no-cache",
                "--report-dir",
                str(reports),
                "-q",
                "-p",
                "no:cacheprovider",
                "--show-misses",
                "0",
            ]
            started = time.perf_counter()
            measure(command, options.workdir)
            ours = time.perf_counter() - started
            [run] = reports.iterdir()
            items = [json.loads(line) for line in (run / "items.jsonl").read_text("utf-8").splitlines()]
            bare = bare_loop(url, [item["prompt"] for item in items], concurrency)
            count = len(items)
            print(f"| {concurrency} | bare httpx loop | {count} | {bare:.1f} | {count / bare:.2f} | — |")
            overhead = f"{100 * (ours / bare - 1):+.0f}% (+{ours - bare:.1f} s)"
            row = f"| {concurrency} | vnllmtest (pytest process) | {count} | {ours:.1f} | {count / ours:.2f} |"
            print(f"{row} {overhead} |")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
