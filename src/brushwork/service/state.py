"""The service's state, one per app (``app.state.service``), and how routes reach it: the
:class:`Service` (the job manager, the config, what a submission goes through, the cached
listings) and the dependencies :data:`ServiceDep` and :data:`Owner`.

A submission is checked in three stages, each before anything costlier: the form (kind,
method, options, style weights, regions: no upload stored yet), then each upload as it is
stored (read from its header: the pixel limit, the format), then the whole job planned
(sizes, memory) and the images decoded once.
"""

# no `from __future__ import annotations`: FastAPI reads the dependencies' annotations
import io
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from brushwork.defaults import DEFAULT_METHOD, DEFAULT_ONE_PASS_METHOD
from brushwork.errors import BrushworkError
from brushwork.methods import get_method
from brushwork.service.config import ServiceConfig
from brushwork.service.jobs import JobManager
from brushwork.service.records import new_id, valid_id
from brushwork.service.spec import (
    JobSpec,
    available_kinds,
    check_kind,
    check_video_options,
    client_controls,
    client_options,
    client_video_options,
    missing_files,
    one_pass,
    parse_options,
    parse_regions,
    parse_styles,
    split_video,
)
from brushwork.service.store import Job
from brushwork.service.uploads import (
    OWNER_KEY,
    ApiError,
    check_decodes,
    check_header,
    check_video,
    display_name,
    public_message,
    store_upload,
    sync_folder,
)

if TYPE_CHECKING:
    from brushwork.painter import Painter

METHODS_TTL = 30.0
"""Seconds ``GET /methods`` is kept before it is built again (networks installed meanwhile
show up)."""


@dataclass
class Form:
    """A submission's fields, checked before any upload is stored."""

    kind: str
    method: str
    values: dict[str, Any]
    """Options and controls as the client gave them."""
    weights: list[dict[str, Any]]
    """Per style upload: ``weight`` and ``layers``."""
    regions: dict[str, int | None] | None
    painter: "Painter"
    """The :class:`~brushwork.painter.Painter` the job will run (its files checked)."""

    @property
    def video(self) -> bool:
        return self.kind == "video"


def job_spec(
    form: Form, content: UploadFile, style: list[UploadFile], mask: UploadFile | None
) -> JobSpec:
    """What a worker needs to run the job of a checked form whose uploads are stored under
    their fixed names (the clients' file names kept for display only)."""
    styles = [
        {
            "file": f"style-{n}",
            "weight": w["weight"],
            "layers": w["layers"],
            "name": display_name(style[n - 1].filename),
        }
        for n, w in enumerate(form.weights, 1)
    ]
    return JobSpec(
        form.kind,
        form.method,
        form.values,
        styles=styles,
        mask="mask" if mask is not None else None,
        regions=form.regions,
        names={"content": display_name(content.filename) or ""},
    )


