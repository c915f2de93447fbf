"""The image classifiers the book trains: ResNet-20, ResNet-18 and VGG-16
(CIFAR variants) and Net4, with any activation.

ResNet-20 is He et al.'s CIFAR network (3 stages of 3 basic blocks,
16/32/64 channels, 0.27M parameters). VGG-16 is the usual CIFAR variant
(13 convolutions with batch norm, 5 max-pools, one linear classifier);
``width`` scales its channels (1.0 = 64..512, 14.7M parameters; the
committed checkpoints use 0.25 to stay under 5 MB). Both take 32x32 inputs
(MNIST and Fashion-MNIST are zero-padded from 28x28) and ``activation``
names the nonlinearity from the activation table (Fig. 6 swaps ReLU for
GELU, SiLU, ...). ResNet-18 is the CIFAR form (3x3 stem, no max-pool, four
stages of two basic blocks, 64..512 channels times ``width``). Net4 is
32c5-p2-64c5-p2-1024-10 (Yu et al. 2022; paper 2, Table 1) on 28x28 inputs,
with average pooling.
"""
from __future__ import annotations

import torch
from torch import nn

from ..activations import activation_module


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = activation_module(activation)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act2 = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: a 3x3 stem, stages of basic blocks, global average pooling."""

    def __init__(self, stages: list[tuple[int, int, int]], num_classes: int, in_channels: int,
                 activation: str) -> None:
        super().__init__()
        cin = stages[0][0]
        self.conv = nn.Conv2d(in_channels, cin, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cin)
        self.act = activation_module(activation)
        blocks = []
        for cout, stride, n in stages:
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, activation))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.act(self.bn(self.conv(x))))
        return self.fc(self.pool(x).flatten(1))


class ResNet20(ResNet):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, activation: str = "relu") -> None:
        super().__init__([(16, 1, 3), (32, 2, 3), (64, 2, 3)], num_classes, in_channels, activation)


class ResNet18(ResNet):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, activation: str = "relu",
                 width: float = 1.0) -> None:
        c = [max(1, int(round(v * width))) for v in (64, 128, 256, 512)]
        super().__init__([(c[0], 1, 2), (c[1], 2, 2), (c[2], 2, 2), (c[3], 2, 2)], num_classes, in_channels,
                         activation)


class Net4(nn.Module):
    """32c5-p2-64c5-p2-1024-10 with average pooling (28x28 inputs); ``dropout`` before the
    last layer (training only: the identity in eval mode, and it holds no weights)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "leaky_relu:0.1",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 5)
        self.act1 = activation_module(activation)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.act2 = activation_module(activation)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(64 * 4 * 4, 1024)
        self.act3 = activation_module(activation)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.fc2(self.drop(self.act3(self.fc1(x.flatten(1)))))


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, activation: str = "relu",
                 width: float = 1.0) -> None:
        super().__init__()
        layers, cin = [], in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            cout = max(1, int(round(v * width)))
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       activation_module(activation)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


ARCHITECTURES = {"resnet20": ResNet20, "resnet18": ResNet18, "vgg16": VGG16, "net4": Net4}


def build(arch: str, **kwargs) -> nn.Module:
    """``build("resnet20", num_classes=10, in_channels=1, activation="gelu")``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)
