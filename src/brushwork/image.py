"""Image I/O: open, normalise, resize, convert to and from tensors, and save atomically.

Tensors follow one convention throughout brushwork: float32 ``(1, 3, H, W)`` RGB in ``[0, 1]``.

Opening (:func:`open_image`)
    Only JPEG, PNG, WebP, TIFF and BMP are accepted. The pixel count is read from the header and
    checked against ``max_pixels`` (default :func:`max_pixels_limit`) *before* anything is
    decoded (:func:`probe_image` reads only the header, for planning a run); Pillow's own
    settings are never changed. EXIF orientation is applied, and every mode is normalised to
    ``"RGB"`` or ``"RGBA"``: 16-bit and 32-bit integer grayscale is rescaled to 8 bits (Pillow's
    ``convert("L")`` would clip it), float images are clipped to ``[0, 1]`` (or ``[0, 255]`` when
    their maximum is above 1), and anything with transparency (``LA``, ``PA``, a palette or
    grayscale image with a ``transparency`` entry) becomes ``"RGBA"``.

Alpha handling
    Style transfer works on RGB only. :func:`split_alpha` composites an RGBA image over a solid
    background (white by default) and returns the alpha channel separately (``None`` when the
    image is fully opaque). :func:`save_image` re-attaches that alpha, resized to the output,
    when writing PNG or WebP; JPEG has no alpha channel, so it is dropped there (an RGBA image
    saved as JPEG is composited over white).

Saving (:func:`save_image`)
    The output path is validated first (:func:`brushwork.outputs.check_output_path`; plan
    every output of a command with :class:`brushwork.outputs.OutputPlan` before any expensive
    work). The image is written atomically (:func:`brushwork.outputs.write_atomically`): a
    failed or interrupted save never leaves a partial file, never damages an existing one,
    and without ``force`` never replaces a file that appeared while the run worked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from brushwork.errors import BrushworkError
from brushwork.outputs import check_output_path, check_room, write_atomically

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS_ENV",
    "READ_FORMATS",
    "SAVE_FORMATS",
    "array_to_tensor",
    "check_output",
    "check_output_format",
    "check_output_path",
    "is_image_path",
    "load_image",
    "load_image_with_alpha",
    "max_pixels_limit",
    "open_image",
    "probe_image",
    "resize",
    "save_image",
    "save_pixels",
    "split_alpha",
    "to_pil",
    "to_pixels",
    "to_tensor",
]

DEFAULT_MAX_PIXELS = 40_000_000
MAX_PIXELS_ENV = "BRUSHWORK_MAX_PIXELS"

#: Pillow format names :func:`open_image` accepts (others, e.g. EPS or GIF, are refused).
READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
#: File extensions :func:`is_image_path` recognises as input images.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})
#: Output extension -> Pillow format name.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_SUPPORTED_READ = "JPEG, PNG, WebP, TIFF, BMP"
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_DEEP_FORMATS = frozenset({"PNG", "TIFF"})
"""Formats written with 16 bits a channel when asked."""
BAND_ROWS = 256
"""Rows (PNG) or the tile side (TIFF) written at a time from an array."""
_MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}
_INT_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})

PathLike = str | os.PathLike[str]
Color = tuple[int, int, int]


# ----------------------------------------------------------------------------- limits


def max_pixels_limit() -> int:
    """Return the pixel limit: ``$BRUSHWORK_MAX_PIXELS`` if set (non-empty), else the default."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise BrushworkError(f"{MAX_PIXELS_ENV} is invalid: {raw!r} (expected a positive integer)")
    return value


# ----------------------------------------------------------------------------- opening


def _gray_to_uint8(img: Image.Image) -> Image.Image:
    """Rescale an integer (``I;16*``, ``I``) or float (``F``) grayscale image to mode ``L``."""
    arr = np.asarray(img)
    if img.mode == "F":
        values = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        top = 1.0 if values.size == 0 or values.max() <= 1.0 else 255.0
        out = np.round(np.clip(values, 0.0, top) * (255.0 / top))
    else:
        values = arr.astype(np.int64)
        if values.size and values.max() > 255:
            # Assume 16-bit data (0..65535); map with rounding, not clipping.
            out = (np.clip(values, 0, 65535) * 255 + 32767) // 65535
        else:
            out = np.clip(values, 0, 255)
    return Image.fromarray(np.ascontiguousarray(out, dtype=np.uint8))


