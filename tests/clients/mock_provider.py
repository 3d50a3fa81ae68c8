"""What the client judges share: a mock OpenAI provider, a Toolshed binary in front of it, check().

The mock answers Chat Completions, whole and streamed, and embeddings, as OpenAI documents them:
- an upstream model named `rate-limited` answers 429 with `retry-after: 1`, one named `broken` 503;
- a request whose last message is a `tool` result answers "It is sunny in Paris.";
- otherwise a request with `tools` answers a call of get_weather with {"city": "Paris"}
  (whole: `message.tool_calls`, content null; streamed: a first chunk with index, id, type,
  name and empty arguments, two chunks with the arguments' halves, then a finish chunk),
  finish_reason "tool_calls";
- a `json_schema` response_format answers {"value": 42}; anything else "Hello".
`seen["last"]` is the last request body the provider received, `seen["calls"]` their count.

It also answers OpenAI's Images and transcription APIs:
- `POST /images/generations`: image_bytes(model, prompt) — a PNG for a GPT image model, as
  `b64_json`; a JPEG for a `dall-e-*` model, as a `url` on the mock itself (`GET /files/…`);
  each request body is appended to `seen["images"]`, each download's path to
  `seen["downloads"]`;
- `POST /audio/transcriptions` (multipart): TRANSCRIPT in the `response_format` asked
  (`verbose_json` with two timed segments, `json` or `text`); each request's parts are appended
  to `seen["transcriptions"]` as {name: value}, the file part as {"filename", "type", "bytes"}.
"""
import base64
import contextlib
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

seen = {"calls": 0, "last": None, "images": [], "downloads": [], "transcriptions": []}

TOOL_CALL_ID = "call_weather_1"
TOOL_ARGUMENTS = '{"city": "Paris"}'
TOOL_ANSWER = "It is sunny in Paris."

# What the mock transcribes any audio to, as OpenAI's verbose_json answers it.
TRANSCRIPT = {
    "task": "transcribe", "language": "english", "duration": 2.5, "text": " Hello there. Bye.",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.25, "text": " Hello there.", "tokens": [50364, 2425, 456, 13],
         "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 0.9, "no_speech_prob": 0.01},
        {"id": 1, "seek": 0, "start": 1.25, "end": 2.5, "text": " Bye.", "tokens": [50426, 4621, 13],
         "temperature": 0.0, "avg_logprob": -0.3, "compression_ratio": 0.9, "no_speech_prob": 0.02},
    ],
}
# Files the mock serves for the images it answers by URL: path -> bytes.
served = {}


def image_bytes(model, prompt):
    """The image the mock makes: not whole images, the gateway only reads the magic bytes."""
    magic = b"\xff\xd8\xff\xe0" if model.startswith("dall-e") else b"\x89PNG\r\n\x1a\n"
    return magic + f"{model}: {prompt}".encode()


def multipart(content_type, body):
    """The parts of a multipart/form-data body: {name: text}, a file part as a dict."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    parts = {}
    for part in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(
            (k.strip(), v.strip().strip('"'))
            for k, _, v in (p.partition("=") for p in headers.get("content-disposition", "").split(";")[1:])
        )
        if "filename" in params:
            parts[params["name"]] = {"filename": params["filename"], "type": headers.get("content-type"), "bytes": data}
        else:
            parts[params["name"]] = data.decode()
    return parts


def reply(body):
    """What the provider answers this chat request: (content, tool_calls, finish_reason)."""
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return TOOL_ANSWER, None, "stop"
    if body.get("tools") and not any(m.get("role") == "tool" for m in messages):
        call = {"id": TOOL_CALL_ID, "type": "function",
                "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS}}
        return None, [call], "tool_calls"
    if (body.get("response_format") or {}).get("type") == "json_schema":
        return '{"value": 42}', None, "stop"
    return "Hello", None, "stop"


def stream_chunks(content, tool_calls, finish_reason):
    """The chunks' `choices` (and a last usage chunk), as OpenAI streams them."""
    if tool_calls:
        call = tool_calls[0]
        half = len(TOOL_ARGUMENTS) // 2
        first = {"index": 0, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [first]},
                          "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[:half]}}]},
                          "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS[half:]}}]},
                          "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]},
        ]
    else:
        half = (len(content) + 1) // 2
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": content[:half]}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": content[half:]}, "finish_reason": finish_reason}]},
        ]
    return chunks + [{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}]


class Provider(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen["downloads"].append(self.path)
        body = served.get(self.path)
        self.answer(200 if body else 404, body or b"", "application/octet-stream")

    def read_body(self):
        """The request body, sent with a content-length or chunked."""
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return body

    def do_POST(self):
        raw = self.read_body()
        if self.path.endswith("/audio/transcriptions"):
            self.transcribe(multipart(self.headers.get("content-type", ""), raw))
            return
        body = json.loads(raw)
        if self.path.endswith("/images/generations"):
            self.image(body)
            return
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
        content, tool_calls, finish_reason = reply(body)
        if body.get("stream"):
            text = "".join(
                "data: " + json.dumps(dict(c, id="c1", object="chat.completion.chunk", created=1, model=model)) + "\n\n"
                for c in stream_chunks(content, tool_calls, finish_reason)
            ) + "data: [DONE]\n\n"
            self.answer(200, text.encode(), "text/event-stream")
            return
        message = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        answer = {
            "id": "c1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        self.answer(200, json.dumps(answer).encode(), "application/json")

    def image(self, body):
        seen["images"].append(body)
        model, image = body.get("model"), image_bytes(body.get("model", ""), body.get("prompt", ""))
        if model.startswith("dall-e"):
            path = f"/files/{hashlib.sha256(image).hexdigest()}.jpg"
            served[path] = image
            datum = {"url": f"http://127.0.0.1:{self.server.server_address[1]}{path}", "revised_prompt": body.get("prompt")}
        else:
            datum = {"b64_json": base64.b64encode(image).decode()}
        self.answer(200, json.dumps({"created": 1, "data": [datum]}).encode(), "application/json")

    def transcribe(self, parts):
        seen["transcriptions"].append(parts)
        fmt = parts.get("response_format", "json")
        if fmt == "text":
            self.answer(200, (TRANSCRIPT["text"] + "\n").encode(), "text/plain; charset=utf-8")
            return
        answer = TRANSCRIPT if fmt == "verbose_json" else {"text": TRANSCRIPT["text"]}
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


@contextlib.contextmanager
def gateway(binary):
    """The mock provider and the binary in front of it (only OPENAI_* configured, the
    outbound guard letting 127.0.0.1 through for fetched images, and the default speech model
    OpenAI's whisper-1 at the mock): yields (port, token)."""
    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    port = free_port()
    token = "clients-test-token-0123456789"
    env = {
        "PATH": os.environ.get("PATH", ""), "ENV": "test", "PORT": str(port),
        "TOOLSHED_DATA_DIR": tempfile.mkdtemp(prefix="toolshed-clients-"),
        "TOOLSHED_API_TOKENS": token, "TOOLSHED_LLM_MAX_RETRIES": "2",
        "TOOLSHED_OUTBOUND_ALLOW_HOSTS": "127.0.0.1", "TOOLSHED_TRANSCRIBE_MODEL": "openai/whisper-1",
        "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{provider.server_address[1]}/v1",
    }
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"FAIL: the binary exited with {server.returncode} before listening")
                time.sleep(0.1)
        yield port, token
    finally:
        server.kill()
        server.wait()
        provider.shutdown()
