"""The numpy audio helpers: resampler accuracy, streaming, WAV headers."""

import io
import itertools
from math import ceil
import os
import select
import struct
import subprocess
import wave

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.gemini_live.audio import (
    FLAC_BLOCK_MS,
    FlacStreamEncoder,
    FloatArray,
    Resampler,
    SampleFormat,
    WavStreamEncoder,
    design_filter,
    float32_to_bytes,
    float32_to_pcm16,
    pcm16_to_float32,
    wav_header,
)

from .test_flac import decode_with_libflac

FFMPEG_WAV_IN = ["ffmpeg", "-hide_banner", "-loglevel", "error"]
FFMPEG_WAV_IN += ["-f", "wav", "-probesize", "32", "-i", "pipe:0"]
RATE_PAIRS = [
    (24000, 16000),
    (24000, 22050),
    (24000, 44100),
    (24000, 48000),
    (48000, 16000),
    (44100, 16000),
    (8000, 16000),
    (22050, 16000),
]


def tone(
    frequency: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5
) -> bytes:
    """PCM16 sine."""
    t = np.arange(round(rate * seconds)) / rate
    samples = np.rint(amplitude * 32767 * np.sin(2 * np.pi * frequency * t))
    return samples.astype("<i2").tobytes()


def resample(pcm: bytes, in_rate: int, out_rate: int) -> FloatArray:
    """One-shot resampling through the streaming API."""
    resampler = Resampler(in_rate, out_rate)
    return np.concatenate((resampler.process(pcm), resampler.flush()))