def _has_transparency(img: Image.Image) -> bool:
    """True for modes with an alpha band, a ``transparency`` entry or an RGBA palette."""
    if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA"


def normalize_mode(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to ``"RGB"`` or ``"RGBA"`` (see the module docstring)."""
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode in _INT_GRAY_MODES or img.mode == "F":
        gray = _gray_to_uint8(img)
        trns = img.info.get("transparency")
        if img.mode != "F" and isinstance(trns, int) and not isinstance(trns, bool):
            rgba = gray.convert("RGBA")
            mask = np.where(np.asarray(img).astype(np.int64) == trns, 0, 255).astype(np.uint8)
            rgba.putalpha(Image.fromarray(mask))
            return rgba
        return gray.convert("RGB")
    if _has_transparency(img):
        return img.convert("RGBA")
    try:
        return img.convert("RGB")
    except ValueError as exc:  # pragma: no cover - exotic modes Pillow cannot convert
        raise BrushworkError(f"unsupported image mode {img.mode!r}: {exc}") from exc


def _check_limit(max_pixels: int | None) -> int:
    limit = max_pixels_limit() if max_pixels is None else max_pixels
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise BrushworkError(f"--max-pixels must be a positive integer, got {max_pixels!r}")
    pil_limit = Image.MAX_IMAGE_PIXELS
    if pil_limit is not None and limit > 2 * pil_limit:
        raise BrushworkError(
            f"--max-pixels {limit:,} is over Pillow's own limit of "
            f"{2 * pil_limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)"
        )
    return limit


def _open_header(path: PathLike, limit: int) -> Image.Image:
    """Open ``path`` lazily (header only) with every check that needs no decoding; the
    caller closes it."""
    p = Path(path)
    try:  # is_dir and exists raise too, for a name too long for the file system
        if p.is_dir():
            raise BrushworkError(f"{path}: is a directory")
        if not p.exists():
            raise BrushworkError(f"{path}: no such file")
        if p.stat().st_size == 0:
            raise BrushworkError(f"{path}: empty file")
    except OSError as exc:
        raise BrushworkError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        im = Image.open(p, formats=READ_FORMATS)
    except UnidentifiedImageError as exc:
        raise BrushworkError(
            f"{path}: not an image PIL can read (supported: {_SUPPORTED_READ})"
        ) from exc
    except PermissionError as exc:
        raise BrushworkError(f"{path}: permission denied") from exc
    except Image.DecompressionBombError as exc:
        raise BrushworkError(
            f"{path}: image is over the limit of {limit:,} pixels ({exc})"
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # a plugin choked on a malformed header
        raise BrushworkError(f"{path}: truncated or corrupt image ({exc})") from exc
    width, height = im.size
    if width * height > limit:
        im.close()
        raise BrushworkError(
            f"{path}: image is {width}x{height} = {width * height:,} pixels, over the "
            f"limit of {limit:,}; raise it with --max-pixels or {MAX_PIXELS_ENV}"
        )
    return im


_TRANSPOSING = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


def probe_image(
    path: PathLike, *, max_pixels: int | None = None, what: str | None = None
) -> tuple[int, int]:
    """(width, height) of an image as :func:`open_image` would return it (EXIF orientation
    applied), read from its header: nothing is decoded. Raises :class:`BrushworkError` as
    :func:`open_image` does for everything that can be told without decoding."""
    try:
        with _open_header(path, _check_limit(max_pixels)) as im:
            width, height = im.size
            try:
                orientation = im.getexif().get(0x0112)
            except Exception:  # malformed EXIF: open_image keeps the pixels as stored
                orientation = None
    except BrushworkError as error:
        if what is None:
            raise
        raise BrushworkError(f"{what}: {error}") from None
    return (height, width) if orientation in _TRANSPOSING else (width, height)


def open_image(path: PathLike, *, max_pixels: int | None = None) -> Image.Image:
    """Open, check, orient and normalise an image; return a loaded ``RGB``/``RGBA`` image.

    Raises :class:`BrushworkError` (message starting with the path) for a missing file, a
    directory, an empty or unreadable file, an image over the pixel limit (checked from the
    header, before decoding) and a truncated or corrupt image. Pillow's settings are left
    as they are (its own decompression-bomb limit is far above brushwork's default).
    """
    with _open_header(path, _check_limit(max_pixels)) as im:
        try:
            im.load()
        except MemoryError:
            raise
        except Exception as exc:  # OSError "image file is truncated", SyntaxError, ...
            raise BrushworkError(f"{path}: truncated or corrupt image ({exc})") from exc
        try:
            oriented = ImageOps.exif_transpose(im)
        except MemoryError:
            raise
        except Exception:  # malformed EXIF: keep the pixels as stored
            oriented = im.copy()
        if oriented is im or oriented is None:  # never hand out the image we close
            oriented = im.copy()
    return normalize_mode(oriented)


# ----------------------------------------------------------------------------- alpha & resize


def split_alpha(
    img: Image.Image, background: Color = (255, 255, 255)
) -> tuple[Image.Image, Image.Image | None]:
    """Composite ``img`` over ``background``; return ``(RGB image, alpha as "L" or None)``.

    The alpha is ``None`` when the image has no transparency or is fully opaque. Other modes are
    normalised first, as in :func:`open_image`.
    """
    if (
        not isinstance(background, tuple | list)
        or len(background) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in background)
    ):
        raise BrushworkError(f"background must be three integers in 0..255, got {background!r}")
    img = normalize_mode(img)
    if img.mode == "RGB":
        return img, None
    alpha = img.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return img.convert("RGB"), None
    base = Image.new("RGBA", img.size, (*background, 255))
    return Image.alpha_composite(base, img).convert("RGB"), alpha


def _check_positive(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BrushworkError(f"--{name} must be a positive integer, got {value!r}")


def _check_resize_args(size: int | None, pixels: int | None) -> None:
    if size is not None and pixels is not None:
        raise BrushworkError("give at most one of --size and --pixels, not both")
    _check_positive("size", size)
    _check_positive("pixels", pixels)


def _target_size(width: int, height: int, size: int | None, pixels: int | None) -> tuple[int, int]:
    if size is not None:
        if width >= height:
            return size, max(1, round(height * size / width))
        return max(1, round(width * size / height)), size
    if pixels is not None:
        scale = (pixels / (width * height)) ** 0.5
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def resize(img: Image.Image, *, size: int | None = None, pixels: int | None = None) -> Image.Image:
    """Resize keeping the aspect ratio (LANCZOS).

    ``size``: the longest side becomes ``size``; ``pixels``: width*height becomes about
    ``pixels``. At most one may be given; with neither the image is returned unchanged.
    """
    _check_resize_args(size, pixels)
    target = _target_size(img.width, img.height, size, pixels)
    if target == img.size:
        return img
    return img.resize(target, Image.Resampling.LANCZOS)


# ----------------------------------------------------------------------------- tensors


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert an RGB PIL image to a float32 ``(1, 3, H, W)`` tensor in ``[0, 1]``.

    Non-RGB images go through :func:`split_alpha` first (alpha composited over white).
    """
    if img.mode != "RGB":
        img = split_alpha(img)[0]
    arr = np.array(img, dtype=np.uint8)  # (H, W, 3), a writable copy
    t = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32).div_(255.0).contiguous()


def array_to_tensor(pixels: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """An RGB uint8 ``(H, W, 3)`` array (a video frame, a tile of a large picture) as a
    float32 ``(1, 3, H, W)`` tensor in ``[0, 1]`` on ``device``."""
    if not pixels.flags.writeable:
        pixels = pixels.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]
    return tensor.float().div(255).to(device)


def to_pil(t: torch.Tensor) -> Image.Image:
    """Convert a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor to an RGB image.

    Values are clamped to ``[0, 1]`` and rounded to uint8; NaN becomes 0.
    Raises ``ValueError`` for any other shape (a programming error, not user input).
    """
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got {tuple(t.shape)}")
    x = t.detach().to(device="cpu", dtype=torch.float32)
    x = torch.nan_to_num(x, nan=0.0).clamp_(0.0, 1.0).mul_(255.0).round_()
    arr = x.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr)


