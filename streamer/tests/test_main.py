"""The player: framing, pacing and position on their own (a fake clock), then the Player
against the real service, checked with the audio it played."""

from __future__ import annotations

import asyncio
import sys
import io
import random
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from media import ANALYSIS_RATE_HZ, decode, dominant_hz, duration_secs, middle
from streamer import Filters, RangeInvalid, TranscodeClient, UnsupportedFormat
from streamer.main import Player
from streamer.pacing import FRAME_BYTES, Framer, MonotonicClock, Pacer, Position
from streamer.sinks import FileSink, TgCallsSink

FRAME = 0.01

# ---------------------------------------------------------------- helpers


class FakeClock:
    """Virtual time: `sleep` moves it on by the time asked plus a random oversleep of up
    to `oversleep` seconds, and yields to the event loop."""

    def __init__(self, oversleep: float = 0.0, seed: int = 1) -> None:
        self.time = 1000.0
        self.oversleep = oversleep
        self.rng = random.Random(seed)

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += seconds + self.rng.uniform(0, self.oversleep)
        await asyncio.sleep(0)


class RecordingSink:
    """Keeps every frame with the clock time it was sent at; `on_frame(count)` runs
    after each frame (the hook a test uses to act in the middle of playback)."""

    def __init__(self, clock: FakeClock, cost: Callable[[int], float] = lambda _: 0.0) -> None:
        self.clock = clock
        self.cost = cost
        self.frames: list[bytes] = []
        self.times: list[float] = []
        self.on_frame: Callable[[int], Awaitable[None]] | None = None

    async def send(self, frame: bytes) -> None:
        self.times.append(self.clock.now())
        self.frames.append(frame)
        self.clock.time += self.cost(len(self.frames))
        if self.on_frame is not None:
            await self.on_frame(len(self.frames))

    def audio(self) -> np.ndarray:
        return decode(b"".join(self.frames), "pcm")


async def pace(pacer: Pacer, sink: RecordingSink, frames: int) -> np.ndarray:
    """Sends `frames` frames through `pacer` and returns their send times."""
    for _ in range(frames):
        await pacer.wait()
        await sink.send(bytes(FRAME_BYTES))
    return np.array(sink.times)


def tone_switches(frames: np.ndarray) -> list[float]:
    """The output times (s) where the audio switches between 440 Hz and 880 Hz, from the
    power of both tones in 20 ms Hann windows every 1 ms."""
    window, hop = 960, 48
    signal = frames[:, 0].astype(np.float64)
    starts = np.arange(0, len(signal) - window, hop)
    blocks = np.lib.stride_tricks.sliding_window_view(signal, window)[starts] * np.hanning(window)
    t = np.arange(window) / ANALYSIS_RATE_HZ
    power = {hz: np.abs(blocks @ np.exp(-2j * np.pi * hz * t)) for hz in (440, 880)}
    high = power[880] > power[440]
    edges = np.flatnonzero(high[1:] != high[:-1]) + 1
    return [(starts[edge] + window / 2) / ANALYSIS_RATE_HZ for edge in edges]


def output_time_at(sink_positions: list[float], source_secs: float) -> float:
    """The output time at which the recorded positions (one per frame: where the source
    was when that frame began) pass `source_secs`, interpolated within the frame."""
    positions = np.array(sink_positions)
    k = int(np.searchsorted(positions, source_secs)) - 1
    step = positions[k + 1] - positions[k]
    return (k + (source_secs - positions[k]) / step) * FRAME


# ---------------------------------------------------------------- framing


@pytest.mark.parametrize("split", ["1", "7", "1919", "1920", "1921", "random"])
def test_framer_cuts_exact_frames_and_pads_only_the_end(split: str) -> None:
    rng = random.Random(7)
    data = rng.randbytes(FRAME_BYTES * 40 + 777)
    framer = Framer()
    frames: list[bytes] = []
    at = 0
    while at < len(data):
        size = rng.randint(1, 5000) if split == "random" else int(split)
        frames += framer.push(data[at : at + size])
        at += size
    assert framer.pending_bytes == 777
    frames.append(framer.flush())
    assert all(len(frame) == FRAME_BYTES for frame in frames)
    assert len(frames) == 41
    joined = b"".join(frames)
    assert joined[: len(data)] == data
    assert joined[len(data) :] == bytes(FRAME_BYTES - 777)
    assert framer.flush() == b""


