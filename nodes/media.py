"""Read frames from a movie (PyAV), an image sequence (OpenImageIO) or a still, as RGB uint8."""

import os
from dataclasses import dataclass

import numpy as np

from monalisa.errors import MediaError
from monalisa.nodes import frames as grammar

MOVIE_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf"}


@dataclass(frozen=True)
class MediaInfo:
    width: int
    height: int
    first: int
    last: int
    count: int
    fps: float


def _is_movie(path):
    return os.path.splitext(str(path))[1].lower() in MOVIE_EXTS


def _sequence_files(path):
    """{frame: file} for a sequence pattern (monalisa.nodes.frames), or None if ``path`` is one file."""
    path = str(path)
    if not grammar.has_pattern(path) or os.path.isfile(path):
        return None
    files = grammar.sequence_files(path)
    if not files:
        raise MediaError(f"{path}: no frames on disk match this sequence pattern; check the folder and padding")
    return files


@dataclass(frozen=True)
class Window:
    """Where an image's pixels sit, as EXR and compositors say it: the data window (the pixels held,
    origin ``x``, ``y``; an overscan still's reaches past the display window) inside the display
    window (``full_*``: the frame the comp sees), and the pixel aspect (2.0: 2:1 anamorphic)."""

    x: int = 0
    y: int = 0
    full_x: int = 0
    full_y: int = 0
    full_width: int = 0
    full_height: int = 0
    pixel_aspect: float = 1.0

    @classmethod
    def of(cls, spec) -> "Window":
        """From an OpenImageIO ImageSpec (formats without windows: the data window is the frame)."""
        aspect = float(spec.getattribute("PixelAspectRatio") or 1.0)
        return cls(spec.x, spec.y, spec.full_x, spec.full_y, spec.full_width or spec.width,
                   spec.full_height or spec.height, aspect if aspect > 0 else 1.0)


@dataclass(frozen=True)
class Still:
    """One image as the render path uses it: straight (unpremultiplied) colour in ``colorspace``.
    ``pixels`` are the data window's; ``window`` says where they sit (rendered frames keep it)."""

    path: str
    pixels: np.ndarray  # float32 (H, W, 3)
    alpha: np.ndarray | None  # float32 (H, W), or None for an opaque image
    colorspace: str  # the OCIO name of ``pixels``' space
    srgb: np.ndarray  # uint8 (H, W, 3) sRGB-encoded: what detectors and models see
    window: Window = Window()

    @property
    def size(self):
        return self.pixels.shape[1], self.pixels.shape[0]


#: OpenImageIO formats whose files may hold an animation (several subimages); a still must be one picture
ANIMATED = ("gif", "webp")


def read_still(path, colorspace=None) -> Still:
    """Read PNG/JPEG/TIFF/DPX/EXR... through OpenImageIO. Float files are ``colour.LINEAR`` and
    integer files sRGB-encoded unless ``colorspace`` says otherwise. Grey becomes RGB; an alpha
    channel is kept straight (PNG is read unassociated, EXR's premultiplied colour is divided out)."""
    import OpenImageIO as oiio

    from monalisa.nodes import colour

    path = str(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: file not found; check the path")
    fix = "re-export it (PNG, JPEG, TIFF, DPX or EXR)"
    hint = oiio.ImageSpec()
    hint.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(path, hint)
    if inp is None:
        raise MediaError(f"{path}: cannot read this image ({oiio.geterror().strip() or 'unknown format'}); {fix}")
    try:
        spec = inp.spec()
        if inp.format_name() in ANIMATED and inp.seek_subimage(1, 0):
            raise MediaError(f"{path}: an animated {inp.format_name().upper()} holds several frames, and a still is "
                             "one picture; save the frame you want as a PNG and give that")
        pix = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        error = inp.geterror().strip()
    finally:
        inp.close()
    if pix is None or error or spec.width == 0:
        raise MediaError(f"{path}: cannot decode its pixels ({error or 'no pixel data'}); the file may be "
                         f"truncated or corrupt; {fix}")
    pix = np.asarray(pix, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    is_float = spec.format.basetype in (oiio.FLOAT, oiio.HALF, oiio.DOUBLE)
    names = [n.upper() for n in spec.channelnames]
    # OpenImageIO's GIF reader says alpha_channel 4 of 4 channels: trust it only within range
    a_index = spec.alpha_channel if 0 <= spec.alpha_channel < spec.nchannels else (names.index("A") if "A" in names else -1)
    alpha = None
    if a_index >= 0:
        alpha = np.clip(np.nan_to_num(pix[..., a_index]), 0.0, 1.0)
        pix = np.delete(pix, a_index, axis=-1)
    rgb = np.repeat(pix[..., :1], 3, axis=-1) if pix.shape[-1] < 3 else pix[..., :3]
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=65504.0, neginf=-65504.0)
    if alpha is not None and is_float:  # EXR colour is premultiplied by alpha
        rgb = np.where(alpha[..., None] > 0, rgb / np.maximum(alpha[..., None], 1e-6), 0.0)
    if alpha is not None and np.all(alpha >= 1.0):
        alpha = None
    space = colour.resolve(colorspace or (colour.LINEAR if is_float else colour.SRGB))
    rgb = np.ascontiguousarray(rgb, np.float32)
    return Still(path, rgb, alpha, space, colour.to_srgb8(rgb, space), Window.of(spec))


def read_image(path, colorspace=None):
    """A still as RGB uint8 (H, W, 3) sRGB: see :func:`read_still`."""
    return read_still(path, colorspace).srgb


def _open_movie(path):
    import av

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes); re-export or re-copy the movie")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot open this movie ({exc}); check the file or convert it to mp4/mov") from exc


