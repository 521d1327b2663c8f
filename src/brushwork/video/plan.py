"""A video run's checks, before any work (step 1 of :mod:`brushwork.video.runner`): the
method, its options and the video options, the styles, masks and memory from their sizes,
the output and the work folder (:mod:`brushwork.outputs`' rule), the input scanned whole
(:func:`brushwork.video.io.scan`), the container and codec
(:func:`brushwork.video.writer.plan_output`), the working size, and the work folder's
manifest (:mod:`brushwork.video.work`)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.options import split_options
from brushwork.video.options import VideoOptions


def _split(method: str, values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    from brushwork.methods import get_entry
    from brushwork.stylizer import Controls

    cls = get_entry(method).load()
    controls, options, video = split_options(values, Controls, cls.options_class, VideoOptions)
    return controls, options, video


class PlannedRun:
    """A video run checked and planned: the stylizer, the styles, the input's
    :class:`~brushwork.video.io.VideoInfo`, the output's
    :class:`~brushwork.video.writer.OutputSpec`, the working size and memory plan, the work
    folder (:meth:`check`). :class:`brushwork.video.runner._Run` does the work."""

    def __init__(
        self,
        input: Any,
        style: Any,
        output: Any,
        method: str,
        mask: Any,
        regions: Mapping[str, int | None] | None,
        encoder: Any,
        force: bool,
        options: dict[str, Any],
    ) -> None:
        from brushwork.stylizer import Controls, Stylizer

        self.started = time.perf_counter()
        controls, method_options, video = _split(method, options)
        # option values that may name files the run reads (a model, the weights)
        self.read = [*controls.values(), *method_options.values()]
        self.video = VideoOptions(**video)
        self.video.validate()
        self.stylizer = Stylizer(method, Controls(**controls), encoder=encoder, **method_options)
        self.input, self.style, self.output = input, style, output
        self.mask, self.regions, self.force = mask, regions, force

    def check(self) -> None:
        """Everything, before any work (see the module docstring)."""
        from brushwork.outputs import clear_temporaries
        from brushwork.video.io import scan
        from brushwork.video.writer import plan_output

        video = self.video
        self._check_method()
        style_sizes = self._check_images()
        # the output's and the work folder's paths, container and codec before the input is
        # decoded (a long clip takes a while), then again with the input's audio
        self.work_dir = self._plan_outputs()
        plan_output(self.output, codec=video.codec, crf=video.crf, audio=False)
        max_pixels = self.stylizer.controls.max_pixels
        self.info = scan(self.input, fps=video.fps, max_pixels=max_pixels, partial=video.partial)
        self.count = min(self.info.frames, video.max_frames or self.info.frames)
        self.spec = plan_output(
            self.output, codec=video.codec, crf=video.crf, audio=video.audio, info=self.info
        )
        self._plan_size(style_sizes)
        self._open_work()
        # this run owns the output now: what a killed run left beside it goes
        clear_temporaries(self.spec.path)
        clear_temporaries(self.work_dir)

    def _check_method(self) -> None:
        """The temporal options against the method: optimization or one pass."""
        video, method = self.video, self.stylizer.method
        controls = self.stylizer.controls
        self.optimization = method.accepts_init()
        multiscale = controls.start_size is not None or controls.scale_iterations is not None
        if video.temporal and self.optimization and multiscale:
            raise BrushworkError(
                "temporal consistency needs a single-scale run: drop "
                "--start-size/--scale-iterations, or pass --no-temporal"
            )
        self.tracking = video.temporal and not self.optimization and video.blend > 0
        if video.later_iterations is not None and not self.optimization:
            raise BrushworkError(
                f"--later-iterations needs an optimization method; "
                f"{method.name} makes each frame in one pass"
            )

    def _check_images(self) -> list[tuple[int, int]]:
        """The styles, their weights and the masks; the styles' sizes."""
        from brushwork.inputs import as_styles, image_size
        from brushwork.methods.base import check_style_weights

        self.styles = as_styles(self.style)
        max_pixels = self.stylizer.controls.max_pixels
        check_style_weights([s.weight for s in self.styles])
        sizes = [
            image_size(s.image, f"style {n}", max_pixels) for n, s in enumerate(self.styles, 1)
        ]
        for n, s in enumerate(self.styles, 1):
            if s.mask is not None:
                image_size(s.mask, f"mask of style {n}", max_pixels)
        if self.mask is not None:
            image_size(self.mask, "mask", max_pixels)
        self.stylizer.check_files()
        return sizes

    def _plan_outputs(self) -> Path:
        """Check the output and the work folder against the inputs and each other (see
        the module docstring); the work folder's path."""
        from brushwork.outputs import OutputPlan, inputs_of
        from brushwork.video.work import default_work_dir, plan_work_folder
        from brushwork.video.writer import add_output

        styles = [(s.image, s.mask) for s in self.styles]
        inputs = inputs_of(self.input, self.mask, styles, *self.read)
        plan = OutputPlan(self.force, inputs=inputs)
        output = add_output(plan, self.output)
        work_dir = self.video.work_dir or default_work_dir(output)
        return plan_work_folder(plan, work_dir, resume=self.video.resume)

    def _plan_size(self, style_sizes: list[tuple[int, int]]) -> None:
        """The working size and the memory plan (even sides where the codec needs them)."""
        from brushwork.video.io import even

        stylizer = self.stylizer
        layers = [s.layers for s in self.styles]
        plan = stylizer.plan(self.info.size, style_sizes, layers)
        width, height = plan.content_size
        if self.spec.even and (width % 2 or height % 2):
            wanted = (even(width), even(height))
            ev.warn(
                f"the output is {wanted[0]}x{wanted[1]} px, not {width}x{height}: "
                f"{self.spec.codec} needs even sides"
            )
            stylizer.controls.size = max(wanted)
            plan = stylizer.plan(wanted, style_sizes, layers)
        if plan.tiles is not None:
            raise BrushworkError(
                f"video frames are painted whole, and {plan.content_size[0]}x"
                f"{plan.content_size[1]} px frames would need {plan.tiles.count} tiles; use "
                "a smaller --size (or a larger --max-memory), without --tile"
            )
        self.plan = plan
        self.size = plan.content_size

    def _open_work(self) -> None:
        """The work folder, new or (``resume``) an earlier run's with the same manifest."""
        from brushwork.video.work import WorkFolder, fingerprint, settings

        manifest = {
            "input": fingerprint(self.info),
            "settings": settings(
                self.stylizer, self.size, self.styles, self.mask, self.regions, self._temporal()
            ),
        }
        manifest = json.loads(json.dumps(manifest))
        self.work = WorkFolder.prepare(
            self.work_dir, manifest, resume=self.video.resume, replace=self.force
        )

    def _temporal(self) -> dict[str, Any]:
        """The temporal settings that change a stylized frame."""
        video = self.video
        temporal: dict[str, Any] = {"on": video.temporal, "flow": video.flow}
        if self.optimization:
            temporal.update(
                weight=video.temporal_weight,
                frames=list(video.temporal_frames),
                later_iterations=video.later_iterations,
            )
        else:
            temporal.update(
                blend=video.blend, history=video.history, max_age=video.max_age, tracker=2
            )
        return temporal
