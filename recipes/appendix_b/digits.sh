#!/usr/bin/env bash
# VGG paper Appendix B on the built-in digits: a narrow VGG-A trained on digits 0-4 only describes digits 5-9,
# which it never saw; linear SVMs on those descriptors vs on raw pixels, 5 random splits of 30 training images
# per class (at most 50 test images per class), mean class recall +- std.  Run from any folder:
#   bash recipes/appendix_b/digits.sh [WORK_DIR]        (default WORK_DIR: appendix_b; about 2 minutes on 2 cores)
set -euo pipefail
work="${1:-appendix_b}"
recipe="$(cd "$(dirname "$0")/.." && pwd)/quickstart/vgg_a.yaml"
deepconv data digits "$work/digits"
rm -rf "$work/seen" "$work/unseen"
for split in train val; do
  for c in 0 1 2 3 4; do mkdir -p "$work/seen/$split"; cp -r "$work/digits/$split/$c" "$work/seen/$split/"; done
  for c in 5 6 7 8 9; do mkdir -p "$work/unseen/$c"; cp "$work/digits/$split/$c"/*.png "$work/unseen/$c/"; done
done
deepconv train -c "$recipe" --data.data_dir "$work/seen" --trainer.default_root_dir "$work/vgg_a_0_4" \
  --trainer.max_epochs 6 --trainer.enable_progress_bar false --resume false
deepconv features --ckpt "$work/vgg_a_0_4/best.ckpt" --data "$work/unseen" --out "$work/deep_5_9.safetensors"
deepconv features --raw_pixels 8 --data "$work/unseen" --out "$work/raw_5_9.safetensors"
deepconv linear-svm --features "$work/deep_5_9.safetensors" --features "$work/raw_5_9.safetensors" \
  --splits 5 --per_class 30 --test_per_class 50 --json "$work/svm.json"