def steady(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Return the middle of a signal (no filter start-up or tail)."""
    quarter = len(samples) // 4
    return samples[quarter:-quarter].astype(np.float64)


def sine_amplitude(samples: FloatArray, frequency: float, rate: int) -> float:
    """Least-squares amplitude of a sine of known frequency (no FFT scalloping)."""
    y = steady(samples)
    t = (np.arange(len(y)) + len(samples) // 4) / rate
    basis = np.column_stack(
        (np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t))
    )
    (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(a, b))


def peak_db(samples: FloatArray) -> float:
    """Highest spectral peak (dBFS of a sine amplitude), Blackman-Harris FFT."""
    y = steady(samples)
    window = np.blackman(len(y))
    spectrum = np.abs(np.fft.rfft(y * window)) * 2 / window.sum()
    return float(20 * np.log10(spectrum.max() + 1e-12))


def noise_pcm(samples: int, seed: int = 1) -> bytes:
    """Deterministic white noise, PCM16."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(samples) * 6000).astype("<i2").tobytes()


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_chunked_equals_whole(in_rate: int, out_rate: int) -> None:
    """Any split, odd byte boundaries included, gives bit-identical samples."""
    pcm = noise_pcm(in_rate // 2)
    whole = resample(pcm, in_rate, out_rate)
    rng = np.random.default_rng(in_rate + out_rate)
    splits = [
        [1, 3, 5, 7, 1001, 4097],  # odd boundaries: cuts inside samples
        sorted(rng.choice(np.arange(1, len(pcm)), 25, replace=False).tolist()),
        list(range(480, len(pcm), 480)),  # 10 ms chunks at 24 kHz
    ]
    resampler = Resampler(in_rate, out_rate)  # reused: flush() resets it
    for cuts in splits:
        bounds = [0, *cuts, len(pcm)]
        parts = [resampler.process(pcm[a:b]) for a, b in itertools.pairwise(bounds)]
        parts.append(resampler.flush())
        assert np.array_equal(np.concatenate(parts), whole)
        if cuts[0] == 1:  # chunks of 1 and 2 bytes are too short to emit anything
            assert [len(part) for part in parts[:3]] == [0, 0, 0]


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_matches_textbook_reference(in_rate: int, out_rate: int) -> None:
    """Polyphase output = zero-stuff, convolve with the prototype, decimate."""
    pcm = noise_pcm(in_rate // 4, seed=2)
    bank = design_filter(in_rate, out_rate)
    prototype = bank.phases[:, ::-1].T.reshape(-1).astype(np.float64)
    x = np.frombuffer(pcm, "<i2") / 32768
    upsampled = np.zeros(len(x) * bank.up)
    upsampled[:: bank.up] = x
    size = len(upsampled) + len(prototype) - 1
    spectrum = np.fft.rfft(upsampled, size) * np.fft.rfft(prototype, size)
    expected = np.fft.irfft(spectrum, size)[bank.delay :: bank.down]
    got = resample(pcm, in_rate, out_rate)
    assert np.abs(got - expected[: len(got)]).max() < 1e-6


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_1khz_passes(in_rate: int, out_rate: int) -> None:
    """A 1 kHz sine keeps its level within 0.1 dB."""
    got = resample(tone(1000, in_rate), in_rate, out_rate)
    error_db = 20 * np.log10(
        sine_amplitude(got, 1000, out_rate) / (0.5 * 32767 / 32768)
    )
    assert abs(error_db) < 0.1
    # No distortion either: everything but the sine is below -80 dB.
    assert (
        peak_db(got - 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(got)) / out_rate))
        < -80
    )


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "frequency"),
    [
        (24000, 16000, 10000),  # would alias to 6 kHz
        (24000, 16000, 8500),  # just above the new Nyquist frequency
        (24000, 22050, 11500),
        (48000, 16000, 12000),
        (44100, 16000, 10000),
        (22050, 16000, 9000),
    ],
)
def test_above_nyquist_is_removed(in_rate: int, out_rate: int, frequency: int) -> None:
    """A tone above the target Nyquist frequency is attenuated more than 60 dB."""
    got = resample(tone(frequency, in_rate, amplitude=1.0), in_rate, out_rate)
    assert peak_db(got) < -60


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(24000, 48000), (8000, 16000), (24000, 44100)]
)
def test_upsampling_images_are_removed(in_rate: int, out_rate: int) -> None:
    """Upsampling leaves no spectral image of the input above its Nyquist."""
    frequency = 1000
    got = resample(tone(frequency, in_rate, amplitude=1.0), in_rate, out_rate)
    residue = got - sine_amplitude(got, frequency, out_rate) * np.sin(
        2 * np.pi * frequency * np.arange(len(got)) / out_rate
    )
    assert peak_db(residue.astype(np.float32)) < -60


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("samples", [0, 1, 2, 3, 101, 24000])
def test_length(in_rate: int, out_rate: int, samples: int) -> None:
    """Output length is ceil(samples * out_rate / in_rate); a stray byte is ignored."""
    got = resample(noise_pcm(samples) + b"\x01", in_rate, out_rate)
    assert len(got) == ceil(samples * out_rate / in_rate)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_time_aligned(in_rate: int, out_rate: int) -> None:
    """The filter delay is compensated: a click at 10 ms stays at 10 ms."""
    x = np.zeros(in_rate // 10, dtype="<i2")
    x[in_rate // 100] = 20000
    got = resample(x.tobytes(), in_rate, out_rate)
    assert abs(int(np.argmax(got)) - out_rate / 100) <= 0.5


def test_latency_is_a_few_milliseconds() -> None:
    """Output follows input closely: 20 ms at 24 kHz gives >= 16 ms at 16 kHz."""
    resampler = Resampler(24000, 16000)
    assert len(resampler.process(noise_pcm(480))) >= 256


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_silence_stays_silence(in_rate: int, out_rate: int) -> None:
    """Digital silence in, exact zeros out, in float32 and in PCM16."""
    got = resample(bytes(2 * in_rate // 10), in_rate, out_rate)
    assert not got.any()
    assert float32_to_pcm16(got) == bytes(2 * len(got))


def test_clipping() -> None:
    """A full-scale square wave overshoots in float; PCM16 clips, never wraps."""
    square = np.where(np.arange(24000) % 48 < 24, 32767, -32768).astype("<i2")
    got = resample(square.tobytes(), 24000, 16000)
    assert got.max() > 1.0
    assert got.min() < -1.0
    pcm = np.frombuffer(float32_to_pcm16(got), "<i2")
    assert pcm.max() == 32767
    assert pcm.min() == -32768
    loud = np.abs(got) > 0.5
    assert np.array_equal(np.sign(pcm[loud]), np.sign(got[loud]))
    assert float32_to_pcm16(
        np.array([1.5, -1.5, 1.0, -1.0], np.float32)
    ) == struct.pack("<4h", 32767, -32768, 32767, -32768)


def test_pcm16_round_trip() -> None:
    """Every 16-bit value survives PCM16 -> float32 -> PCM16."""
    pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    samples = pcm16_to_float32(pcm)
    assert samples.dtype == np.float32
    assert samples.min() == -1.0
    assert samples.max() == 32767 / 32768
    assert float32_to_pcm16(samples) == pcm


def test_same_rate_is_identity() -> None:
    """Equal rates: the samples pass unchanged, odd bytes still carried."""
    pcm = noise_pcm(1000)
    resampler = Resampler(16000, 16000)
    got = np.concatenate(
        (resampler.process(pcm[:7]), resampler.process(pcm[7:]), resampler.flush())
    )
    assert float32_to_pcm16(got) == pcm


def test_rejects_bad_rates() -> None:
    """Rates must be positive."""
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 16000)


def test_filter_banks_are_cached() -> None:
    """Every resampler for one rate pair shares one read-only filter bank."""
    bank = design_filter(24000, 16000)
    assert design_filter(24000, 16000) is bank
    assert not bank.phases.flags.writeable
    assert (bank.up, bank.down) == (2, 3)


def test_float32_bytes() -> None:
    """Float32 packing is little-endian IEEE."""
    samples = np.array([0.5, -0.25], dtype=np.float32)
    assert float32_to_bytes(samples) == struct.pack("<2f", 0.5, -0.25)


def test_pcm16_header_parsed_by_wave_module() -> None:
    """Python's wave module reads the open-ended PCM16 header and the samples."""
    pcm = tone(440, 24000, seconds=0.1)
    encoder = WavStreamEncoder(24000, 24000, SampleFormat.PCM16)
    stream = encoder.header() + encoder.encode(pcm) + encoder.flush()
    assert struct.unpack("<I", stream[4:8]) == (0xFFFFFFFF,)
    with wave.open(io.BytesIO(stream)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == 24000
        assert wav.readframes(1 << 20) == pcm


@pytest.mark.parametrize(
    ("sample_format", "width"), [(SampleFormat.FLOAT32, 4), (SampleFormat.FLOAT64, 8)]
)
def test_float_header_layout(sample_format: SampleFormat, width: int) -> None:
    """IEEE float header: format tag 3, 32/64 bits, 18-byte fmt chunk, open sizes."""
    header = wav_header(48000, sample_format)
    riff, riff_size, wave_id, fmt_id, fmt_size = struct.unpack("<4sI4s4sI", header[:20])
    assert (riff, riff_size, wave_id, fmt_id, fmt_size) == (
        b"RIFF",
        0xFFFFFFFF,
        b"WAVE",
        b"fmt ",
        18,
    )
    assert struct.unpack("<HHIIHHH", header[20:38]) == (
        3,
        1,
        48000,
        48000 * width,
        width,
        8 * width,
        0,
    )
    assert header[38:] == b"data" + b"\xff\xff\xff\xff"


@pytest.mark.parametrize(
    ("sample_format", "raw", "rate"),
    [(SampleFormat.FLOAT32, "f32le", 16000), (SampleFormat.FLOAT64, "f64le", 16000)],
)
def test_float_wav_decoded_by_ffmpeg_while_open(
    sample_format: SampleFormat, raw: str, rate: int
) -> None:
    """Ffmpeg decodes the float stream before it ends, bit-exact."""
    pcm = tone(440, 24000, seconds=0.5)  # in and out fit the pipes' buffers
    encoder = WavStreamEncoder(24000, rate, sample_format)
    first = encoder.header() + encoder.encode(pcm)
    with subprocess.Popen(  # noqa: S603
        [*FFMPEG_WAV_IN, "-f", raw, "pipe:1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as ffmpeg:
        assert ffmpeg.stdin is not None
        assert ffmpeg.stdout is not None
        ffmpeg.stdin.write(first)
        ffmpeg.stdin.flush()
        ready, _, _ = select.select([ffmpeg.stdout], [], [], 10)
        assert ready, "no output while the stream is open"
        early = os.read(ffmpeg.stdout.fileno(), 1 << 20)
        assert early
        tail = encoder.flush()
        ffmpeg.stdin.write(tail)
        ffmpeg.stdin.close()
        decoded = early + ffmpeg.stdout.read()
        assert ffmpeg.wait() == 0
    assert decoded == first[len(encoder.header()) :] + tail
    assert (
        len(decoded) == (4 if sample_format is SampleFormat.FLOAT32 else 8) * rate // 2
    )


def ffmpeg_decode_flac(stream: bytes, channels: int) -> bytes:
    """Decode a FLAC stream with ffmpeg (an independent decoder) to PCM16LE."""
    decoded = subprocess.run(  # noqa: S603
        [
            *FFMPEG_WAV_IN[:4],
            *("-f", "flac", "-i", "pipe:0", "-f", "s16le", "-ac", str(channels)),
            "pipe:1",
        ],
        input=stream,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return decoded.stdout


def flac_stream(encoder: FlacStreamEncoder, pieces: list[bytes]) -> list[bytes]:
    """Return the header, what each piece gave, and the flush, in order."""
    return [encoder.header(), *map(encoder.encode, pieces), encoder.flush()]


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "channels"),
    [(24000, 48000, 1), (24000, 16000, 1), (24000, 48000, 2), (24000, 24000, 1)],
)
def test_flac_is_the_pcm16_stream_losslessly(
    in_rate: int, out_rate: int, channels: int
) -> None:
    """Ffmpeg decodes the FLAC stream to the very samples of the PCM16 WAV one."""
    pcm = noise_pcm(in_rate // 2) + tone(440, in_rate, seconds=0.7)
    pieces = [pcm[i : i + 1921] for i in range(0, len(pcm), 1921)]
    flac = b"".join(flac_stream(FlacStreamEncoder(in_rate, out_rate, channels), pieces))
    wav = WavStreamEncoder(in_rate, out_rate, SampleFormat.PCM16, channels)
    samples = b"".join([*map(wav.encode, pieces), wav.flush()])
    assert ffmpeg_decode_flac(flac, channels) == samples
    assert len(samples) == 2 * channels * ceil(len(pcm) // 2 * out_rate / in_rate)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_flac_frames_go_out_as_the_audio_comes(rate: int) -> None:
    """Each 40 ms chunk gives whole frames, under 20 ms behind the WAV stream."""
    chunk = 2 * 960  # 40 ms of 24 kHz PCM16
    pcm = tone(440, 24000, seconds=1.0)
    encoder = FlacStreamEncoder(24000, rate)
    wav = WavStreamEncoder(24000, rate, SampleFormat.PCM16)
    header, sent, ready = encoder.header(), b"", 0
    for index, piece in enumerate(
        pcm[i : i + chunk] for i in range(0, len(pcm), chunk)
    ):
        out = encoder.encode(piece)
        assert out, f"chunk {index} gave no frame"
        sent += out
        ready += len(wav.encode(piece)) // 2
        decoded = len(ffmpeg_decode_flac(header + sent, 1)) // 2
        assert 0 <= ready - decoded < rate * FLAC_BLOCK_MS // 1000
    assert len(ffmpeg_decode_flac(header + sent + encoder.flush(), 1)) == 2 * rate


def test_flac_chunking_does_not_change_the_stream() -> None:
    """The bytes are the same however the audio is cut (odd bytes included)."""
    pcm = noise_pcm(12000)
    whole = b"".join(flac_stream(FlacStreamEncoder(24000, 48000), [pcm]))
    cuts = [0, 1, 961, 2960, 2963, 7001, *range(9000, len(pcm), 1777), len(pcm)]
    pieces = [pcm[a:b] for a, b in itertools.pairwise(cuts)]
    assert b"".join(flac_stream(FlacStreamEncoder(24000, 48000), pieces)) == whole


@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (16000, 2)])
def test_flac_header_is_a_live_streams(rate: int, channels: int) -> None:
    """fLaC, STREAMINFO first: the block size, rate, channels, 16 bits; no length."""
    header = FlacStreamEncoder(24000, rate, channels).header()
    assert header[:4] == b"fLaC"
    kind, length = header[4] & 0x7F, int.from_bytes(header[5:8])
    assert (kind, length) == (0, 34)
    info = header[8:42]
    block = rate * FLAC_BLOCK_MS // 1000  # every frame's, as FLAC's rules want
    assert struct.unpack(">HH", info[:4]) == (block, block)
    packed = int.from_bytes(info[10:18])
    assert packed >> 44 == rate
    assert (packed >> 41) & 0x7 == channels - 1
    assert (packed >> 36) & 0x1F == 16 - 1
    assert packed & (1 << 36) - 1 == 0  # total samples unknown
    assert info[18:] == bytes(16)  # no MD5 of a stream still being written
    last = header[4] & 0x80
    offset = 42
    while not last:  # the other metadata blocks end the header exactly
        last, size = (
            header[offset] & 0x80,
            int.from_bytes(header[offset + 1 : offset + 4]),
        )
        offset += 4 + size
    assert offset == len(header)


@pytest.mark.parametrize(
    ("sample_format", "bits"), [(SampleFormat.PCM24, 24), (SampleFormat.PCM32, 32)]
)
def test_wider_samples_in_wav_and_flac(sample_format: SampleFormat, bits: int) -> None:
    """24- and 32-bit WAV and FLAC hold the audio rounded to that width.

    Ffmpeg decodes the WAV, libFLAC the FLAC, to the same finer-than-16-bit
    samples.
    """
    pcm = noise_pcm(6000) + tone(440, 24000, seconds=0.3)
    floats = WavStreamEncoder(24000, 48000, SampleFormat.FLOAT64)
    exact = np.frombuffer(floats.encode(pcm) + floats.flush(), "<f8")
    top = 1 << (bits - 1)
    expected = np.clip(np.rint(exact * top), -top, top - 1).astype(np.int64)

    wav = WavStreamEncoder(24000, 48000, sample_format)
    wav_stream = wav.header() + wav.encode(pcm) + wav.flush()
    encoder = FlacStreamEncoder(24000, 48000, sample_format=sample_format)
    flac_stream_ = encoder.header() + encoder.encode(pcm) + encoder.flush()
    decoded = subprocess.run(  # noqa: S603
        [*FFMPEG_WAV_IN, "-f", "s32le", "pipe:1"],
        input=wav_stream,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert np.array_equal(np.frombuffer(decoded, "<i4") >> (32 - bits), expected)
    flac = decode_with_libflac(flac_stream_, 1, bits // 8)
    assert np.array_equal(flac[:, 0], expected)
    assert struct.unpack("<HHH", wav_stream[20:22] + wav_stream[32:36]) == (
        1,  # PCM
        bits // 8,
        bits,
    )
    assert np.count_nonzero(expected % (1 << (bits - 16)))  # finer than 16 bits


def test_wav_channels_carry_the_same_audio() -> None:
    """A stereo WAV stream holds the mono audio in both channels."""
    pcm = tone(440, 24000, seconds=0.1)
    encoder = WavStreamEncoder(24000, 24000, SampleFormat.PCM16, channels=2)
    stream = encoder.header() + encoder.encode(pcm) + encoder.flush()
    with wave.open(io.BytesIO(stream)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
            2,
            2,
            24000,
        )
        frames = np.frombuffer(wav.readframes(1 << 20), dtype="<i2")
    assert frames[0::2].tobytes() == pcm
    assert frames[1::2].tobytes() == pcm
