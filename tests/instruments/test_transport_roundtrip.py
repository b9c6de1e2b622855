"""Every message type through real sockets: DEALER -> ROUTER and back, over inproc:// and TCP."""

import pytest
import zmq

from abduce.instruments.protocol.codec import Codec
from tests.instruments.test_codec import examples


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_every_message_type_round_trips_over_sockets(keyring, transport):
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    router.bind("inproc://roundtrip" if transport == "inproc" else "tcp://127.0.0.1:0")  # a free port, no race
    dealer.connect(router.last_endpoint.decode())
    controller, agent = Codec(keyring, "lab"), Codec(keyring, "lab")
    try:
        for msg_type, (content, buffers) in examples().items():
            dealer.send_multipart(agent.encode(content, metadata={"x": [1, {"y": None}]}, buffers=buffers))
            assert router.poll(60_000)
            got = controller.decode(router.recv_multipart())
            assert got.msg_type == msg_type and got.content == content and list(got.buffers) == list(buffers)
            assert len(got.identities) == 1
            router.send_multipart(
                controller.encode(content, parent=got.header, buffers=buffers, identities=got.identities)
            )
            assert dealer.poll(60_000)
            back = agent.decode(dealer.recv_multipart())
            assert back.content == content and back.parent == got.header and back.identities == ()
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()