def test_framer_flush_is_empty_on_a_whole_number_of_frames() -> None:
    framer = Framer()
    assert framer.push(bytes(FRAME_BYTES * 3)) == [bytes(FRAME_BYTES)] * 3
    assert framer.push(b"") == []
    assert framer.flush() == b""


# ---------------------------------------------------------------- pacing


async def test_pacer_keeps_the_schedule_for_a_minute_without_drift() -> None:
    clock = FakeClock(oversleep=0.003)
    rng = random.Random(3)
    sink = RecordingSink(clock, cost=lambda _: rng.uniform(0, 0.006))
    times = await pace(Pacer(clock), sink, 6000)
    errors = times - (times[0] + np.arange(6000) * FRAME)
    assert abs(errors.mean()) < 0.002
    assert errors.min() >= 0 and errors.max() < 0.003 + 1e-9
    drift = errors[-100:].mean() - errors[:100].mean()
    assert abs(drift) < 0.002
    assert abs(errors[-1]) < 0.003 + 1e-9


async def test_pacer_catches_up_after_a_short_stall() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock, cost=lambda count: 0.15 if count == 100 else 0.0)
    pacer = Pacer(clock)
    times = await pace(pacer, sink, 300)
    ideal = times[0] + np.arange(300) * FRAME
    late = times - ideal
    assert pacer.reanchors == 0
    # The 15 frames that fell due during the stall go out at once, then the schedule holds.
    assert np.allclose(times[100:115], times[99] + 0.15)
    assert np.allclose(late[115:], 0, atol=1e-9)


async def test_pacer_reanchors_after_a_long_stall_instead_of_bursting() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock, cost=lambda count: 1.0 if count == 100 else 0.0)
    pacer = Pacer(clock)
    times = await pace(pacer, sink, 300)
    assert pacer.reanchors == 1
    assert times[100] == pytest.approx(times[99] + 1.0)
    assert np.allclose(np.diff(times[100:]), FRAME)
    assert np.allclose(np.diff(times[:100]), FRAME)


async def test_pacer_waits_on_the_real_clock() -> None:
    clock = MonotonicClock()
    pacer = Pacer(clock)
    started = clock.now()
    for _ in range(30):
        await pacer.wait()
    assert 0.28 <= clock.now() - started < 0.6


# ---------------------------------------------------------------- position


def test_position_counts_each_frame_at_its_own_tempo() -> None:
    position = Position(3.0)
    for _ in range(100):
        position.advance(FRAME, Filters().tempo)
    for _ in range(70):
        position.advance(FRAME, Filters(speed=1.5).tempo)
    assert position.seconds == pytest.approx(3.0 + 1.0 + 1.05)
    for _ in range(50):
        position.advance(FRAME, Filters(speed=1.5, rate=0.8, pitch=2.0).tempo)
    assert position.seconds == pytest.approx(3.0 + 1.0 + 1.05 + 0.6)
    position.advance(FRAME / 4, 2.0)  # a padded last frame counts its audio only
    assert position.seconds == pytest.approx(5.655)
    assert position.output_secs == pytest.approx(2.2025)


# ---------------------------------------------------------------- sinks


async def test_file_sink_writes_frames_in_order() -> None:
    out = io.BytesIO()
    sink = FileSink(out)
    await sink.send(b"a" * FRAME_BYTES)
    await sink.send(b"b" * FRAME_BYTES)
    assert out.getvalue() == b"a" * FRAME_BYTES + b"b" * FRAME_BYTES


