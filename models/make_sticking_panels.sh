#!/usr/bin/env bash
# Texture-sticking panels of the bundled models (StyleGAN3 paper, Figure 1), linked from the
# model cards and the README: StyleGAN2 (Fourier input) vs StyleGAN3-T vs StyleGAN3-R.
#
#   models/make_sticking_panels.sh      # writes models/sticking-average.png, models/sticking-strips.png
#
# average: the mean of 64 images from a small z neighbourhood of seed 3; details that stay at
#          fixed pixels (sticking) survive the averaging as sharp structure.
# strips:  the centre column of 120 frames while the latent drifts and the input translates
#          slowly to the right; stuck details draw horizontal lines.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
NETS=(--network emoji-sg2f --label SG2 --network emoji-sg3t --label SG3-T --network emoji-sg3r --label SG3-R)
cd "$REPO"
"$PY" gen_video.py --mode average "${NETS[@]}" --seeds 3 --num-samples 64 --radius 0.25 --zoom 3 \
    --output models/sticking-average.png
"$PY" gen_video.py --mode strips "${NETS[@]}" --seeds 3 --frames 120 --latent-speed 0.01 \
    --translate-speed 0.004 --zoom 3 --output models/sticking-strips.png
