"""A movie cut short (a copy stopped half-way, its index still at the start) is found before any work.

Reading only the container's packets (no decoding) takes milliseconds; a movie whose video stream
holds fewer packets than its index promises is refused with one line naming the file.
"""
from __future__ import annotations

import os

from monalisa.errors import MediaError
from monalisa.nodes.media import MOVIE_EXTS


def check_movie_complete(path) -> None:
    """MediaError when ``path`` is a movie with missing or unreadable video packets; no-op otherwise."""
    path = str(path)
    if os.path.splitext(path)[1].lower() not in MOVIE_EXTS or not os.path.isfile(path):
        return
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return  # media.probe says so in its own words
            stream = container.streams.video[0]
            promised = int(stream.frames or 0)
            found = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: the movie is damaged ({exc}); re-export or re-copy it") from None
    if promised and found < promised:
        raise MediaError(f"{path}: the movie is cut short ({found} of {promised} frames are in the file); "
                         "re-copy or re-export it")


def decode_error(path, frame, exc) -> MediaError:
    """The one-line error for a frame that fails to decode part-way through a movie."""
    return MediaError(f"{path}: frame {frame} cannot be decoded ({exc}); the file is damaged, re-export or re-copy it")
