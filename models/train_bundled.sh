#!/usr/bin/env bash
# Exact commands that build the dataset and train the bundled emoji models (docs/bundled-models.md).
#
#   models/train_bundled.sh dataset          # build /work/runs/data/emoji-faces64.zip (once)
#   models/train_bundled.sh start  [NAME..]  # start fresh runs in the background (once)
#   models/train_bundled.sh resume [NAME..]  # continue each run exactly where its last snapshot left it
#   models/train_bundled.sh transfer NAME..  # new run from models/NAME.safetensors when its run is lost
#   models/train_bundled.sh cooldown NAME GLR DLR  # resume NAME exactly, at new learning rates from now on
#   models/train_bundled.sh stop   NAME..    # stop runs right after their next training-state write, then keep
#   models/train_bundled.sh keep   [NAME..]  # copy each run's resumable state into models/runs/ (commit it)
#   models/train_bundled.sh status           # running processes, kept state, newest tick line and snapshot per run
#
# NAME is emoji-sg3t, emoji-sg3r or emoji-sg2f (default: all three), or a training variant of one
# of them (VARIANTS below: same G, so its snapshots export to the same bundle). Runs live outside the
# repository in $RUNS (default /work/runs), one folder per model: $RUNS/<NAME>/<NNNNN-desc>/.
# A new machine keeps only the repository, so `keep` copies what exact resume needs (training
# state, options, log, stats: a few MB) to models/runs/<NAME>/, and `resume` brings it back.
# Each run uses one torch thread (OMP_NUM_THREADS=1) so the three share a 2-core machine, and
# runs at nice 5 so interactive work stays responsive.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
RUNS=${RUNS:-/work/runs}
DATA=$RUNS/data/emoji-faces64.zip
FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf   # Debian fonts-noto-color-emoji
THREADS=${THREADS:-1}
ALL=(emoji-sg3t emoji-sg3r emoji-sg2f)
# Training variants: a second run of a bundled model with a different D or schedule, so it can be
# compared with the main run on the same machine without moving either away. A variant is named
# after its bundle (BUNDLE-xxx) and has its own options in cfg_args.
VARIANTS=(emoji-sg3r-d48 emoji-sg3t-d64 emoji-sg2f-dwarm emoji-sg2f-slowg emoji-sg2f-d48 emoji-sg3t-xd48 emoji-sg2f-xd48
          emoji-sg3t-d48)

# Options shared by the three runs: 64x64 faces/people emoji + x-flips, batch 16, R1 gamma 1,
# ADA (p reacts within 100 kimg, our runs are short), mapping depth 2, z/w 128, 1 kimg ticks,
# a snapshot + exact training state every 2 ticks, no metrics during training (computed later).
COMMON=(--data "$DATA" --mirror 1 --batch 16 --gamma 1 --aug ada --ada-kimg 100
        --map-depth 2 --w-dim 128 --metrics none --kimg 5000 --tick 1 --snap 2 --workers 0
        --seed 0 --desc faces64)

