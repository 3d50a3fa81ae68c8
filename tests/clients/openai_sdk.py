"""The official openai Python SDK against a real Toolshed, as a user's code would call it.

Usage: python tests/clients/openai_sdk.py path/to/toolshed   (`.ci/clients` runs it)

Starts the mock OpenAI provider of mock_provider.py and the binary in front of it, and a little
HTTP server of images for the gateway to fetch, then checks what the SDK makes of each answer
(text, streams, embeddings, errors, structured outputs, tool calls whole and streamed, images)
and what the provider received. Exits non-zero with the failed check's message.
"""
import base64
import http.server
import json
import sys
import threading

import openai
import pydantic

from mock_provider import TOOL_ANSWER, TOOL_ARGUMENTS, check, gateway, seen

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}
# Not a whole PNG: the gateway only reads the magic bytes.
PNG = b"\x89PNG\r\n\x1a\n" + b"not really pixels"
IMAGES = {"/cat.png": PNG, "/notes.txt": b"plain text, not an image"}


class Images(http.server.BaseHTTPRequestHandler):
    """Serves IMAGES for the gateway to fetch (the outbound guard lets 127.0.0.1 through)."""
    def do_GET(self):
        body = IMAGES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


def image_urls(message):
    """The image_url URLs of a message the provider received."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]


def main():
    images = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Images)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    with gateway(sys.argv[1]) as (port, token):
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

        tool_calls(client)
        pictures(client, f"http://127.0.0.1:{images.server_address[1]}")
    images.shutdown()


def tool_calls(client):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL],
                                           tool_choice="auto", parallel_tool_calls=False)
    sent = seen["last"]
    check([t["function"]["name"] for t in sent.get("tools", [])] == ["get_weather"]
          and sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["function"]["parameters"]
          and sent.get("tool_choice") == "auto" and sent.get("parallel_tool_calls") is False,
          "tools, tool_choice and parallel_tool_calls reach the provider")
    choice = reply.choices[0]
    call = (choice.message.tool_calls or [None])[0]
    check(choice.finish_reason == "tool_calls" and choice.message.content is None and call is not None
          and call.type == "function" and call.function.name == "get_weather"
          and json.loads(call.function.arguments) == {"city": "Paris"},
          "a whole tool call: message.tool_calls parsed by the SDK, finish_reason tool_calls")

    # The round trip as the OpenAI docs write it: the assistant's message back, then the result.
    follow = ask + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
    ]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=follow, tools=[WEATHER_TOOL])
    sent = seen["last"]["messages"]
    check(answer.choices[0].message.content == TOOL_ANSWER and answer.choices[0].finish_reason == "stop",
          "a tool result sent back is answered with text")
    check([m["role"] for m in sent] == ["user", "assistant", "tool"]
          and [c["id"] for c in sent[1].get("tool_calls", [])] == [call.id]
          and sent[2].get("tool_call_id") == call.id and sent[2].get("content") == '{"sky": "sunny"}',
          "the provider sees the assistant's tool_calls and the tool message with its tool_call_id")

    # The SDK's own message object appended as is, as many users write it.
    answer = client.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=ask + [
        reply.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    check(answer.choices[0].message.content == TOOL_ANSWER,
          "the SDK's ChatCompletionMessage appended as is makes a valid follow-up")

    # Streamed: the deltas accumulated by index, as the OpenAI docs do it.
    calls, finish = {}, None
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL], stream=True):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                acc = calls.setdefault(delta.index, {"id": None, "type": None, "name": "", "arguments": ""})
                acc["id"] = delta.id or acc["id"]
                acc["type"] = delta.type or acc["type"]
                if delta.function:
                    acc["name"] += delta.function.name or ""
                    acc["arguments"] += delta.function.arguments or ""
    check(finish == "tool_calls" and list(calls) == [0] and calls[0]["id"] and calls[0]["type"] == "function"
          and calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"},
          "a streamed tool call: delta.tool_calls accumulate to get_weather({\"city\": \"Paris\"})")
    fragments = 0
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL], stream=True):
        fragments += sum(1 for c in chunk.choices for d in c.delta.tool_calls or []
                         if d.function and d.function.arguments)
    check(fragments >= 2, f"the arguments stream as fragments ({fragments} chunks with arguments)")

    with client.chat.completions.stream(model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL]) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    message = final.choices[0].message
    check(final.choices[0].finish_reason == "tool_calls" and len(message.tool_calls or []) == 1
          and message.tool_calls[0].function.name == "get_weather"
          and json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"},
          "chat.completions.stream(): get_final_completion() has the tool call")
    check([(e.name, e.arguments) for e in done] == [("get_weather", TOOL_ARGUMENTS)],
          "chat.completions.stream(): one tool_calls.function.arguments.done event with the whole arguments")

    with client.chat.completions.stream(model="gpt-4o-mini", messages=follow, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    check(final.choices[0].message.content == TOOL_ANSWER and seen["last"]["messages"][2].get("tool_call_id") == call.id,
          "a streamed follow-up with the tool result is answered with text")

    class GetWeather(pydantic.BaseModel):
        city: str

    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=ask,
                                       tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")])
        check(False, "a strict tool is refused, not silently loosened")
    except openai.BadRequestError as e:
        check(e.param == "tools" and "strict" in str(e),
              "a strict tool (pydantic_function_tool) is refused by name, param tools")


def pictures(client, images_base):
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()

    def look(url):
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": url}}]}])

    reply = look(data_url)
    sent = seen["last"]["messages"][-1]
    check(reply.choices[0].message.content == "Hello" and image_urls(sent) == [data_url]
          and any(p.get("type") == "text" and p.get("text") == "What is in this picture?" for p in sent["content"]),
          "an image part as a data: URL reaches the provider as an image_url part, data:image/png;base64")

    reply = look(images_base + "/cat.png")
    check(reply.choices[0].message.content == "Hello" and image_urls(seen["last"]["messages"][-1]) == [data_url],
          "an image http URL is fetched by the gateway and reaches the provider as a data:image/png URL")

    for path, why in (("/notes.txt", "bytes that are not an image"), ("/missing.png", "an image URL answering 404")):
        seen["calls"] = 0
        try:
            look(images_base + path)
            check(False, f"{why} is refused")
        except openai.BadRequestError as e:
            check(e.status_code == 400 and seen["calls"] == 0, f"{why}: 400 before the provider is called")


if __name__ == "__main__":
    main()
