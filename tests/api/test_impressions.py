"""Impressions, counts, unique keys and events: recorded as Split does, sent after responses."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from worker.impressions import HOUR_MS, Outbox, Recorder, Sender
from worker.results import Result

HOUR = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS
ON = Result("on", "rule", None, 12)
OFF = Result("off", "default rule", None, 12)


def test_optimized_sends_an_impression_once_per_hour_and_counts_repeats():
    recorder = Recorder("OPTIMIZED")
    recorder.record("k", None, {"f": ON}, HOUR + 10)
    recorder.record("k", None, {"f": ON}, HOUR + 20)
    recorder.record("k", None, {"f": ON}, HOUR + 30)
    recorder.record("k", None, {"f": OFF}, HOUR + 40)  # another treatment: a new impression
    recorder.record("k", None, {"f": ON}, HOUR + HOUR_MS + 5)  # the next hour: sent again
    batch = recorder.take(HOUR + HOUR_MS + 5, everything=True)
    assert [(i["t"], i["m"], i.get("pt")) for i in batch.impressions] == [
        ("on", HOUR + 10, None),
        ("off", HOUR + 40, None),
        ("on", HOUR + HOUR_MS + 5, HOUR + 30),
    ]
    assert batch.counts == {("f", HOUR): 2, ("f", HOUR + HOUR_MS): 1}


def test_debug_sends_every_impression_with_its_previous_time():
    recorder = Recorder("DEBUG")
    for t in (1, 2, 3):
        recorder.record("k", "b", {"f": ON}, HOUR + t)
    batch = recorder.take(HOUR + 3, everything=True)
    assert [(i["m"], i.get("pt"), i["b"]) for i in batch.impressions] == [
        (HOUR + 1, None, "b"),
        (HOUR + 2, HOUR + 1, "b"),
        (HOUR + 3, HOUR + 2, "b"),
    ]
    assert batch.counts == {}


def test_none_mode_and_impressions_disabled_flags_only_count_and_collect_unique_keys():
    recorder = Recorder("NONE")
    recorder.record("a", None, {"f": ON, "g": OFF}, HOUR)
    recorder.record("b", None, {"f": ON}, HOUR + 1)
    batch = recorder.take(HOUR + 1, everything=True)
    assert batch.impressions == []
    assert batch.counts == {("f", HOUR): 2, ("g", HOUR): 1}
    assert batch.unique_keys == {"f": {"a", "b"}, "g": {"a"}}

    optimized = Recorder("OPTIMIZED")
    optimized.record("a", None, {"quiet": ON._replace(impressions_disabled=True), "loud": ON}, HOUR)
    batch = optimized.take(HOUR, everything=True)
    assert [i["f"] for i in batch.impressions] == ["loud"]
    assert batch.unique_keys == {"quiet": {"a"}}


def test_evaluations_split_records_nothing_for_are_skipped():
    recorder = Recorder("DEBUG")
    recorder.record(
        "k",
        None,
        {"gone": Result("control", "definition not found", None, None, impression=False)},
        HOUR,
    )
    assert not recorder.take(HOUR, everything=True)


def test_every_buffer_is_bounded():
    recorder = Recorder("DEBUG", max_impressions=3, observer_size=2)
    for i in range(10):
        recorder.record(f"k{i}", None, {"f": ON}, HOUR + i)
    batch = recorder.take(HOUR + 10)
    assert [i["k"] for i in batch.impressions] == ["k7", "k8", "k9"]
    assert len(recorder._seen) == 2


def test_counts_wait_for_30_seconds_unless_everything_is_asked():
    recorder = Recorder("OPTIMIZED")
    recorder.record("k", None, {"f": ON}, HOUR)
    recorder.record("k", None, {"f": ON}, HOUR + 1)
    assert recorder.take(HOUR + 1000).counts == {}
    assert recorder.take(HOUR + 31_000).counts == {("f", HOUR): 1}


def test_sender_posts_split_payloads(fake_events):
    recorder = Recorder("OPTIMIZED")
    recorder.record("k", "b", {"f": ON}, HOUR)
    recorder.record("k", "b", {"f": ON}, HOUR + 1)
    recorder.track(
        {
            "key": "k",
            "trafficTypeName": "user",
            "eventTypeId": "buy",
            "value": 3.5,
            "properties": None,
            "timestamp": HOUR,
        }
    )
    batch = recorder.take(HOUR + 1, everything=True)

    async def send():
        async with httpx.AsyncClient() as client:
            sender = Sender(
                client,
                "sdk-key",
                events_url=fake_events.url,
                telemetry_url=fake_events.url,
                mode="OPTIMIZED",
            )
            return await sender.send(batch)

    assert not asyncio.run(send())
    bulk = fake_events.received[0]
    assert bulk.path == "/api/testImpressions/bulk"
    assert bulk.headers["authorization"] == "Bearer sdk-key"
    assert bulk.headers["splitsdkimpressionsmode"] == "OPTIMIZED"
    assert bulk.body == [
        {"f": "f", "i": [{"k": "k", "t": "on", "m": HOUR, "c": 12, "r": "rule", "b": "b"}]}
    ]
    assert fake_events.bodies("/testImpressions/count") == [
        {"pf": [{"f": "f", "m": HOUR, "rc": 1}]}
    ]
    assert fake_events.bodies("/events/bulk")[0][0]["eventTypeId"] == "buy"


def test_a_failing_events_api_keeps_the_batch_for_the_next_flush(fake_events):
    fake_events.status = 500

    async def scenario():
        async with httpx.AsyncClient() as client:
            sender = Sender(
                client, "k", events_url=fake_events.url, telemetry_url=fake_events.url, mode="DEBUG"
            )
            outbox = Outbox(Recorder("DEBUG"), sender, clock=lambda: HOUR / 1000)
            jobs = []
            outbox.record("k", None, {"f": ON})
            outbox.flush_later(jobs.append)
            await asyncio.gather(*jobs)
            assert len(outbox.recorder._pending.impressions) == 1  # kept
            fake_events.status = 200
            await outbox.flush()
            assert outbox.recorder._pending.impressions == []

    asyncio.run(scenario())
    assert len(fake_events.bodies("/testImpressions/bulk")) == 2


def test_without_a_sender_nothing_is_recorded():
    outbox = Outbox(Recorder("DEBUG"), None)
    outbox.record("k", None, {"f": ON})
    jobs: list = []
    outbox.flush_later(jobs.append)
    assert jobs == [] and not outbox.recorder.take(0, everything=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "user", "buy"), "key"),
        (("k", "", "buy"), "trafficType"),
        (("k", "user", "bad event!"), "eventType"),
        (("k", "user", "buy", "3"), "value must be a finite number"),
        (("k", "user", "buy", None, [1]), "properties must be a JSON object"),
        (("k", "user", "buy", None, {"big": "x" * 16_000}), "32 KB"),
    ],
)
def test_events_are_validated_as_split_validates_them(args, message):
    from worker.inputs import InputError, parse_event

    with pytest.raises(InputError, match=message):
        parse_event(*args)


def test_event_properties_keep_only_values_split_accepts():
    from worker.inputs import parse_event

    event = parse_event("k", "USER", "buy", 2, {"a": 1, "b": "x", "c": True, "d": None, "e": [1]})
    assert event["trafficTypeName"] == "user"
    assert event["properties"] == {"a": 1, "b": "x", "c": True, "d": None, "e": None}


def test_a_batch_the_events_api_refuses_for_good_is_dropped_not_retried(fake_events):
    fake_events.status = 400

    async def scenario():
        async with httpx.AsyncClient() as client:
            sender = Sender(
                client, "k", events_url=fake_events.url, telemetry_url=fake_events.url, mode="DEBUG"
            )
            outbox = Outbox(Recorder("DEBUG"), sender, clock=lambda: HOUR / 1000)
            outbox.record("k", None, {"f": ON})
            await outbox.flush()
            assert outbox.recorder._pending.impressions == []  # dropped, not requeued

    asyncio.run(scenario())
    assert len(fake_events.bodies("/testImpressions/bulk")) == 1
