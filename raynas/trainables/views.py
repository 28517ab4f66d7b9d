"""Random augmented views of an image batch for contrastive learning (SimCLR's recipe).

One call draws an independent view of every image, vectorised over the batch in plain torch
(no torchvision, no loop over images).  Pixels are ``N x C x H x W``, nominally in [0, 1];
unlike torchvision, no step clips them, so data on another scale (``synthetic``) keeps it:

* **random resized crop**: a box covering a fraction ``U(crop_scale, 1)`` of the area with
  aspect ratio log-uniform in [3/4, 4/3], placed uniformly, resized back to ``H x W``
  (bilinear, one ``grid_sample``).  A box wider or taller than the image is clipped to it,
  where torchvision would redraw;
* **horizontal flip** with probability 1/2 (folded into the crop's affine map), only when
  ``flip`` (digits turn into other symbols when mirrored, so their datasets say no);
* **colour jitter** with probability ``jitter_p``: brightness, contrast, saturation by
  factors ``U(1 - 0.8 s, 1 + 0.8 s)`` and a hue rotation of ``U(-0.2 s, 0.2 s)`` turns (in
  YIQ space), ``s`` = ``jitter``, in that order;
* **grayscale** with probability ``grayscale_p``.

A one-channel image has no colour: it gets brightness and contrast only, no saturation,
hue or grayscale.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from raynas.trainables.settings import ViewSettings

#: RGB -> luma (ITU-R 601), as torchvision's grayscale
LUMA = (0.299, 0.587, 0.114)
#: RGB -> YIQ; hue is a rotation of the (I, Q) plane
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def resized_crop(pixels: torch.Tensor, scale: float, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random resized crop (and flip) of every image, output the input's size."""
    n, device = len(pixels), pixels.device
    area = _uniform(n, scale, 1.0, generator, device)
    log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), generator, device)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)  # fractions of the image side
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    cx = (1 - width) * _uniform(n, -1.0, 1.0, generator, device)  # box centre in [-1, 1] coordinates
    cy = (1 - height) * _uniform(n, -1.0, 1.0, generator, device)
    ones = torch.ones(n, device=device)
    sign = torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -ones, ones) if flip else ones
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = width * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = height, cy
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(pixels: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images, ``N x 1 x H x W``."""
    return torch.einsum("c,nchw->nhw", torch.tensor(LUMA, device=pixels.device, dtype=pixels.dtype), pixels).unsqueeze(1)


def colour_jitter(pixels: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness, contrast, then (RGB only) saturation and hue, one random factor per image."""
    n, c = pixels.shape[:2]
    device = pixels.device

    def factor() -> torch.Tensor:
        return _uniform(n, 1 - 0.8 * strength, 1 + 0.8 * strength, generator, device).view(n, 1, 1, 1)

    x = (pixels * factor())
    gray = grayscale(x) if c == 3 else x
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor() + mean)
    if c == 3:
        gray = grayscale(x)
        x = ((x - gray) * factor() + gray)
        angle = 2 * math.pi * _uniform(n, -0.2 * strength, 0.2 * strength, generator, device)
        cos, sin = angle.cos(), angle.sin()
        rotation = torch.zeros(n, 3, 3, device=device)
        rotation[:, 0, 0] = 1.0
        rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
        rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
        yiq = _YIQ.to(device)
        transform = torch.linalg.inv(yiq) @ rotation @ yiq  # n x 3 x 3, in RGB
        x = torch.einsum("nij,njhw->nihw", transform, x)
    return x


def random_view(pixels: torch.Tensor, settings: ViewSettings, generator: torch.Generator | None = None) -> torch.Tensor:
    """One augmented view of every image of ``pixels``."""
    n, c = pixels.shape[:2]
    view = resized_crop(pixels, settings.crop_scale, settings.flip, generator)
    jittered = colour_jitter(view, settings.jitter, generator)
    apply = (torch.rand(n, generator=generator, device=pixels.device) < settings.jitter_p).view(n, 1, 1, 1)
    view = torch.where(apply, jittered, view)
    if c == 3:
        gray = (torch.rand(n, generator=generator, device=pixels.device) < settings.grayscale_p).view(n, 1, 1, 1)
        view = torch.where(gray, grayscale(view).expand_as(view), view)
    return view