# ----------------------------------------------------------------------------- loading


def load_image_with_alpha(
    path: PathLike,
    *,
    size: int | None = None,
    pixels: int | None = None,
    max_pixels: int | None = None,
    background: Color = (255, 255, 255),
) -> tuple[torch.Tensor, Image.Image | None]:
    """Open, composite, resize and convert; return ``(tensor, alpha or None)``.

    The alpha (mode ``"L"``) has the same size as the tensor; pass it to :func:`save_image`.
    """
    _check_resize_args(size, pixels)
    rgb, alpha = split_alpha(open_image(path, max_pixels=max_pixels), background)
    rgb = resize(rgb, size=size, pixels=pixels)
    if alpha is not None and alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.LANCZOS)
    return to_tensor(rgb), alpha


def load_image(
    path: PathLike,
    *,
    size: int | None = None,
    pixels: int | None = None,
    max_pixels: int | None = None,
    background: Color = (255, 255, 255),
) -> torch.Tensor:
    """Open, composite over ``background`` (alpha dropped), resize and return a tensor."""
    tensor, _ = load_image_with_alpha(
        path, size=size, pixels=pixels, max_pixels=max_pixels, background=background
    )
    return tensor


# ----------------------------------------------------------------------------- saving


def is_image_path(path: PathLike) -> bool:
    """True when ``path`` has an input-image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_output_format(path: PathLike, width: int, height: int, bit_depth: int = 8) -> str:
    """The format ``path``'s extension names, refused before any work if it cannot hold a
    ``width`` × ``height`` image (JPEG at most 65,500 px a side, WebP 16,383) of
    ``bit_depth`` bits a channel (16: PNG and TIFF only)."""
    suffix = Path(path).suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise BrushworkError(f"cannot write {path}: use one of {', '.join(sorted(SAVE_FORMATS))}")
    fmt = SAVE_FORMATS[suffix]
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(width, height) > limit:
        raise BrushworkError(
            f"cannot write {path}: {width}x{height} is too large for {fmt} "
            f"(at most {limit} pixels a side); use .png or .tif, or a smaller --size"
        )
    if bit_depth != 8 and fmt not in _DEEP_FORMATS:
        raise BrushworkError(
            f"cannot write {path} with {bit_depth} bits a channel: {fmt} holds 8; use .png or .tif"
        )
    return fmt


COMPRESSION = {"PNG": 1.0, "TIFF": 1.0, "JPEG": 0.25, "WEBP": 0.25}
"""An output file's size at most, as a share of its raw pixels: zlib (PNG, TIFF) may not
shrink them at all; JPEG and WebP at quality 95 shrink a painting to well under a
quarter."""


def check_output(path: PathLike, width: int, height: int, bit_depth: int = 8) -> None:
    """Everything about writing a ``width`` × ``height`` output to ``path`` that can be
    checked before the work: the format (:func:`check_output_format`) and the room on its
    disk for the file at its largest (:data:`COMPRESSION`)."""
    fmt = check_output_format(path, width, height, bit_depth)
    raw = width * height * 3 * bit_depth // 8
    check_room(path, int(raw * COMPRESSION[fmt]) + 2**20)


def to_pixels(t: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """A ``(1, 3, H, W)`` tensor in [0, 1] → (H, W, 3) uint8 or uint16 (``bit_depth``),
    rounded, NaN as 0."""
    top = 2**bit_depth - 1
    x = torch.nan_to_num(t.detach().to(device="cpu", dtype=torch.float32)[0], nan=0.0)
    x = x.clamp_(0.0, 1.0).mul_(top).round_()
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return x.permute(1, 2, 0).numpy().astype(dtype)


def save_pixels(
    pixels: np.ndarray,
    path: PathLike,
    *,
    force: bool = False,
    alpha: Image.Image | None = None,
    quality: int = 95,
) -> Path:
    """Save an (H, W, 3) uint8 or uint16 array atomically, without a full copy where the
    format allows: PNG row band by row band (pypng), TIFF tile by tile (tifffile, zlib),
    both at the array's depth; JPEG and WebP through Pillow at 8 bits. ``alpha`` is
    re-attached (resized) where the format has transparency."""
    p = check_output_path(path, force=force)
    height, width = pixels.shape[:2]
    bit_depth = 8 * pixels.dtype.itemsize
    fmt = check_output_format(p, width, height)
    if fmt not in _DEEP_FORMATS:
        eight = pixels if bit_depth == 8 else (pixels // 257).astype(np.uint8)
        save_image(Image.fromarray(eight), p, force=force, alpha=alpha, quality=quality)
        return p
    opacity = None
    if alpha is not None:
        mask = alpha.convert("L")
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.Resampling.LANCZOS)
        opacity = np.asarray(mask)[:, :, None].astype(pixels.dtype) * (
            257 if bit_depth == 16 else 1
        )
    write = _write_png if fmt == "PNG" else _write_tiff
    write_atomically(p, lambda tmp: write(tmp, pixels, opacity), replace=force)
    return p


def _band(
    pixels: np.ndarray, opacity: np.ndarray | None, rows: slice, columns: slice
) -> np.ndarray:
    band = pixels[rows, columns]
    return band if opacity is None else np.concatenate([band, opacity[rows, columns]], axis=2)


def _write_png(tmp: str, pixels: np.ndarray, opacity: np.ndarray | None) -> None:
    import png  # pypng: writes rows as they come

    height, width = pixels.shape[:2]
    writer = png.Writer(
        width,
        height,
        greyscale=False,
        alpha=opacity is not None,
        bitdepth=8 * pixels.dtype.itemsize,
        compression=6,
    )

    def rows() -> Iterator[np.ndarray]:
        for top in range(0, height, BAND_ROWS):
            band = _band(pixels, opacity, slice(top, top + BAND_ROWS), slice(None))
            yield from band.reshape(band.shape[0], -1)

    with open(tmp, "wb") as handle:
        writer.write(handle, rows())


def _write_tiff(tmp: str, pixels: np.ndarray, opacity: np.ndarray | None) -> None:
    import tifffile

    height, width = pixels.shape[:2]
    channels = 3 if opacity is None else 4
    side = BAND_ROWS

    def tiles() -> Iterator[np.ndarray]:
        for top in range(0, height, side):
            for left in range(0, width, side):
                tile = np.zeros((side, side, channels), dtype=pixels.dtype)
                part = _band(pixels, opacity, slice(top, top + side), slice(left, left + side))
                tile[: part.shape[0], : part.shape[1]] = part
                yield tile

    tifffile.imwrite(
        tmp,
        data=tiles(),
        shape=(height, width, channels),
        dtype=pixels.dtype,
        tile=(side, side),
        compression="zlib",
        photometric="rgb",
        extrasamples=("unassalpha",) if opacity is not None else None,
        bigtiff=height * width * channels * pixels.dtype.itemsize > 2**31,
    )


def save_image(
    img_or_tensor: Image.Image | torch.Tensor,
    path: PathLike,
    *,
    force: bool = False,
    alpha: Image.Image | None = None,
    quality: int = 95,
) -> Path:
    """Save an image or tensor atomically; return the path written.

    The format comes from the extension (:data:`SAVE_FORMATS`). ``alpha`` is re-attached
    (resized if needed) for PNG and WebP and dropped for JPEG. ``quality`` (1..100) applies to
    JPEG and WebP.
    """
    p = check_output_path(path, force=force)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise BrushworkError(f"--quality must be an integer in 1..100, got {quality!r}")

    img = to_pil(img_or_tensor) if isinstance(img_or_tensor, torch.Tensor) else img_or_tensor
    img = normalize_mode(img)
    fmt = check_output_format(p, img.width, img.height)
    if fmt in _ALPHA_FORMATS:
        if alpha is not None:
            mask = alpha.convert("L")
            if mask.size != img.size:
                mask = mask.resize(img.size, Image.Resampling.LANCZOS)
            img = img.convert("RGB")
            img.putalpha(mask)
    elif img.mode != "RGB":
        img = split_alpha(img)[0]

    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality

    write_atomically(p, lambda tmp: img.save(tmp, format=fmt, **options), replace=force)
    return p
