"""Audio format benchmarks, run by hand: `.venv/bin/python -m benchmarks.audio_formats`.

1. Time to the first output byte of Home Assistant's own TTS conversion
   command (`tts._async_convert_audio`, rebuilt below) when fed 24 kHz speech
   in real time as 16-bit PCM WAV, as float32 WAV at 24 kHz, and as float32
   WAV already resampled to the satellite's rate (what tts.py serves), for the
   formats satellites ask for.
2. CPU time per second of audio of audio.Resampler against a naive linear
   interpolation baseline and a whole-signal numpy reference (zero-stuffing,
   FFT convolution with the same filter, decimation), plus the alias level
   each leaves (10 kHz tone, 24 kHz -> 16 kHz).

Prints figures and ratios against baselines measured in the same run; no
assertions. Needs ffmpeg, espeak-ng and sox on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
import statistics
import subprocess
import time

import numpy as np

from custom_components.gemini_live.audio import (
    FloatArray,
    Resampler,
    SampleFormat,
    WavStreamEncoder,
    design_filter,
    pcm16_to_float32,
    wav_header,
)

SOURCE_RATE = 24000
FFMPEG_CHUNK_SIZE = 4096  # Home Assistant's read size
CHUNK_MS = 40  # audio chunk size of Gemini Live replies (as the fake server sends)
RATE_PAIRS = (
    (24000, 16000),
    (24000, 22050),
    (24000, 44100),
    (24000, 48000),
    (48000, 16000),
    (44100, 16000),
    (8000, 16000),
    (22050, 16000),
)
TEXT = (
    "The living room lights are now on, and the thermostat is set to twenty one "
    "degrees. Is there anything else I can do for you?"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A satellite's preferred TTS options."""

    name: str
    extension: str
    rate: int | None
    channels: int | None
    sample_bytes: int | None


TARGETS = (
    Target("ESPHome WAV 16 kHz", "wav", 16000, 1, 2),
    Target("Voice PE FLAC 48 kHz", "flac", 48000, 1, 2),
    Target("Wyoming WAV 22.05 kHz", "wav", 22050, 1, 2),
    Target("browser mp3", "mp3", None, None, None),
)


def speech(text: str, rate: int) -> bytes:
    """PCM16LE mono speech from espeak-ng, resampled by sox."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdin", "--stdout"],  # noqa: S607
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    sox = ["sox", "-D", "-t", "wav", "-", "-t", "raw", "-e", "signed-integer"]
    sox += ["-b", "16", "-c", "1", "-r", str(rate), "-L", "-"]
    return subprocess.run(sox, input=wav, capture_output=True, check=True).stdout  # noqa: S603


def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`."""
    command = ["ffmpeg", "-version"]
    run = subprocess.run(command, capture_output=True, check=True)  # noqa: S603
    return run.stdout.decode().splitlines()[0]