class Service:
    """The app's state: the manager, the config, the bundled examples."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.manager = JobManager(config)
        self.decoding = threading.Semaphore(2)
        self._examples: dict[str, bytes] = {}
        self._methods: tuple[float, dict[str, Any]] | None = None
        self._methods_lock = threading.Lock()

    # ------------------------------------------------------------- jobs

    def job_of(self, job_id: str, owner: str) -> Job:
        """The job if it exists and belongs to ``owner``; else one 404 for all cases."""
        job = self.manager.store.get(job_id) if valid_id(job_id) else None
        if job is None or (self.config.tokens and job.owner != owner):
            raise ApiError(404, f"no job {job_id[:40]!r} (unknown, expired, or another token's)")
        return job

    def accept(
        self,
        owner: str,
        kind: str | None,
        method: str,
        options: str | None,
        styles: str | None,
        regions: str | None,
        content: UploadFile,
        style: list[UploadFile],
        mask: UploadFile | None,
        sync: bool = False,
    ) -> Job:
        """Check a submission completely and build its folder; the job, not yet queued.
        Runs in a thread. Everything that needs no upload is checked before any upload is
        stored (:meth:`check_form`); then the uploads are stored and synced, checked from
        their headers, planned (sizes against ``max_side``) and decoded once
        (:meth:`build_job`). A refused submission leaves no folder."""
        form = self.check_form(kind, method, options, styles, regions, style, mask, sync)
        job_id = new_id()
        folder = self.manager.folder(job_id)
        folder.mkdir()
        try:
            return self.build_job(owner, job_id, form, content, style, mask)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def check_form(
        self,
        kind: str | None,
        method: str,
        options: str | None,
        styles: str | None,
        regions: str | None,
        style: list[UploadFile],
        mask: UploadFile | None,
        sync: bool,
    ) -> Form:
        """The form checked with the CLI's rules and messages: the number of styles, the
        options (``sync``: ``POST /stylize`` takes one-pass runs only), the weights, the
        regions, and the files the options name."""
        config = self.config
        kind = check_kind(kind)
        if len(style) > config.max_styles:
            raise ApiError(
                422, f"{len(style)} style images; this server takes at most {config.max_styles}"
            )
        values = parse_options(
            method,
            options,
            max_side=config.max_side,
            extra_models=self.manager.extra_models,
            kind=kind,
        )
        if kind == "video":
            check_video_options(values)
        if not style and get_method(method).style_images:
            raise ApiError(422, "at least one style image is needed")
        weights = parse_styles(styles, len(style))
        region_map = parse_regions(regions)
        if region_map is not None and mask is None:
            raise ApiError(422, "regions need a label image (mask)")
        painter = self._form_painter(kind, method, values, sync)
        return Form(kind, method, values, weights, region_map, painter)

    def _form_painter(
        self, kind: str, method: str, values: dict[str, Any], sync: bool
    ) -> "Painter":
        """The painter of a form's values (every option checked), refused for ``POST
        /stylize`` unless it paints in one pass, once the files it names are there."""
        from brushwork.painter import Painter

        image_values = split_video(values)[0] if kind == "video" else values
        painter = Painter(
            method,
            self.manager.run_values(JobSpec(kind, method, image_values)),
            encoder=self.config.encoder,
            cache_size=0,
        )
        if sync and not one_pass(painter.stylizer.method):
            raise ApiError(
                422,
                f"POST /stylize is for one-pass methods; {method} with these options "
                "optimizes for many steps: use POST /jobs and follow its events",
            )
        painter.stylizer.check_files()
        return painter

    def build_job(
        self,
        owner: str,
        job_id: str,
        form: Form,
        content: UploadFile,
        style: list[UploadFile],
        mask: UploadFile | None,
    ) -> Job:
        """Store the uploads of a checked form in the job's folder, plan the job and decode
        the images; the job, not yet queued."""
        folder = self.manager.folder(job_id)
        files = [("content", "content", content)]
        files += [(f"style-{n}", f"style {n}", upload) for n, upload in enumerate(style, 1)]
        if mask is not None:
            files.append(("mask", "mask", mask))
        labels, info = self._store_uploads(folder, form, files)
        total = self._plan(folder, form, labels, info, has_mask=mask is not None)
        with self.decoding:
            for path, label in labels.items():
                check_decodes(Path(path), label, self.config.max_pixels)
        spec = job_spec(form, content, style, mask)
        return Job(
            job_id,
            owner,
            form.kind,
            form.method,
            "queued",
            spec.to_json(),
            time.time(),
            total=total,
        )

    def _store_uploads(
        self, folder: Path, form: Form, files: list[tuple[str, str, UploadFile]]
    ) -> tuple[dict[Path | str, str], Any]:
        """Store each upload under its fixed name and check it from its header (a video
        content: checked whole); then sync the folder. The images' labels by path, and
        the video's info (None for an image job)."""
        config = self.config
        labels: dict[Path | str, str] = {}
        info = None
        for name, label, upload in files:
            path = folder / name
            store_upload(upload, path)
            if form.video and name == "content":
                with self.decoding:
                    info = check_video(
                        path,
                        label,
                        max_pixels=config.max_pixels,
                        max_frames=config.max_video_frames,
                        max_seconds=config.max_video_seconds,
                        partial=bool(form.values.get("partial", False)),
                    )
                continue
            labels[path] = label
            check_header(path, label, config.max_pixels)
        sync_folder(folder)
        return labels, info

    def _plan(
        self,
        folder: Path,
        form: Form,
        labels: dict[Path | str, str],
        info: Any,
        *,
        has_mask: bool,
    ) -> int:
        """Plan the job from the stored uploads' headers (its sizes against ``max_side``);
        its total steps (a video job: one per frame)."""
        from brushwork.inputs import Style

        style_list = [
            Style(
                folder / f"style-{n}",
                w["weight"],
                None if w["layers"] is None else tuple(w["layers"]),
            )
            for n, w in enumerate(form.weights, 1)
        ]
        mask_path = folder / "mask" if has_mask else None
        try:
            if info is not None:
                plan = self._plan_video(form.painter, info.size, style_list, mask_path)
            else:
                plan = form.painter.check(folder / "content", style_list, mask_path)
        except BrushworkError as error:
            labels_all = {**labels, folder / "content": "content"}
            raise ApiError(422, public_message(error, labels_all)) from None
        self._check_sides(plan)
        if info is None:
            return plan.total_steps
        return min(info.frames, form.values.get("max_frames") or info.frames)

    def _plan_video(
        self, painter: Any, size: tuple[int, int], styles: list[Any], mask: Path | None
    ) -> Any:
        """A video job's plan for frames of ``size`` (what :meth:`Painter.check` tells of an
        image, from the styles' and mask's headers)."""
        from brushwork.inputs import image_size
        from brushwork.methods.base import check_style_weights

        stylizer = painter.stylizer
        limit = self.config.max_pixels
        check_style_weights([s.weight for s in styles])
        sizes = [image_size(s.image, f"style {n}", limit) for n, s in enumerate(styles, 1)]
        if mask is not None:
            image_size(mask, "mask", limit)
        stylizer.check_files()
        return stylizer.plan(size, sizes, [s.layers for s in styles])

    def _check_sides(self, plan: Any) -> None:
        """Refuse a plan whose output or any style image would be larger than
        ``max_side`` (a small output with a large style scale plans a large style)."""
        limit = self.config.max_side
        width, height = plan.content_size
        if max(width, height) > limit:
            raise ApiError(
                422,
                f"the output would be {width}x{height} px, over this server's {limit} px; "
                "give a smaller size",
            )
        for number, (w, h) in enumerate(plan.style_sizes, 1):
            if max(w, h) > limit:
                raise ApiError(
                    422,
                    f"style {number} would be {w}x{h} px, over this server's {limit} px; "
                    "give a smaller style_scale or style_size",
                )

    async def submit(self, owner: str, fields: dict[str, Any], *, sync: bool = False) -> Job:
        """Accept a submission and queue it (``sync``: for ``POST /stylize``)."""
        manager = self.manager
        if await run_in_threadpool(manager.queue_full):
            raise self.too_busy()
        job = await run_in_threadpool(self.accept, owner, sync=sync, **fields)
        if not await run_in_threadpool(manager.submit, job):
            shutil.rmtree(manager.folder(job.id), ignore_errors=True)
            raise self.too_busy()
        return job

    def too_busy(self) -> ApiError:
        """``503`` while the server stops, else ``429`` (the queue is full), each with
        ``Retry-After``."""
        seconds = self.manager.retry_after()
        if self.manager.stopping.is_set():
            return ApiError(503, "the server is stopping", {"Retry-After": str(seconds)})
        return ApiError(
            429,
            f"the queue is full ({self.config.queue} jobs waiting); try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )

    def refusal(self) -> tuple[int, str, dict[str, str]] | None:
        """Why a submission is refused before its body is read (reads the index)."""
        if not self.manager.queue_full() and not self.manager.stopping.is_set():
            return None
        error = self.too_busy()
        return error.status, str(error), error.headers

    # ------------------------------------------------------------- listings

    def methods(self) -> dict[str, Any]:
        """``GET /methods`` (built at most every :data:`METHODS_TTL` seconds)."""
        with self._methods_lock:
            if self._methods is not None and time.monotonic() - self._methods[0] < METHODS_TTL:
                return self._methods[1]
            built = {
                "methods": self._describe_methods(),
                "controls": client_controls(),
                "limits": self._limits(),
                "kinds": list(available_kinds()),
                # the method of a form that names none: a job's, and POST /stylize's (the page's)
                "defaults": {"job": DEFAULT_METHOD, "sync": DEFAULT_ONE_PASS_METHOD},
                # what a video job may set besides a method's options (None: no video jobs)
                "video": (
                    {"options": client_video_options()} if "video" in available_kinds() else None
                ),
            }
            self._methods = (time.monotonic(), built)
            return built

    def _describe_methods(self) -> list[dict[str, Any]]:
        """Every registered method with the options a job may set, whether ``POST
        /stylize`` takes it with its defaults (``sync``), whether its networks are here
        (``ready``, ``problem``) and the names its ``model`` takes (``models``)."""
        from brushwork.methods import describe, get_entry

        extra = self.manager.extra_models
        found = []
        for entry in describe():
            name = entry["name"]
            missing = missing_files(name)
            entry = dict(entry, options=client_options(name, extra, missing))
            # the rule of POST /stylize, for the method's default options
            entry["sync"] = one_pass(get_entry(name).load()())
            entry["ready"] = "" not in missing
            entry["problem"] = missing.get("")
            model = next((o for o in entry["options"] if o["name"] == "model"), None)
            if model is not None:  # the bundled ones installed, and the operator's
                entry["models"] = list(model["choices"])
            found.append(entry)
        return found

    def _limits(self) -> dict[str, Any]:
        """This server's limits, as ``GET /methods`` lists them."""
        c = self.config
        return {
            "max_upload_bytes": c.max_upload,
            "max_pixels": c.max_pixels,
            "max_styles": c.max_styles,
            "max_side": c.max_side,
            "job_timeout_seconds": c.job_timeout,
            "expire_seconds": c.expire,
            "queue": c.queue,
            "workers": c.workers,
            "max_video_frames": c.max_video_frames,
            "max_video_seconds": c.max_video_seconds,
        }

    def example(self, name: str) -> bytes:
        """A bundled example as PNG bytes (a content photo at most 512 px), kept after the
        first request; ``404`` for an unknown name."""
        from brushwork import examples

        if name not in self._examples:
            if name in examples.STYLES:
                self._examples[name] = examples.style_path(name).read_bytes()
            elif name in examples.CONTENTS:
                image = examples.content_image(name)
                image.thumbnail((512, 512))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                self._examples[name] = buffer.getvalue()
            else:
                raise ApiError(
                    404,
                    f"no example {name[:40]!r}; examples: "
                    f"{', '.join((*examples.CONTENTS, *examples.STYLES))}",
                )
        return self._examples[name]


def owner_of(request: Request) -> str:
    """The owner id :class:`~brushwork.service.uploads.TokenGate` found for the request's
    token ('' when the server has no tokens)."""
    return str(request.scope.get(OWNER_KEY, ""))


async def service_of(request: Request) -> Service:
    """The app's :class:`Service` (``app.state.service``)."""
    service: Service = request.app.state.service
    return service


Owner = Annotated[str, Depends(owner_of)]
"""A route parameter: the requesting token's owner id."""
ServiceDep = Annotated[Service, Depends(service_of)]
"""A route parameter: the app's :class:`Service`."""
