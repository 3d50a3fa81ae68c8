"""The official anthropic Python SDK against a real Toolshed's Anthropic face (POST
/api/ai/llm/v1/messages), as a user's code would call it.

Usage: python tests/clients/anthropic_sdk.py path/to/toolshed   (`.ci/clients` runs it)

Only OpenAI is configured (the mock provider of mock_provider.py), so every answer is an OpenAI
one translated to the Messages wire: text, tool_use blocks whole and streamed, tool_result
blocks back, images, Anthropic-shaped errors. Exits non-zero with the failed check's message.
"""
import base64
import sys

import anthropic

from mock_provider import TOOL_ANSWER, check, gateway, seen

WEATHER_TOOL = {
    "name": "get_weather", "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
MODEL = "gpt-4o-mini"


def main():
    with gateway(sys.argv[1]) as (port, token):
        # The SDK sends the key as x-api-key; the gateway takes it as its API token.
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}/api/ai/llm", api_key=token, max_retries=0)
        hi = [{"role": "user", "content": "Hi"}]

        reply = client.messages.create(model=MODEL, max_tokens=100, messages=hi)
        check(reply.type == "message" and reply.role == "assistant" and reply.stop_reason == "end_turn"
              and [(b.type, b.text) for b in reply.content] == [("text", "Hello")],
              "messages.create(): a text answer from the OpenAI provider, stop_reason end_turn")
        check(reply.usage.input_tokens == 3 and reply.usage.output_tokens == 2, "usage as input_tokens and output_tokens")

        client.messages.create(model=MODEL, max_tokens=100, system="Be brief.", messages=hi)
        first = seen["last"]["messages"][0]
        check(first.get("role") == "system" and "Be brief." in str(first.get("content")),
              "the system prompt reaches the OpenAI provider as a system message")

        with client.messages.stream(model=MODEL, max_tokens=100, messages=hi) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        check(text == "Hello" and final.stop_reason == "end_turn", "messages.stream(): text_stream gives the text")

        tool_use(client)
        pictures(client)

        try:
            client.messages.create(model="gpt-9", max_tokens=100, messages=hi)
            check(False, "an unknown model raises")
        except anthropic.NotFoundError as e:
            check("gpt-9" in str(e) and e.status_code == 404 and e.body.get("type") == "error"
                  and e.body["error"]["type"] == "not_found_error",
                  "an unknown model raises NotFoundError, not_found_error, naming the model")

        try:
            # This SDK no longer takes top_k as an argument; a caller can still send it.
            client.messages.create(model=MODEL, max_tokens=100, messages=hi, extra_body={"top_k": 5})
            check(False, "a field the gateway cannot honour is refused")
        except anthropic.BadRequestError as e:
            check("top_k" in str(e) and e.body["error"]["type"] == "invalid_request_error",
                  "a field the gateway cannot honour (top_k) is refused by name, invalid_request_error")

        bad = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}/api/ai/llm", api_key="wrong-token", max_retries=0)
        try:
            bad.messages.create(model=MODEL, max_tokens=100, messages=hi)
            check(False, "a wrong x-api-key is refused")
        except anthropic.AuthenticationError as e:
            # The token check runs before any face, in Toolshed's own shape (documented);
            # the SDK still raises the right class, with a message that names its header.
            check(e.status_code == 401 and "x-api-key" in str(e),
                  "a wrong x-api-key raises AuthenticationError naming the header")


def tool_use(client):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.messages.create(model=MODEL, max_tokens=100, messages=ask, tools=[WEATHER_TOOL],
                                   tool_choice={"type": "auto"})
    sent = seen["last"]
    check([t["function"]["name"] for t in sent.get("tools", [])] == ["get_weather"]
          and sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"],
          "the tool reaches the OpenAI provider as a function with input_schema as its parameters")
    uses = [b for b in reply.content if b.type == "tool_use"]
    check(reply.stop_reason == "tool_use" and len(uses) == 1 and isinstance(uses[0], anthropic.types.ToolUseBlock)
          and uses[0].name == "get_weather" and uses[0].input == {"city": "Paris"} and uses[0].id,
          "messages.create() with a tool: stop_reason tool_use, a ToolUseBlock get_weather({\"city\": \"Paris\"})")

    # The round trip as the Anthropic docs write it: the assistant's content back as is.
    follow = ask + [
        {"role": "assistant", "content": reply.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"}]},
    ]
    answer = client.messages.create(model=MODEL, max_tokens=100, messages=follow, tools=[WEATHER_TOOL])
    check(answer.stop_reason == "end_turn" and [(b.type, b.text) for b in answer.content] == [("text", TOOL_ANSWER)],
          "a tool_result sent back is answered with text")
    sent = seen["last"]["messages"]
    tool_messages = [m for m in sent if m.get("role") == "tool"]
    assistant = [m for m in sent if m.get("role") == "assistant"]
    check(len(tool_messages) == 1 and tool_messages[0].get("tool_call_id") == uses[0].id
          and "sunny" in str(tool_messages[0].get("content"))
          and len(assistant) == 1 and [c["id"] for c in assistant[0].get("tool_calls", [])] == [uses[0].id]
          and [c["function"]["name"] for c in assistant[0]["tool_calls"]] == ["get_weather"],
          "the provider sees the tool_use as tool_calls and the tool_result as a tool message with its id")

    with client.messages.stream(model=MODEL, max_tokens=100, messages=ask, tools=[WEATHER_TOOL]) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    check(final.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather"
          and uses[0].input == {"city": "Paris"},
          "messages.stream() with a tool: get_final_message() has the tool_use with its input parsed")
    check(events[0] == "message_start" and events[-1] == "message_stop" and "input_json" in events
          and "content_block_start" in events and "content_block_stop" in events and "message_delta" in events,
          f"messages.stream(): the typed events, input_json among them ({', '.join(dict.fromkeys(events))})")

    with client.messages.stream(model=MODEL, max_tokens=100, messages=follow, tools=[WEATHER_TOOL]) as stream:
        text = "".join(stream.text_stream)
    check(text == TOOL_ANSWER, "messages.stream() of the follow-up with the tool_result streams the text")


def pictures(client):
    png = b"\x89PNG\r\n\x1a\n" + b"not really pixels"
    data = base64.b64encode(png).decode()
    reply = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What is in this picture?"}]}])
    parts = seen["last"]["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    check(reply.content[0].text == "Hello" and urls == ["data:image/png;base64," + data],
          "an image block reaches the OpenAI provider as an image_url part, data:image/png;base64")


if __name__ == "__main__":
    main()
