"""Talking to JetStream: the relay's pipelined publisher, and reading a delivery's metadata."""

from __future__ import annotations

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from meshkit.events._nats import JetStreamPublisher
from meshkit.events._puller import delivery_of
from meshkit.events.relay import MSG_ID, Outgoing
from meshkit.events.streams import EVENTS_STREAM


def _message(number: int, *, subject: str = "plugmesh.events.user.created") -> Outgoing:
    return Outgoing(subject, f"event {number}".encode(), {MSG_ID: f"id-{number}"})


async def test_a_batch_gets_the_stream_sequence_of_every_message_in_order(nc: Client) -> None:
    publisher = JetStreamPublisher(nc)

    first = await publisher.publish_batch([_message(n) for n in range(300)], timeout_seconds=5)
    second = await publisher.publish_batch(
        [_message(n) for n in range(300, 310)], timeout_seconds=5
    )

    assert first == list(range(1, 301))
    assert second == list(range(301, 311))
    stored = await nc.jetstream().get_msg(EVENTS_STREAM, 7)
    assert stored.data == b"event 6"
    assert stored.headers == {MSG_ID: "id-6"}


async def test_a_message_sent_again_gets_the_sequence_of_its_first_copy(nc: Client) -> None:
    publisher = JetStreamPublisher(nc)
    await publisher.publish_batch([_message(1), _message(2)], timeout_seconds=5)

    again = await publisher.publish_batch([_message(2), _message(3)], timeout_seconds=5)

    assert again == [2, 3]


async def test_a_message_no_stream_takes_fails_alone(nc: Client) -> None:
    publisher = JetStreamPublisher(nc)

    results = await publisher.publish_batch(
        [_message(1), _message(2, subject="nowhere.at.all"), _message(3)], timeout_seconds=5
    )

    assert results[0] == 1
    assert results[2] == 2
    assert isinstance(results[1], str)
    assert "no stream" in results[1]


async def test_an_empty_batch_returns_at_once(nc: Client) -> None:
    assert await JetStreamPublisher(nc).publish_batch([], timeout_seconds=5) == []


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.PLUGMESH_EVENTS.audit-all.3.1234.77.1700000000000000000.5",
        "$JS.ACK.hub.ACCOUNTHASH.PLUGMESH_EVENTS.audit-all.3.1234.77.1700000000000000000.5.rnd",
    ],
)
def test_the_attempt_and_sequence_are_read_from_the_reply_subject(reply: str) -> None:
    msg = Msg(None, subject="plugmesh.events.user.created", reply=reply)  # type: ignore[arg-type]

    assert delivery_of(msg) == (3, 1234)
    assert delivery_of(msg) == (msg.metadata.num_delivered, msg.metadata.sequence.stream)