def _movie_frames(path):
    container = _open_movie(path)
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream; give a movie with video or an image sequence")
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            rot = int(getattr(frame, "rotation", 0) or 0) % 360
            if rot:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=rot // 90))
            yield i, rgb
    finally:
        container.close()


def _first_number(path, start_frame) -> int:
    """The frame number of a movie's (or a still's) first frame: ``start_frame``, as a compositor's Read
    starts a movie where the comp starts it; 0 when not given. An image sequence keeps its own numbers."""
    if start_frame is None:
        return 0
    first = grammar.check_frame(start_frame)
    if first < 0:
        raise MediaError(f"{path}: start frame {first} is negative; frame numbers start at 0")
    if not _is_movie(path) and _sequence_files(path) is not None:
        raise MediaError(f"{path}: an image sequence keeps its own frame numbers; --start-frame numbers a movie's "
                         "frames, leave it out for a sequence")
    return first


def probe(path, start_frame=None):
    """MediaInfo for a movie, sequence pattern or still; a movie's frames are numbered from
    ``start_frame`` (default 0), a sequence's are its files'."""
    path = str(path)
    first_number = _first_number(path, start_frame)
    if _is_movie(path):
        if not os.path.isfile(path):
            raise MediaError(f"{path}: file not found; check the path")
        container = _open_movie(path)
        try:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream; give a movie with video or an image sequence")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            count = int(stream.frames or 0)
        finally:
            container.close()
        from monalisa.nodes.moviecheck import check_movie_complete

        check_movie_complete(path)  # a movie cut short fails here, before any long decoding
        if count == 0:
            count = sum(1 for _ in _movie_frames(path))
        if count == 0:
            raise MediaError(f"{path}: the movie has no frames; re-export it")
        _, first = next(iter(_movie_frames(path)))
        return MediaInfo(first.shape[1], first.shape[0], first_number, first_number + count - 1, count, fps)
    files = _sequence_files(path)
    if files is None:
        img = read_image(path)
        return MediaInfo(img.shape[1], img.shape[0], first_number, first_number, 1, 0.0)
    first_frame = next(iter(files))
    img = read_image(files[first_frame])
    return MediaInfo(img.shape[1], img.shape[0], first_frame, max(files), len(files), _header_fps(files[first_frame]))


def _header_fps(path) -> float:
    """The frame rate an image file's header records (``FramesPerSecond``, as Nuke writes EXR and DPX
    frames), else 0.0 (unknown)."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        return 0.0
    try:
        fps = float(inp.spec().get_float_attribute("FramesPerSecond", 0.0))
    finally:
        inp.close()
    return fps if fps > 0 and fps == fps and fps != float("inf") else 0.0


def check_sequence(path, start=None, end=None):
    """Refuse (one line) an image sequence with a gap in [start, end]; movies and stills pass."""
    path = str(path)
    if _is_movie(path):
        return
    files = _sequence_files(path)
    if files is None:
        return
    lo, hi = max(min(files), start if start is not None else min(files)), min(max(files), end if end is not None else max(files))
    missing = [n for n in range(lo, hi + 1) if n not in files]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MediaError(f"{path}: frame {missing[0]}{more} is missing from the sequence ({lo}-{hi}); "
                         "render or copy the missing frames, or choose a range without them")


def iter_frames(path, start=None, end=None, step=1, start_frame=None):
    """Yield (frame_number, rgb uint8 HxWx3) for frames in [start, end] every ``step``; a movie's frames
    are numbered from ``start_frame`` (default 0), a sequence's are its files'."""
    path = str(path)
    first_number = _first_number(path, start_frame)

    def wanted(n):
        return (start is None or n >= start) and (end is None or n <= end) and ((n - (start or 0)) % step == 0)

    if _is_movie(path):
        if not os.path.isfile(path):
            raise MediaError(f"{path}: file not found; check the path")
        for i, rgb in _movie_frames(path):
            n = first_number + i
            if end is not None and n > end:
                break
            if wanted(n):
                yield n, rgb
        return
    files = _sequence_files(path)
    if files is None:
        yield first_number, read_image(path)
        return
    for n, f in files.items():
        if wanted(n):
            yield n, read_image(f)
