"""The peer of `fedslr bench step`: one SGD step of the same model in PyTorch, on CPU or CUDA.

Started once by the TypeScript benchmark, which then alternates with it. Protocol on stdio, one
JSON object per line: this script first prints {"ready": true, "torch": version, "threads": t,
"device": "cpu" or "cuda", "gpu": name (cuda only)}; then for each line "N" read from stdin it
runs N timed steps and prints {"ms": [N times]}. It exits at end of input.

With --device cuda the model and batch live on the GPU, each timed step is bracketed by
torch.cuda.synchronize() (so its time is the GPU's work, not the launch). PyTorch keeps its
defaults, as in the figures issue 25 compares with: cuDNN may then use TF32 for convolutions
(products stay float32); the ready line reports both settings as "tf32".

The models mirror src/models/ (PyTorch layouts, same padding, GroupNorm with 2 groups, eps 1e-5):
cnn (FedAvg CNN) for 1x28x28 inputs, resnet8gn and resnet18gn for 3x32x32, mlp for 1x28x28.
The step is the one of src/train/: mean softmax cross-entropy, backward, w -= lr * g.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def cnn(in_ch, size, classes):
    flat = (size // 4) * (size // 4) * 64
    return nn.Sequential(
        nn.Conv2d(in_ch, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, classes),
    )


def mlp(in_ch, size, classes, hidden=(200, 200)):
    layers, width = [nn.Flatten()], in_ch * size * size
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.gn1 = nn.GroupNorm(2, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.gn2 = nn.GroupNorm(2, cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.GroupNorm(2, cout)
            )

    def forward(self, x):
        y = F.relu(self.gn1(self.conv1(x)))
        y = self.gn2(self.conv2(y))
        return F.relu(y + (self.short(x) if self.short is not None else x))


class ResNetGN(nn.Module):
    def __init__(self, in_ch, classes, widths, blocks_per_stage):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False), nn.GroupNorm(2, widths[0]), nn.ReLU()
        )
        blocks, cin = [], widths[0]
        for s, cout in enumerate(widths):
            for i in range(blocks_per_stage):
                blocks.append(Block(cin, cout, 2 if i == 0 and s > 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes, bias=False)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.fc(y.mean(dim=(2, 3)))


MODELS = {
    'cnn': (lambda c: cnn(1, 28, c), (1, 28, 28)),
    'mlp': (lambda c: mlp(1, 28, c), (1, 28, 28)),
    'resnet8gn': (lambda c: ResNetGN(3, c, (16, 32, 64), 1), (3, 32, 32)),
    'resnet18gn': (lambda c: ResNetGN(3, c, (64, 128, 256, 512), 2), (3, 32, 32)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', choices=sorted(MODELS), required=True)
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--classes', type=int, default=10)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    args = ap.parse_args()
    cuda = args.device == 'cuda'
    if cuda and not torch.cuda.is_available():
        ap.error(f'--device cuda: torch {torch.__version__} sees no CUDA device')

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    build, shape = MODELS[args.model]
    model = build(args.classes).to(args.device)
    x = torch.randn(args.batch, *shape).to(args.device)
    y = (torch.arange(args.batch) % args.classes).to(args.device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        for p in model.parameters():
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.sub_(p.grad, alpha=args.lr)
        return loss.item()

    hello = {'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
             'device': args.device}
    if cuda:
        hello['gpu'] = torch.cuda.get_device_name()
        hello['tf32'] = {'cudnn': torch.backends.cudnn.allow_tf32,
                         'matmul': torch.backends.cuda.matmul.allow_tf32}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        n = int(line)
        times = []
        for _ in range(n):
            sync()
            t = time.perf_counter()
            step()
            sync()
            times.append((time.perf_counter() - t) * 1000)
        print(json.dumps({'ms': times}), flush=True)


if __name__ == '__main__':
    main()
