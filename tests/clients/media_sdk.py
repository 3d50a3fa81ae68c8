"""The official openai Python SDK's images and audio transcriptions against a real Toolshed.

Usage: python tests/clients/media_sdk.py path/to/toolshed   (`.ci/clients` runs it)

Starts the mock OpenAI provider of mock_provider.py and the binary in front of it, then checks
what `client.images.generate(...)` and `client.audio.transcriptions.create(...)` make of
Toolshed's answers, what the provider received, and that answers are cached. Exits non-zero
with the failed check's message.
"""
import base64
import hashlib
import io
import os
import sys
import tempfile
import urllib.request
import wave

import openai

from mock_provider import TRANSCRIPT, check, gateway, image_bytes, seen


def fetch(url, token):
    """The bytes at url, asked with the token."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def speech_wav():
    """A real (silent) WAV: a quarter second of 16 kHz mono 16-bit."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 4000)
    return out.getvalue()


def main():
    with gateway(sys.argv[1]) as (port, token):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/api/ai/llm/v1", api_key=token, max_retries=2)
        images(client, port, token)
        transcriptions(client)


def images(client, port, token):
    files = f"http://127.0.0.1:{port}/api/ai/img/files/"

    # gpt-image-1: the provider answers b64_json.
    prompt = "a lighthouse at dusk"
    png = image_bytes("gpt-image-1", prompt)
    seen["images"].clear()
    made = client.images.generate(model="gpt-image-1", prompt=prompt, size="1024x1024", response_format="b64_json")
    check(len(made.data) == 1 and made.data[0].b64_json and base64.b64decode(made.data[0].b64_json) == png,
          "images.generate(gpt-image-1, b64_json): data[0].b64_json decodes to the provider's image")
    check(seen["images"] == [{"model": "gpt-image-1", "prompt": prompt, "n": 1, "size": "1024x1024"}],
          f"the provider got POST /images/generations {{model, prompt, n: 1, size}} ({seen['images']})")
    check(isinstance(made.created, int) and made.created > 0, "the answer has created")

    again = client.images.generate(model="gpt-image-1", prompt=prompt, size="1024x1024", response_format="b64_json")
    check(base64.b64decode(again.data[0].b64_json) == png and len(seen["images"]) == 1,
          f"a second identical images.generate is served from the cache ({len(seen['images'])} provider call)")

    by_url = client.images.generate(model="gpt-image-1", prompt=prompt, size="1024x1024", response_format="url")
    url = by_url.data[0].url or ""
    check(url == files + hashlib.sha256(png).hexdigest() and len(seen["images"]) == 1,
          f"response_format url: the same cached image as an absolute URL on the instance ({url})")
    check(fetch(url, token) == png, "the URL serves the image's bytes")

    prefixed = client.images.generate(model="openai/gpt-image-1", prompt="a blue door", size="1024x1024",
                                      response_format="b64_json", output_format="png")
    check(base64.b64decode(prefixed.data[0].b64_json) == image_bytes("gpt-image-1", "a blue door")
          and seen["images"][-1] == {"model": "gpt-image-1", "prompt": "a blue door", "n": 1, "size": "1024x1024",
                                     "output_format": "png"},
          "model openai/gpt-image-1 reaches the provider as gpt-image-1, with output_format")

    # dall-e-3: the provider answers a url, which the gateway downloads through its guard.
    prompt = "a red fox in the snow"
    jpeg = image_bytes("dall-e-3", prompt)
    seen["images"].clear()
    seen["downloads"].clear()
    made = client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024", response_format="url")
    url = made.data[0].url or ""
    check(seen["images"] == [{"model": "dall-e-3", "prompt": prompt, "n": 1, "size": "1024x1024"}]
          and len(seen["downloads"]) == 1,
          f"images.generate(dall-e-3): the provider's url answer is downloaded by the gateway ({seen['downloads']})")
    check(url == files + hashlib.sha256(jpeg).hexdigest() and fetch(url, token) == jpeg,
          "images.generate(dall-e-3, url): an absolute URL on the instance serving the provider's JPEG")
    made = client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024", response_format="b64_json")
    check(base64.b64decode(made.data[0].b64_json or "") == jpeg and len(seen["images"]) == 1
          and len(seen["downloads"]) == 1,
          "images.generate(dall-e-3, b64_json): the cached image, no new provider call or download")

    seen["images"].clear()
    try:
        client.images.generate(model="gpt-image-1", prompt="two cats", size="1024x1024", n=2)
        check(False, "n=2 is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.param == "n" and not seen["images"],
              "images.generate(n=2): BadRequestError with param n, before the provider is called")


