"""The one frame grammar: frame ranges and frame-number patterns, read and written the same way
by render, media, the writer, the hosts' core and publish.

Standard library only: ``plugin/core.py`` (loaded by Nuke's and Blender's own Python, without
monalisa's dependencies) imports this very file (see its ``_frames`` loader).

Frame ranges::

    spec  := part (sep part)*          sep: "," or white space, e.g. "1001-1010, 1020 1030-1040x2"
    part  := N | N "-" N [("x" | ":") STEP]
    N     := an integer, "-" for a negative frame ("-5--1"), at most 9 digits

A range holds at most ``MAX_FRAMES`` frames, counted before any list is made; nothing inside a part
may be a space (``0-3 99999999`` is frames 0-3 and 99999999, never 0-399999999).

Patterns: the file name holds exactly one frame-number token: ``####`` (as many digits as marks:
#### = 4), ``@@@@`` (the same), ``%04d`` (printf, zero-padded) or ``%d`` (no padding, as ``#``).
Padding is 1 to ``MAX_PADDING`` digits; a frame with more digits than the padding keeps them all, a
negative frame is ``-`` then the padded number. A file belongs to a pattern exactly when formatting
its frame number with the pattern gives its name back.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

try:
    from monalisa.errors import FrameError
except ImportError:  # loaded by path in a host's own Python, which has no monalisa
    class FrameError(ValueError):
        """A frame range or frame-number pattern that cannot be read (one line, what to do)."""

        exit_code = 2

__all__ = ["FrameError", "MAX_FRAMES", "MAX_PADDING", "MAX_DIGITS", "parse_frames", "format_frames", "check_frame",
           "Pattern", "parse_pattern", "has_pattern", "frame_path", "pattern_for", "sequence_stem",
           "sequence_files"]

#: the most frames one range may hold (over an hour at 24 fps); checked before anything is allocated
MAX_FRAMES = 100_000
#: frame numbers have at most this many digits (|frame| < 10**9)
MAX_DIGITS = 9
#: the most digits a pattern may pad to
MAX_PADDING = 10

_PART = re.compile(r"(-?[0-9]+)(?:-(-?[0-9]+)(?:[x:]([0-9]+))?)?")
_TOKEN = re.compile(r"#+|@+|%([0-9]*)d")
_EXAMPLE = "write frames like 1001-1100, 1001-1100x2 or 1001-1010,1020"
_TOKENS = "####, %04d, %d or @@@@"


def _number(text: str, spec: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise FrameError(f"frame range {spec!r}: {text[:20]}{'...' if len(text) > 20 else ''} has more than "
                         f"{MAX_DIGITS} digits; frame numbers run to {10 ** MAX_DIGITS - 1:,}")
    return int(text)


def check_frame(frame) -> int:
    """``frame`` as an int within the grammar's bounds; FrameError otherwise."""
    if isinstance(frame, bool) or not isinstance(frame, int):
        try:
            if isinstance(frame, bool) or int(frame) != frame:
                raise ValueError
            frame = int(frame)
        except (TypeError, ValueError, OverflowError):
            raise FrameError(f"frame {str(frame)[:40]!r} is not a whole frame number") from None
    if abs(frame) >= 10 ** MAX_DIGITS:
        raise FrameError(f"frame {str(frame)[:40]} is out of range; frame numbers have at most {MAX_DIGITS} digits")
    return frame


def parse_frames(spec) -> list:
    """``"1001-1004,1010"`` -> [1001, 1002, 1003, 1004, 1010] (sorted, unique); FrameError otherwise."""
    text = str(spec)
    shown = text if len(text) <= 60 else text[:57] + "..."
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts:
        raise FrameError(f"frame range {shown!r} is empty; {_EXAMPLE}")
    ranges, count = [], 0
    for part in parts:
        m = _PART.fullmatch(part)
        if not m:
            part = part if len(part) <= 30 else part[:27] + "..."
            raise FrameError(f"frame range {shown!r}: cannot read {part!r}; {_EXAMPLE} (no spaces inside a range)")
        first = _number(m.group(1), shown)
        last = _number(m.group(2), shown) if m.group(2) is not None else first
        step = _number(m.group(3), shown) if m.group(3) is not None else 1
        if last < first:
            raise FrameError(f"frame range {shown!r}: {part!r} runs backwards; write first-last")
        if step < 1:
            raise FrameError(f"frame range {shown!r}: {part!r} has step {step}; the step is 1 or more")
        count += (last - first) // step + 1
        if count > MAX_FRAMES:
            raise FrameError(f"frame range {shown!r} holds more than {MAX_FRAMES:,} frames, the most one job takes; "
                             "give a smaller range or split the shot")
        ranges.append(range(first, last + 1, step))
    return sorted({f for r in ranges for f in r})