def test_tgcalls_sink_says_how_to_install_pytgcalls(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("pytgcalls", "pytgcalls.types", "pytgcalls.types.raw"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r'pip install "rust-transcoder-streamer\[tgcalls\]"'):
        TgCallsSink(object(), -100)


class CallStandIn:
    """Records what a sink asks of PyTgCalls (a real call needs Telegram)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    async def play(self, chat_id: int, stream: object) -> None:
        self.calls.append(("play", chat_id, stream))

    async def send_frame(self, chat_id: int, device: object, data: bytes) -> None:
        self.calls.append(("send_frame", chat_id, device, data))


async def test_tgcalls_sink_plays_external_audio_then_sends_frames() -> None:
    from pytgcalls.types import Device, MediaStream

    call = CallStandIn()
    sink = TgCallsSink(call, -100)
    await sink.send(b"a" * FRAME_BYTES)
    await sink.send(b"b" * FRAME_BYTES)
    (_, chat_id, stream), *frames = call.calls
    assert chat_id == -100 and isinstance(stream, MediaStream)
    assert frames == [
        ("send_frame", -100, Device.MICROPHONE, b"a" * FRAME_BYTES),
        ("send_frame", -100, Device.MICROPHONE, b"b" * FRAME_BYTES),
    ]


# ---------------------------------------------------------------- with the service


async def test_player_sends_whole_frames_for_the_whole_source(service, origin) -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    async with TranscodeClient(service.url) as client:
        player = Player(client, sink, clock)
        await player.play(origin.url("tone440_4s.wav"), Filters(speed=1.25))
    assert {len(frame) for frame in sink.frames} == {FRAME_BYTES}
    assert player.backend == "rust"
    assert not player.playing
    assert duration_secs(sink.audio()) == pytest.approx(4 / 1.25, rel=0.01)
    assert player.position == pytest.approx(4.0, abs=0.02)
    assert dominant_hz(middle(sink.audio())) == pytest.approx(440, rel=0.01)
    assert np.allclose(np.diff(sink.times), FRAME)


async def play_acting_at(
    service_url: str, url: str, frame: int, action: Callable[[Player], None], **play: object
) -> tuple[Player, RecordingSink, list[float]]:
    """Plays `url` on a fake clock. Once `frame` frames went out, the sink waits while
    another task runs `action(player)`. Returns the player, the sink and the position
    after each frame."""
    clock = FakeClock()
    sink = RecordingSink(clock)
    positions: list[float] = []
    reached, resume = asyncio.Event(), asyncio.Event()

    async def on_frame(count: int) -> None:
        positions.append(player.position)
        if count == frame:
            reached.set()
            await resume.wait()

    async def act() -> None:
        await reached.wait()
        action(player)
        resume.set()

    sink.on_frame = on_frame
    async with TranscodeClient(service_url) as client:
        player = Player(client, sink, clock)
        actor = asyncio.create_task(act())
        await player.play(url, **play)
        await actor
    return player, sink, positions


async def test_set_speed_mid_play_keeps_the_position_right(service, origin) -> None:
    url = origin.url("two_tones_4s.wav")
    player, sink, positions = await play_acting_at(service.url, url, 100, lambda player: player.set_speed(1.5))
    assert positions[100] == pytest.approx(1.0)
    assert positions[170] == pytest.approx(2.05)
    assert player.position == pytest.approx(4.0, abs=0.02)
    assert player.filters.speed == 1.5
    switch = output_time_at(positions, 2.0)
    assert switch == pytest.approx(1.0 + 1.0 / 1.5, abs=1e-6)
    assert tone_switches(sink.audio()) == [pytest.approx(switch, abs=0.02)]
    assert duration_secs(sink.audio()) == pytest.approx(1.0 + 3.0 / 1.5, abs=0.02)
    assert {len(frame) for frame in sink.frames} == {FRAME_BYTES}
    assert np.allclose(np.diff(sink.times), FRAME)


async def test_seek_mid_play_restarts_at_the_new_position(service, origin) -> None:
    url = origin.url("two_tones_4s.wav")
    player, sink, _ = await play_acting_at(service.url, url, 50, lambda player: player.seek(1.0), start_seconds=2.5)
    # 880 Hz from 2.5 s for 0.5 s, then 440 Hz from 1.0 s to 2.0 s, then 880 Hz to the end.
    switches = tone_switches(sink.audio())
    assert switches == [pytest.approx(0.5, abs=0.02), pytest.approx(1.5, abs=0.02)]
    assert duration_secs(sink.audio()) == pytest.approx(0.5 + 3.0, abs=0.02)
    assert player.position == pytest.approx(4.0, abs=0.02)


async def test_stop_from_another_task_ends_play(service, origin) -> None:
    url = origin.url("tone440_20s.wav")
    player, sink, _ = await play_acting_at(service.url, url, 30, lambda player: player.stop())
    assert len(sink.frames) == 30
    assert player.position == pytest.approx(0.3)
    assert not player.playing


async def test_a_player_on_the_fallback_stops_and_seeks_at_once(dead_url, origin) -> None:
    """The ffmpeg fallback writes far ahead of real-time playback: dropping its stream
    (for a seek, then a stop) must not wait for it."""
    loop = asyncio.get_running_loop()
    sink = FileSink(io.BytesIO())
    async with TranscodeClient(dead_url) as client:
        player = Player(client, sink, MonotonicClock())
        playing = asyncio.create_task(player.play(origin.url("tone440_20s.wav")))
        await asyncio.sleep(0.5)
        assert player.backend == "ffmpeg"
        player.seek(10.0)
        await asyncio.sleep(0.5)
        assert 10.0 < player.position < 11.0
        stop_called = loop.time()
        player.stop()
        await asyncio.wait_for(playing, timeout=2.0)
    assert loop.time() - stop_called < 1.0


async def test_changes_reach_a_player_waiting_for_data(service, origin) -> None:
    """A source dripping in: the player spends its time waiting for frames, and a speed
    change and stop() must still take effect at once."""
    clock = FakeClock()
    sink = RecordingSink(clock)

    async def when_played(output_secs: float) -> None:
        while player.output_secs < output_secs:  # noqa: ASYNC110 (polls the player's public state)
            await asyncio.sleep(0.005)

    async def control() -> tuple[float, float, float]:
        await when_played(0.3)
        changed_at, changed_output = player.position, player.output_secs
        player.set_speed(1.5)
        await when_played(changed_output + 0.3)
        player.stop()
        return changed_at, changed_output, asyncio.get_running_loop().time()

    async with TranscodeClient(service.url) as client:
        player = Player(client, sink, clock)
        controller = asyncio.create_task(control())
        await player.play(origin.url("tone440_20s.wav", rate=4 * 192_000))
        stopped_at = asyncio.get_running_loop().time()
        changed_at, changed_output, stop_called = await controller
    assert stopped_at - stop_called < 0.5
    assert changed_at == pytest.approx(changed_output)
    assert player.position == pytest.approx(changed_at + (player.output_secs - changed_output) * 1.5)
    assert player.position < 2.0
    assert {len(frame) for frame in sink.frames} == {FRAME_BYTES}


async def test_duration_limits_the_output_across_a_restart(service, origin) -> None:
    url = origin.url("tone440_4s.wav")
    player, sink, _ = await play_acting_at(
        service.url, url, 40, lambda player: player.set_speed(2.0), duration_seconds=1.0
    )
    assert len(sink.frames) == 100
    assert player.position == pytest.approx(0.4 + 0.6 * 2.0, abs=0.011)


async def test_seek_past_the_end_raises_range_invalid(service, origin) -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)

    async def on_frame(count: int) -> None:
        if count == 20:
            player.seek(10.0)

    sink.on_frame = on_frame
    async with TranscodeClient(service.url) as client:
        player = Player(client, sink, clock)
        with pytest.raises(RangeInvalid):
            await player.play(origin.url("tone440_4s.wav"))
    assert len(sink.frames) == 20
    assert not player.playing


async def test_playback_survives_the_service_dying_mid_stream(start_service, origin) -> None:
    """The client continues on ffmpeg from the exact byte; the player's frames, position
    and audio go on as if nothing happened."""
    doomed = start_service()
    clock = FakeClock()
    sink = RecordingSink(clock)
    positions: list[float] = []

    async def on_frame(count: int) -> None:
        positions.append(player.position)
        if count == 50:
            assert player.backend == "rust"
            doomed.kill()

    sink.on_frame = on_frame
    async with TranscodeClient(doomed.url) as client:
        player = Player(client, sink, clock)
        await player.play(origin.url("two_tones_4s.wav", rate=4 * 192_000), Filters(speed=1.25))
    assert player.backend == "ffmpeg"
    assert {len(frame) for frame in sink.frames} == {FRAME_BYTES}
    assert player.position == pytest.approx(4.0, abs=0.02)
    assert duration_secs(sink.audio()) == pytest.approx(4 / 1.25, abs=0.02)
    assert tone_switches(sink.audio()) == [pytest.approx(output_time_at(positions, 2.0), abs=0.02)]


async def test_player_raises_the_service_error(service, origin) -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    async with TranscodeClient(service.url) as client:
        player = Player(client, sink, clock)
        with pytest.raises(UnsupportedFormat):
            await player.play(origin.url("page.html"))
    assert sink.frames == []
    assert not player.playing
