"""A commit the group refuses because it lost or is moving the partitions does
not stop a worker; any other refusal still does."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pantau.kafka import commit_done


class RefusingConsumer:
    """Stands in for a confluent-kafka consumer whose commits fail with ``code``."""

    def __init__(self, code: int | None) -> None:
        self.code = code
        self.calls: list[dict[str, Any]] = []

    def commit(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.code is not None:
            raise KafkaException(KafkaError(self.code))


def test_a_commit_that_goes_through_returns_true() -> None:
    consumer = RefusingConsumer(None)
    assert commit_done(consumer, "the batch") is True  # type: ignore[arg-type]
    assert consumer.calls == [{"asynchronous": False}]


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._ASSIGNMENT_LOST,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.NOT_COORDINATOR,
    ],
)
def test_a_lost_assignment_is_reported_not_raised(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = RefusingConsumer(code)
    assert commit_done(consumer, "the batch") is False  # type: ignore[arg-type]
    assert "offset commit refused; the batch will be delivered again" in caplog.text
    assert KafkaError(code).name() in caplog.text


def test_any_other_refusal_is_raised() -> None:
    consumer = RefusingConsumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException) as raised:
        commit_done(consumer, "the batch")  # type: ignore[arg-type]
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