def transcriptions(client):
    wav = speech_wav()
    text = TRANSCRIPT["text"].strip()
    seen["transcriptions"].clear()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        with open(path, "wb") as f:
            f.write(wav)
        with open(path, "rb") as f:
            answer = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="json")
    check(answer.text == text, f"audio.transcriptions.create(whisper-1, file=open(wav), json): .text ({answer.text!r})")
    sent = seen["transcriptions"][0] if seen["transcriptions"] else {}
    file = sent.get("file") or {}
    check(sent.get("model") == "whisper-1" and sent.get("response_format") == "verbose_json",
          f"the provider got model whisper-1 and response_format verbose_json ({ {k: v for k, v in sent.items() if k != 'file'} })")
    check(file.get("bytes") == wav and file.get("filename") == "audio.wav" and file.get("type") == "audio/wav",
          f"the provider got the WAV's bytes as file audio.wav, audio/wav ({file.get('filename')}, {file.get('type')})")
    check(not {"language", "prompt", "temperature"} & set(sent), "no language, prompt or temperature when none is given")

    upload = ("speech.wav", wav, "audio/wav")
    plain = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="text")
    check(isinstance(plain, str) and plain.strip() == text, f"response_format text: a str ({plain!r})")

    verbose = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="verbose_json")
    segments = verbose.segments or []
    check(verbose.text == text and verbose.duration == 2.5 and verbose.language == "english"
          and [(s.start, s.end, s.text.strip()) for s in segments] == [(0.0, 1.25, "Hello there."), (1.25, 2.5, "Bye.")],
          "response_format verbose_json: text, duration, language and the timed segments")

    srt = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="srt")
    check(isinstance(srt, str) and srt.startswith("1\n00:00:00,000 --> ")
          and srt.startswith("1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n00:00:01,250 --> 00:00:02,500\nBye."),
          f"response_format srt: numbered cues with comma milliseconds ({srt!r})")
    vtt = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="vtt")
    check(isinstance(vtt, str) and vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello there."),
          f"response_format vtt: WEBVTT with dot milliseconds ({vtt!r})")

    raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=upload, response_format="json")
    check(raw.headers.get("x-cache") == "HIT" and raw.parse().text == text and len(seen["transcriptions"]) == 1,
          f"every format of the same audio and options from one provider call, then X-Cache HIT ({len(seen['transcriptions'])} calls)")

    segment = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="verbose_json",
                                                 timestamp_granularities=["segment"])
    check(len(segment.segments or []) == 2 and len(seen["transcriptions"]) == 1,
          "timestamp_granularities [segment] is taken (and cached)")

    tuned = client.audio.transcriptions.create(model="whisper-1", file=upload, language="en",
                                               prompt="Names: Ada.", temperature=0.2)
    sent = seen["transcriptions"][-1]
    check(tuned.text == text and len(seen["transcriptions"]) == 2
          and (sent.get("language"), sent.get("prompt"), sent.get("temperature")) == ("en", "Names: Ada.", "0.2"),
          "language, prompt and temperature reach the provider, as a new cache entry")

    for why, kwargs, param in (
        ("timestamp_granularities [word]", {"timestamp_granularities": ["word"], "response_format": "verbose_json"},
         "timestamp_granularities"),
        ("include [logprobs]", {"include": ["logprobs"]}, "include"),
        ("chunking_strategy auto", {"chunking_strategy": "auto"}, "chunking_strategy"),
    ):
        try:
            client.audio.transcriptions.create(model="whisper-1", file=upload, **kwargs)
            check(False, f"{why} is refused")
        except openai.BadRequestError as e:
            check(e.status_code == 400 and (e.param or "").startswith(param) and len(seen["transcriptions"]) == 2,
                  f"{why}: BadRequestError naming {e.param!r}, before the provider is called")

    try:
        client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", b"plain text, not audio", "audio/wav"))
        check(False, "bytes that are not audio are refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and len(seen["transcriptions"]) == 2,
              "bytes that are not a WAV: BadRequestError before the provider is called")


if __name__ == "__main__":
    main()