def ha_convert_command(target: Target) -> list[str]:
    """Home Assistant's ffmpeg command for a WAV generator input (tts/__init__.py)."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "wav"]
    command += ["-probesize", "32", "-i", "pipe:0", "-f", target.extension]
    if target.rate is not None:
        command += ["-ar", str(target.rate)]
    if target.channels is not None:
        command += ["-ac", str(target.channels)]
    if target.extension == "mp3":
        command += ["-q:a", "0"]
    if target.sample_bytes == 2:
        command += ["-sample_fmt", "s16"]
    return [*command, "-fflags", "+bitexact", "pipe:1"]


def wav_chunks(pcm: bytes, out_rate: int, sample_format: SampleFormat) -> list[bytes]:
    """Encode speech as tts.py would: one WAV piece per Live audio chunk."""
    encoder = WavStreamEncoder(SOURCE_RATE, out_rate, sample_format)
    size = 2 * SOURCE_RATE * CHUNK_MS // 1000
    pieces = [encoder.encode(pcm[i : i + size]) for i in range(0, len(pcm), size)]
    pieces[0] = encoder.header() + pieces[0]
    pieces[-1] += encoder.flush()
    return pieces


def container_overhead(command: list[str]) -> int:
    """Bytes ffmpeg writes for an input without samples (headers, FLAC padding)."""
    header = wav_header(SOURCE_RATE, SampleFormat.FLOAT32)
    run = subprocess.run(command, input=header, capture_output=True, check=True)  # noqa: S603
    return len(run.stdout)


async def first_byte_latency(
    command: list[str], pieces: list[bytes], overhead: int, warm_up: float = 0.0
) -> tuple[float, float]:
    """Seconds from spawning ffmpeg to its first output byte and first audio byte.

    Input is fed in real time. "Audio" is output beyond `overhead`. With
    `warm_up`, ffmpeg gets that long to start and the clock starts at the
    first input byte instead.
    """
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin = process.stdin
    if warm_up:
        await asyncio.sleep(warm_up)
        start = time.perf_counter()

    async def feed() -> None:
        for index, piece in enumerate(pieces):
            await asyncio.sleep(
                max(0.0, start + index * CHUNK_MS / 1000 - time.perf_counter())
            )
            stdin.write(piece)
            await stdin.drain()
        stdin.close()

    feeder = asyncio.create_task(feed())
    received = len(await process.stdout.read(FFMPEG_CHUNK_SIZE))
    first_byte = time.perf_counter() - start
    while received <= overhead:
        received += len(await process.stdout.read(FFMPEG_CHUNK_SIZE))
    first_audio = time.perf_counter() - start
    feeder.cancel()
    process.kill()
    await process.wait()
    return first_byte, first_audio


async def ffmpeg_benchmark(pcm: bytes, repeats: int) -> None:
    """Part 1: first-byte latency of Home Assistant's conversion per input kind."""
    print(
        "   ms from spawning ffmpeg (as Home Assistant does) to its first output"
        " byte / first audio byte\n   (beyond headers and FLAC padding);"
        " 'warm': ffmpeg started 0.5 s before the first input byte"
    )
    columns = ("int16 24k", "f32 24k", "f32 target", "warm int16", "warm f32")
    print(f"   {'target':<23}" + "".join(f"{c:>13}" for c in columns) + "  int16/f32")
    for target in TARGETS:
        command = ha_convert_command(target)
        overhead = container_overhead(command)
        int16 = wav_chunks(pcm, SOURCE_RATE, SampleFormat.PCM16)
        served = wav_chunks(pcm, target.rate or SOURCE_RATE, SampleFormat.FLOAT32)
        cells = (
            (int16, 0.0),
            (wav_chunks(pcm, SOURCE_RATE, SampleFormat.FLOAT32), 0.0),
            (served, 0.0),
            (int16, 0.5),
            (served, 0.5),
        )
        medians: list[tuple[float, float]] = []
        for pieces, warm_up in cells:
            runs = [
                await first_byte_latency(command, pieces, overhead, warm_up)
                for _ in range(repeats)
            ]
            medians.append(
                (
                    statistics.median(run[0] for run in runs),
                    statistics.median(run[1] for run in runs),
                )
            )
        print(
            f"   {target.name:<23}"
            + "".join(f"{1000 * a:>7.0f}/{1000 * b:<5.0f}" for a, b in medians)
            + f"{medians[0][1] / medians[2][1]:>9.1f}x"
        )