cfg_args() {  # per-model network options, chosen for >= 20 FPS rendering on 2 cores
  case $1 in
    # G: 32 channels, 10 layers: ~31-35 ms per 64x64 frame on one thread (~29 FPS; the
    # visualizer's renderer uses cores - 1 = 1 thread). D: 32 channels.
    emoji-sg3t) echo --cfg stylegan3-t --cbase 4096 --cmax 32 --sg3-layers 10 ;;
    # The same G with D at 64 channels instead of 32, after emoji-sg3r-d48's D broke its plateau.
    # Tried in session 12: it only got worse (docs/bundled-models.md), but stays resumable.
    emoji-sg3t-d64) echo "$(cfg_args emoji-sg3t)" --d-cbase 8192 --d-cmax 64 ;;
    # train.py doubles cbase/cmax for G of stylegan3-r (1x1 convs, as the reference), so G gets
    # 4096/48 (1.5x SG3-T's channels, the most that renders >= 20 FPS) with 8 layers (~32-35 ms
    # per frame); D gets 2048/24.
    emoji-sg3r) echo --cfg stylegan3-r --cbase 2048 --cmax 24 --sg3-layers 8 ;;
    # The same G with D at 48 channels instead of 24: emoji-sg3r's fd_mobilenet stayed at 184-197
    # from 240 to 500 kimg, and D's width costs training time only, never render speed.
    emoji-sg3r-d48) echo "$(cfg_args emoji-sg3r)" --d-cbase 4096 --d-cmax 48 ;;
    # Same G/D channels as SG3-T; StyleGAN2 has no layer-count option (64x64: 4..64 blocks).
    emoji-sg2f) echo --cfg stylegan2-fourier --cbase 4096 --cmax 32 ;;
    # The same G and D, but D trains alone for its first 10 kimg (G and G_ema fixed): in the
    # transfer runs D starts from random weights and stayed near chance for ~10 kimg while G
    # drifted. emoji-sg2f's fd_mobilenet was still falling when its run was lost (207 -> 176 from
    # 266 to 407 kimg).
    emoji-sg2f-dwarm) echo "$(cfg_args emoji-sg2f)" --d-warmup 10 ;;
    # The D warm-up alone did not stop the drift (fd_mobilenet 176 -> 218 in 75 kimg while D
    # grew stronger); here G also learns 4x slower than D afterwards, a fine-tuning pace.
    # Both tried in session 13: they only got worse (docs/bundled-models.md); states not kept.
    emoji-sg2f-slowg) echo "$(cfg_args emoji-sg2f-dwarm)" --glr 0.0005 ;;
    # A new emoji-sg2f run from scratch (`start`, not `transfer`: every transfer from a G_ema-only
    # bundle made its G worse), with D at 48 channels as emoji-sg3r-d48, whose wider D kept its
    # fd_mobilenet falling. Kept from its first session, so it always resumes exactly.
    emoji-sg2f-d48) echo "$(cfg_args emoji-sg2f)" --d-cbase 4096 --d-cmax 48 ;;
    # emoji-sg3t's G with a *trained* D instead of one from random weights: the 48-channel D of
    # emoji-sg3r-d48's snapshot 217 (the same D architecture; trained on the same data for 695
    # kimg in total). Every transfer whose D started from random weights made its G worse.
    emoji-sg3t-xd48) echo "$(cfg_args emoji-sg3t)" --d-cbase 4096 --d-cmax 48 \
                       --transfer-d "$KEPT/donors/emoji-sg3r-d48-000217.pt" ;;
    # The same for emoji-sg2f's G (its D has the same architecture at these options).
    # Both tried in session 14: slower to get worse than with a D from random weights, but worse
    # all the same (docs/bundled-models.md); states not kept.
    emoji-sg2f-xd48) echo "$(cfg_args emoji-sg2f-d48)" --transfer-d "$KEPT/donors/emoji-sg3r-d48-000217.pt" ;;
    # A new emoji-sg3t run from scratch (`start`) with D at 48 channels, as emoji-sg2f-d48: the
    # bundle's run was lost in session 9 and every transfer from its G_ema-only file got worse.
    emoji-sg3t-d48) echo "$(cfg_args emoji-sg3t)" --d-cbase 4096 --d-cmax 48 ;;
    *) echo "unknown model name $1 (use ${ALL[*]} ${VARIANTS[*]})" >&2; exit 2 ;;
  esac
}

bundle_of() {  # bundle_of NAME: the bundled model a run NAME trains (a variant BUNDLE-xxx trains BUNDLE's G)
  local bundle
  for bundle in "${ALL[@]}"; do [[ $1 == "$bundle"-* ]] && { echo "$bundle"; return; }; done
  echo "$1"
}

FAILED=0
refuse() {  # refuse MESSAGE: report a request that cannot be done; the script then exits 1
  echo "$1" >&2; FAILED=1
}

refuse_existing() {  # refuse_existing NAME: true (and refused) if NAME has a run folder already
  [ -e "$RUNS/$1" ] || return 1   # a second run would hide the first from `resume`
  refuse "$1: $RUNS/$1 exists already; use 'resume' (or move it away)."
}

newest_run() {  # newest_run DIR: the newest run folder (NNNNN-desc) in DIR, or nothing
  ls -d "$1"/0* 2>/dev/null | tail -1 || true
}

KEPT=${KEPT:-$REPO/models/runs}
# network-snapshot-000000.pt is the baseline of the model card's fd_mobilenet / swd.
KEEP_FILES=(training-state.pt training_options.json log.txt stats.jsonl network-snapshot-000000.pt)

keep_run() {  # keep_run NAME: copy the newest run's resumable files into $KEPT/NAME/<run folder>/
  local name=$1 run
  run=$(newest_run "$RUNS/$name")
  [ -n "$run" ] || { echo "$name: no run in $RUNS/$name to keep" >&2; return 0; }
  rm -rf "${KEPT:?}/$name"; mkdir -p "$KEPT/$name/$(basename "$run")"
  for f in "${KEEP_FILES[@]}"; do [ ! -e "$run/$f" ] || cp -p "$run/$f" "$KEPT/$name/$(basename "$run")/"; done
  [ ! -e "$RUNS/$name/transfer-base.json" ] || cp -p "$RUNS/$name/transfer-base.json" "$KEPT/$name/"
  echo "$name: kept $(du -sh "$KEPT/$name" | cut -f1) in models/runs/$name/$(basename "$run") (commit it)"
}

build_dataset() {
  mkdir -p "$RUNS/data"
  "$PY" "$REPO/dataset_tool.py" --source "$FONT" --subset faces-people --resolution 64x64 --dest "$DATA"
}

run_pid() {  # run_pid NAME: the pid of NAME's running train.py, or nothing
  pgrep -f "train.py --outdir $RUNS/$1 " | head -1 || true
}

restore_kept() {  # restore_kept NAME: on a new machine, bring NAME's kept state and the dataset back
  if [ ! -e "$RUNS/$1" ] && [ -d "$KEPT/$1" ]; then
    mkdir -p "$RUNS"; cp -rp "$KEPT/$1" "$RUNS/$1"; echo "$1: restored from models/runs/$1"
  fi
  [ -e "$DATA" ] || build_dataset   # the same command gives the same zip on a new machine
}