def format_frames(frames) -> str:
    """[1001, 1002, 1003, 1010, 1012, 1014] -> ``"1001-1003,1010-1014x2"``; :func:`parse_frames` reads it back."""
    frames = sorted({check_frame(f) for f in frames})
    parts, i = [], 0
    while i < len(frames):
        j = i
        if i + 1 < len(frames):
            step = frames[i + 1] - frames[i]
            while j + 1 < len(frames) and frames[j + 1] - frames[j] == step:
                j += 1
            if step > 1 and j - i < 2:  # two frames with a gap: not a run
                j = i
        else:
            step = 1
        if j == i:
            parts.append(str(frames[i]))
        else:
            parts.append(f"{frames[i]}-{frames[j]}" + (f"x{step}" if step > 1 else ""))
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class Pattern:
    """A frame-number pattern split at its token: ``folder/prefix`` + number + ``suffix``."""

    folder: str
    prefix: str
    padding: int
    suffix: str

    def name(self, frame) -> str:
        frame = check_frame(frame)
        number = f"-{abs(frame):0{self.padding}d}" if frame < 0 else f"{frame:0{self.padding}d}"
        return self.prefix + number + self.suffix

    def path(self, frame) -> str:
        return os.path.join(self.folder, self.name(frame)) if self.folder else self.name(frame)

    def frame_of(self, name: str):
        """The frame whose file is called ``name``, or None when ``name`` is not one of this sequence."""
        if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
            return None
        middle = name[len(self.prefix): len(name) - len(self.suffix)]
        if not re.fullmatch(r"-?[0-9]{1,%d}" % MAX_PADDING, middle):
            return None
        frame = int(middle)
        return frame if abs(frame) < 10 ** MAX_DIGITS and self.name(frame) == name else None


def _tokens(name: str) -> list:
    return list(_TOKEN.finditer(name))


def has_pattern(path) -> bool:
    """Whether the file name of ``path`` holds a frame-number token."""
    return bool(_tokens(os.path.basename(str(path))))


def parse_pattern(pattern) -> Pattern:
    """Split ``pattern``; FrameError unless its file name holds exactly one token with a sane padding."""
    pattern = str(pattern)
    folder, name = os.path.split(pattern)
    shown = pattern if len(pattern) <= 80 else "..." + pattern[-77:]
    hits = _tokens(name)
    if len(hits) != 1:
        raise FrameError(f"frame pattern {shown!r}: the file name needs exactly one frame number token ({_TOKENS}), "
                         f"found {len(hits)}; e.g. shot.####.exr")
    m = hits[0]
    token = m.group(0)
    if token[0] in "#@":
        padding = len(token)
    else:
        digits = m.group(1)
        value = digits.lstrip("0")
        padding = int(value or 0) if len(value) <= 3 else 1000
        if digits and not digits.startswith("0") and padding <= MAX_PADDING:
            raise FrameError(f"frame pattern {shown!r}: {token} pads with spaces; write %0{digits}d for zero padding "
                             "or %d for none")
    if padding > MAX_PADDING:
        raise FrameError(f"frame pattern {shown!r}: frame padding of {'more than 999' if padding > 999 else padding} digits; "
                         f"pad to at most {MAX_PADDING} (e.g. #### or %04d)")
    return Pattern(folder, name[: m.start()], max(1, padding), name[m.end():])


def frame_path(pattern, frame) -> str:
    """The file of ``frame`` for ``pattern``: ``out/sh.####.exr``, 7 -> ``out/sh.0007.exr``."""
    return parse_pattern(pattern).path(frame)


def pattern_for(pattern, style: str) -> str:
    """The same sequence in a host's notation: "printf" (%04d, Nuke's Read) or "hash" (####)."""
    p = parse_pattern(pattern)
    if style == "printf":
        token = f"%0{p.padding}d" if p.padding > 1 else "%d"
    elif style == "hash":
        token = "#" * p.padding
    else:
        raise FrameError(f"pattern style {str(style)[:20]!r}: use printf or hash")
    name = p.prefix + token + p.suffix
    return os.path.join(p.folder, name) if p.folder else name


def sequence_stem(pattern) -> str:
    """``out/mona.####.exr`` -> ``out/mona``: where files about the whole sequence go (``mona.track.json``...)."""
    folder, name = os.path.split(str(pattern))
    hits = _tokens(name)
    stem = (name[: hits[0].start()].rstrip("._-") if hits else "") or os.path.splitext(name)[0]
    return os.path.join(folder, stem) if folder else stem


def sequence_files(pattern) -> dict:
    """{frame: path} of the files on disk that belong to ``pattern`` (hidden files skipped), in frame order."""
    p = parse_pattern(pattern)
    found = {}
    try:
        entries = list(os.scandir(p.folder or "."))
    except OSError:
        return {}
    for entry in entries:
        if entry.name.startswith(".") and not p.prefix.startswith("."):
            continue
        frame = p.frame_of(entry.name)
        if frame is not None:
            found[frame] = os.path.join(p.folder, entry.name) if p.folder else entry.name
    return dict(sorted(found.items()))