def linear_interpolation(
    samples: FloatArray, in_rate: int, out_rate: int
) -> FloatArray:
    """Naive baseline: linear interpolation, no low-pass (aliases)."""
    count = -(-len(samples) * out_rate // in_rate)
    positions = np.arange(count) * (in_rate / out_rate)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def fft_reference(samples: FloatArray, in_rate: int, out_rate: int) -> FloatArray:
    """Whole-signal reference: zero-stuff, FFT-convolve the same filter, decimate."""
    bank = design_filter(in_rate, out_rate)
    prototype = bank.phases[:, ::-1].T.reshape(-1).astype(np.float64)
    upsampled = np.zeros(len(samples) * bank.up)
    upsampled[:: bank.up] = samples
    size = len(upsampled) + len(prototype) - 1
    spectrum = np.fft.rfft(upsampled, size) * np.fft.rfft(prototype, size)
    count = -(-len(samples) * out_rate // in_rate)
    return np.fft.irfft(spectrum, size)[bank.delay :: bank.down][:count].astype(
        np.float32
    )


def streaming(pcm: bytes, in_rate: int, out_rate: int) -> FloatArray:
    """audio.Resampler fed in 40 ms chunks, as tts.py does."""
    resampler = Resampler(in_rate, out_rate)
    size = 2 * in_rate * CHUNK_MS // 1000
    parts = [resampler.process(pcm[i : i + size]) for i in range(0, len(pcm), size)]
    parts.append(resampler.flush())
    return np.concatenate(parts)


def cpu_per_second(run: Callable[[], object], seconds: float) -> float:
    """CPU milliseconds per second of audio (best of 5)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return 1000 * best / seconds


def alias_db(method: Callable[[FloatArray, int, int], FloatArray]) -> float:
    """Level (dBFS) a full-scale 10 kHz tone leaves after 24 kHz -> 16 kHz."""
    t = np.arange(SOURCE_RATE) / SOURCE_RATE
    tone = np.sin(2 * np.pi * 10000 * t).astype(np.float32)
    out = method(tone, 24000, 16000)[2000:-2000].astype(np.float64)
    window = np.blackman(len(out))
    return float(
        20
        * np.log10(np.abs(np.fft.rfft(out * window)).max() * 2 / window.sum() + 1e-12)
    )


def resampled_pcm(samples: FloatArray, in_rate: int, out_rate: int) -> FloatArray:
    """audio.Resampler on the PCM16 encoding of float samples (for alias_db)."""
    pcm = np.rint(samples * 32767).astype("<i2").tobytes()
    return streaming(pcm, in_rate, out_rate)


def one_call(pcm: bytes, in_rate: int, out_rate: int) -> FloatArray:
    """audio.Resampler fed the whole signal at once."""
    resampler = Resampler(in_rate, out_rate)
    return np.concatenate((resampler.process(pcm), resampler.flush()))


def benchmark_pair(in_rate: int, out_rate: int, seconds: float) -> None:
    """Print one row of part 2."""
    pcm = speech(TEXT, in_rate)
    pcm = (pcm * (int(seconds * in_rate * 2 // len(pcm)) + 1))[
        : int(seconds * in_rate) * 2
    ]
    floats = pcm16_to_float32(pcm)
    linear = cpu_per_second(
        partial(linear_interpolation, floats, in_rate, out_rate), seconds
    )
    chunked = cpu_per_second(partial(streaming, pcm, in_rate, out_rate), seconds)
    whole = cpu_per_second(partial(one_call, pcm, in_rate, out_rate), seconds)
    # The zero-stuffed signal is up to 320x longer: 1 s keeps it in memory.
    reference = cpu_per_second(
        partial(fft_reference, floats[:in_rate], in_rate, out_rate), 1.0
    )
    taps = design_filter(in_rate, out_rate).taps
    print(
        f"   {in_rate:>5}->{out_rate:<7}{linear:>7.2f}ms"
        f"{chunked:>8.2f}ms ({chunked / linear:>4.1f}x)"
        f"{whole:>9.2f}ms ({whole / linear:>4.1f}x)"
        f"{reference:>8.2f}ms ({reference / linear:>4.1f}x){taps:>8}"
    )


def resampler_benchmark() -> None:
    """Part 2: CPU per second of audio, per rate pair and method."""
    seconds = 10.0
    print(
        f"\n2. CPU ms per second of audio ({seconds:.0f} s of speech, best of 5); "
        "ratio = method / linear interpolation"
    )
    print(
        f"   {'rates':<14}{'linear':>9}{'Resampler 40ms':>17}{'Resampler 1 call':>19}"
        f"{'FFT reference':>16}{'taps/phase':>12}"
    )
    for in_rate, out_rate in RATE_PAIRS:
        benchmark_pair(in_rate, out_rate, seconds)
    print(
        "\n   alias of a full-scale 10 kHz tone, 24 kHz -> 16 kHz: "
        f"linear {alias_db(linear_interpolation):.1f} dBFS, "
        f"Resampler {alias_db(resampled_pcm):.1f} dBFS, "
        f"FFT reference {alias_db(fft_reference):.1f} dBFS"
    )


def main() -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="ffmpeg runs per cell")
    parser.add_argument("--skip-ffmpeg", action="store_true")
    args = parser.parse_args()
    if not args.skip_ffmpeg:
        pcm = speech(TEXT, SOURCE_RATE)
        print(
            "\n1. ffmpeg first output byte, 24 kHz speech fed in real time "
            f"({len(pcm) / 2 / SOURCE_RATE:.1f} s, {CHUNK_MS} ms chunks), "
            f"median of {args.repeats} runs"
        )
        print(f"   {ffmpeg_version()}")
        asyncio.run(ffmpeg_benchmark(pcm, args.repeats))
    resampler_benchmark()


if __name__ == "__main__":
    main()
