"""The abduce instrument protocol: models, codec; SPEC.md is the authority.

``models`` holds one pydantic model per ``msg_type``; ``codec`` turns frames
into verified messages and back (signing, replay refusal, checks in a fixed
order). ``SPEC.md`` beside this file is what another implementation follows;
``schema`` regenerates its JSON schemas from the models. Imports no torch.
"""

from abduce.instruments.protocol.codec import DROP_CODES, Codec, Keyring, Message, ProtocolError
from abduce.instruments.protocol.models import (
    ERROR_CODES,
    MESSAGES,
    PROTOCOL_VERSION,
    REJECT_CODES,
    SUPPORTED_VERSIONS,
    TAG,
    Abort,
    AbortReply,
    Ack,
    ArraySpec,
    Axis,
    Capabilities,
    Channel,
    Error,
    Header,
    Hello,
    Measure,
    Ping,
    Pong,
    Query,
    Reject,
    Result,
    ResultAck,
    SafeState,
    SafeStateReply,
    Welcome,
)

__all__ = [
    "Abort",
    "AbortReply",
    "Ack",
    "ArraySpec",
    "Axis",
    "Capabilities",
    "Channel",
    "Codec",
    "DROP_CODES",
    "ERROR_CODES",
    "Error",
    "Header",
    "Hello",
    "Keyring",
    "MESSAGES",
    "Measure",
    "Message",
    "PROTOCOL_VERSION",
    "Ping",
    "Pong",
    "ProtocolError",
    "Query",
    "REJECT_CODES",
    "Reject",
    "Result",
    "ResultAck",
    "SUPPORTED_VERSIONS",
    "SafeState",
    "SafeStateReply",
    "TAG",
    "Welcome",
]
