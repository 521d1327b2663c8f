"""Reconstruction quality of the shipped decoders on held-out photos.

Each decoder from a VGG-19 layer L should invert the encoder: g(f(x)) ≈ x. For every bundled
WCT decoder (``wct-relu1_1`` … ``wct-relu5_1``), Style Swap's inverse network and, for
comparison, the AdaIN decoders (trained to stylize, not to reconstruct), on the photos of
``../shared/data/content`` (never trained on) at ``--size`` px:

* PSNR of g(f(x)) against x (dB, 8-bit range);
* the relative feature error ‖f(g(f(x))) − f(x)‖² / ‖f(x)‖² at L;

means over the photos. Writes the ``decoders`` section of BENCHMARKS.md; the model cards
quote it. ``python -m benchmarks.eval_decoders`` (a minute or two on 2 cores).
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.harness import (
    ROOT,
    arguments,
    machine,
    markdown_table,
    recorded_command,
    write_section,
)
from brushwork import models
from brushwork.encoders import cached_vgg19
from brushwork.image import load_image
from brushwork.methods.feedforward import load_decoder
from brushwork.precision import Precision
from brushwork.training.decoders import score_reconstruction

SHARED = ROOT.parent / "shared" / "data" / "content"
SECTION = "decoders"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--size", type=int, default=512, help="longest side (default 512)")
    args = parser.parse_args()
    photos = sorted(SHARED.glob("*"))
    if not photos:
        raise SystemExit(f"no photos in {SHARED}")
    images = [load_image(p, size=args.size) for p in photos]
    precision = Precision("float32", "cpu", "evaluation")
    rows = []
    for info in models.MODELS.values():
        if info.layer is None or not info.path.is_file():
            continue
        encoder = cached_vgg19(info.layer, "max", "cpu")
        decoder = load_decoder(info.name, method=info.method, layer=info.layer, encoder=encoder)
        scores = [
            score_reconstruction(decoder, encoder, info.layer, [image], precision)
            for image in images
        ]
        psnr = statistics.mean(s["psnr"] for s in scores)
        feature = statistics.mean(s["feature"] for s in scores)
        rows.append(
            [
                info.name,
                info.layer,
                f"{psnr:.2f}",
                f"{min(s['psnr'] for s in scores):.2f}",
                f"{feature:.4f}",
                info.description,
            ]
        )
        print(rows[-1], flush=True)
    header = [
        "decoder",
        "layer",
        "PSNR dB (mean)",
        "PSNR dB (worst)",
        "feature error (relative)",
        "what",
    ]
    text = (
        f"Machine: {machine()}. `{recorded_command(__file__)}` "
        f"({time.strftime('%Y-%m-%d')}): the {len(photos)} photos of ../shared/data/content "
        f"(held out from all training), longest side {args.size} px, float32. PSNR of "
        "g(f(x)) against x; feature error ‖f(g(f(x))) − f(x)‖² / ‖f(x)‖² at the decoder's "
        "layer. The AdaIN decoders were trained to decode stylized features, not to "
        "reconstruct: their rows are a reference.\n\n" + markdown_table(header, rows)
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()