launch() {  # launch NAME LOGNAME ARGS...: background, detached, logged into $RUNS/NAME/
  local name=$1 log=$2; shift 2
  mkdir -p "$RUNS/$name"
  cd "$REPO"
  OMP_NUM_THREADS=$THREADS nohup nice -n 5 "$PY" train.py --outdir "$RUNS/$name" "$@" \
    >>"$RUNS/$name/$log" 2>&1 </dev/null &
  echo "$name: pid $! started $(date -u +%FT%TZ), log $RUNS/$name/$log"
}

case ${1:-} in
  dataset)
    build_dataset
    ;;
  start)
    shift; for name in "${@:-${ALL[@]}}"; do
      refuse_existing "$name" && continue
      # shellcheck disable=SC2046
      launch "$name" nohup.log $(cfg_args "$name") "${COMMON[@]}"
    done
    ;;
  resume)
    # --resume latest continues the newest run folder in --outdir bit-exactly from its
    # training-state file (weights, optimisers, ADA p, sampler position, RNG).
    shift; for name in "${@:-${ALL[@]}}"; do
      if [ -n "$(run_pid "$name")" ]; then
        echo "$name: already running" >&2; continue
      fi
      restore_kept "$name"
      launch "$name" nohup.log --resume latest
    done
    ;;
  cooldown)
    # A plateaued run continues exactly (weights, Adam moments, ADA, data position) at lower
    # learning rates; they are saved in its training state, so later `resume`s keep them.
    [ $# -eq 4 ] || { echo "usage: $0 cooldown NAME GLR DLR" >&2; exit 2; }
    name=$2
    if [ -n "$(run_pid "$name")" ]; then
      echo "$name: running; stop it first ('stop $name')" >&2; exit 1
    fi
    restore_kept "$name"
    [ -n "$(newest_run "$RUNS/$name")" ] || { echo "$name: no run in $RUNS/$name to cool down" >&2; exit 1; }
    launch "$name" nohup.log --resume latest --glr "$3" --dlr "$4"
    ;;
  transfer)
    # When a run folder is lost (a new machine keeps only the repository), continue training from
    # the bundled G_ema: a new run with --transfer (G and G_ema from the file, D from random
    # weights, fresh optimisers and ADA). The bundled JSON is kept beside the run as
    # transfer-base.json, so export/measure can add the kimg and hours the bundle already had.
    shift; for name in "$@"; do
      refuse_existing "$name" && continue
      base=$REPO/models/$(bundle_of "$name")
      for f in "$base.json" "$base.safetensors"; do
        [ -e "$f" ] || { refuse "$name: $f is missing, so there is nothing to transfer from."; continue 2; }
      done
      mkdir -p "$RUNS/$name"
      cp "$base.json" "$RUNS/$name/transfer-base.json"
      # shellcheck disable=SC2046
      launch "$name" nohup.log $(cfg_args "$name") "${COMMON[@]}" --transfer "$base.safetensors"
    done
    ;;
  stop)
    # Stop a run right after it writes its next training state, so nothing is lost (used to
    # give the slower StyleGAN3 runs the cores while emoji-sg2f is ahead in kimg).
    shift; for name in "$@"; do
      pid=$(run_pid "$name")
      [ -n "$pid" ] || { echo "$name: not running" >&2; continue; }
      state=$(newest_run "$RUNS/$name")/training-state.pt
      before=$(stat -c %Y "$state" 2>/dev/null || echo 0)
      echo "$name: waiting for pid $pid to write its next training state..."
      while [ "$(stat -c %Y "$state" 2>/dev/null || echo 0)" = "$before" ]; do sleep 5; done
      sleep 5; kill "$pid" && echo "$name: stopped pid $pid at $(date -u +%FT%TZ)"
      keep_run "$name"
    done
    ;;
  keep)
    shift; for name in "${@:-${ALL[@]}}"; do keep_run "$name"; done
    ;;
  status)
    ps -eo pid,etime,time,args | grep "[t]rain.py --outdir $RUNS" || echo "no training process running"
    for name in "${ALL[@]}" "${VARIANTS[@]}"; do
      kept=$(newest_run "$KEPT/$name")
      [ -z "$kept" ] || echo "$name: kept in models/runs (its log reaches kimg $(grep -h "^tick" "$kept"/log.txt | tail -1 | awk "{print \$4}"))"
      run=$(newest_run "$RUNS/$name")
      [ -n "$run$kept" ] || [[ " ${ALL[*]} " == *" $name "* ]] || continue   # variants only once they exist
      [ -n "$run" ] || { echo "$name: not started here${kept:+ (resume restores the kept state)}"; continue; }
      echo "$name: $run"
      grep -h '^tick' "$run"/log.txt 2>/dev/null | tail -1 || true
      ls "$run" | grep -E 'network-snapshot' | tail -1 || true
    done
    ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
exit $FAILED
