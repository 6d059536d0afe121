"""The dense-ready classifier: FC1 held as a k x k convolution, FC2/FC3 as 1 x 1, one weight layout for two uses.

On a crop (feature map exactly k x k) the three layers run as matrix products, which is what FC layers are and
what GPUs do fastest; on a larger, uncropped image the same weights run as convolutions and yield a class-score
map (VGG paper section 3.2). The weight tensors are conv-shaped in both cases, so crop and dense evaluation can
never drift apart, and a torchvision `Linear(25088, 4096)` weight is the same numbers reshaped to (4096, 512, 7, 7).
"""

import torch
import torch.nn.functional as F
from torch import nn


class ConvHead(nn.Module):
    """FC-hidden, FC-hidden, FC-classes with ReLU and dropout after the first two (VGG paper section 2.1)."""

    def __init__(self, in_channels: int, kernel: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.kernel = kernel
        self.fc1 = nn.Conv2d(in_channels, hidden, kernel)
        self.fc2 = nn.Conv2d(hidden, hidden, 1)
        self.fc3 = nn.Conv2d(hidden, num_classes, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores of shape (N, classes, h, w); h = w = 1 when the features are exactly kernel x kernel."""
        n, _, h, w = features.shape
        if h < self.kernel or w < self.kernel:
            raise ValueError(
                f"feature map {h}x{w} is smaller than the classifier's {self.kernel}x{self.kernel} window: "
                "the input image is smaller than the training crop"
            )
        if h == self.kernel and w == self.kernel:
            x = F.linear(features.flatten(1), self.fc1.weight.flatten(1), self.fc1.bias)
            x = self.dropout(F.relu(x))
            x = self.dropout(F.relu(F.linear(x, self.fc2.weight.flatten(1), self.fc2.bias)))
            x = F.linear(x, self.fc3.weight.flatten(1), self.fc3.bias)
            return x.view(n, -1, 1, 1)
        x = self.dropout(F.relu(self.fc1(features)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)
