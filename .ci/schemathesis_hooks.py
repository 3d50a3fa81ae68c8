"""Audio bodies for Schemathesis (.ci/api-conformance loads this as SCHEMATHESIS_HOOKS).

It cannot make bytes of a media type it does not know. Each audio type the transcription
routes take gets the first bytes its format starts with, then arbitrary bytes, or only
arbitrary bytes: both the accepted and the refused paths are exercised.
"""

from hypothesis import strategies as st

import schemathesis

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
HEADS = {
    "audio/wav": WAV,
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "audio/ogg": b"OggS\x00\x02",
    "audio/webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01",
    "audio/mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    "audio/flac": b"fLaC\x00\x00\x00\x22",
}

for media_type, head in HEADS.items():
    schemathesis.openapi.media_type(
        media_type,
        st.one_of(
            st.binary(max_size=256).map(lambda tail, head=head: head + tail),
            st.binary(max_size=64),
        ),
    )
