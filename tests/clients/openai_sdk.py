"""The official openai Python SDK against a real Toolshed, as a user's code would call it.

Usage: python tests/clients/openai_sdk.py path/to/toolshed   (`.ci/clients` runs it)

Starts a mock OpenAI provider (Chat Completions, whole and streamed, and embeddings; an upstream model
named `rate-limited` answers 429 with `retry-after: 1`, one named `broken` 503) and the
binary in front of it, then checks what the SDK makes of each answer. Exits non-zero with
the failed check's message.
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import openai
import pydantic

seen = {"calls": 0, "last": None}


class Provider(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        seen["calls"] += 1
        seen["last"] = body
        model = body.get("model")
        if self.path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": i, "embedding": [float(i), 0.5, -0.25]}
                    for i in range(len(body["input"]))]
            answer = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 2, "total_tokens": 2}}
            self.answer(200, json.dumps(answer).encode(), "application/json")
            return
        if model in ("rate-limited", "broken"):
            status = 429 if model == "rate-limited" else 503
            error = {"error": {"message": f"mock {status}", "type": "x", "param": None, "code": None}}
            self.answer(status, json.dumps(error).encode(), "application/json", {"retry-after": "1"})
            return
        if body.get("stream"):
            chunks = [
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
            ]
            text = "".join(
                "data: " + json.dumps(dict(c, id="c1", object="chat.completion.chunk", created=1, model=model)) + "\n\n"
                for c in chunks
            ) + "data: [DONE]\n\n"
            self.answer(200, text.encode(), "text/event-stream")
            return
        json_asked = (body.get("response_format") or {}).get("type") == "json_schema"
        content = '{"value": 42}' if json_asked else "Hello"
        answer = {
            "id": "c1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        self.answer(200, json.dumps(answer).encode(), "application/json")

    def answer(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")
    print(f"ok    {message}")


def main():
    binary = sys.argv[1]
    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    port = free_port()
    token = "clients-test-token-0123456789"
    env = {
        "PATH": os.environ.get("PATH", ""), "ENV": "test", "PORT": str(port),
        "TOOLSHED_DATA_DIR": tempfile.mkdtemp(prefix="toolshed-clients-"),
        "TOOLSHED_API_TOKENS": token, "TOOLSHED_LLM_MAX_RETRIES": "2",
        "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{provider.server_address[1]}/v1",
    }
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/api/ai/llm/v1", api_key=token, max_retries=2)
        hi = [{"role": "user", "content": "Hi"}]

        reply = client.chat.completions.create(model="gpt-4o-mini", messages=hi)
        check(reply.choices[0].message.content == "Hello", "a whole answer")
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="gpt-4o-mini", messages=hi, stream=True)
            if c.choices
        )
        check(text == "Hello", "a streamed answer")

        two = client.chat.completions.create(model="gpt-4o-mini", messages=hi, n=2)
        check([c.index for c in two.choices] == [0, 1], "n=2 answers with two choices")

        client.chat.completions.create(model="gpt-4o-mini", messages=hi, seed=7, top_p=0.5, user="ada")
        sent = seen["last"]
        check((sent.get("seed"), sent.get("top_p"), sent.get("user")) == (7, 0.5, "ada"), "seed, top_p and user reach the provider")

        # The SDK asks for base64 unless told otherwise, and decodes it.
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        check([d.embedding for d in vectors.data] == [[0.0, 0.5, -0.25], [1.0, 0.5, -0.25]],
              "embeddings, in order, through the SDK's base64")

        try:
            client.chat.completions.create(model="gpt-9", messages=hi)
            check(False, "an unknown model raises")
        except openai.NotFoundError as e:
            check("gpt-9" in str(e) and e.code == "model_not_found", "an unknown model raises NotFoundError with the message")

        class Answer(pydantic.BaseModel):
            value: int

        parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=hi, response_format=Answer)
        check(parsed.choices[0].message.parsed == Answer(value=42)
              and seen["last"]["response_format"]["type"] == "json_schema",
              "chat.completions.parse() with a pydantic model: its schema reaches the provider")
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=hi, logprobs=True)
            check(False, "logprobs is refused, not dropped")
        except openai.BadRequestError as e:
            check(e.param == "logprobs", "a parameter Toolshed does not honour is refused by name")

        seen["calls"] = 0
        try:
            client.chat.completions.create(model="openai/rate-limited", messages=hi)
            check(False, "a provider's 429 raises")
        except openai.RateLimitError as e:
            check(seen["calls"] == 3, f"RateLimitError after one provider call per SDK attempt ({seen['calls']} for 3)")
            check("mock 429" in str(e), "the provider's message is in the error")

        seen["calls"] = 0
        try:
            client.chat.completions.create(model="openai/broken", messages=hi)
            check(False, "a provider's 503 raises")
        except openai.InternalServerError as e:
            check(e.status_code == 502 and seen["calls"] == 3,
                  f"502 after the gateway's own retries, not retried again by the SDK ({seen['calls']} calls)")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
