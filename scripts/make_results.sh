#!/usr/bin/env bash
# Re-make every result the README publishes, with the commands that made them, then copy the tables and
# the (compact) JSON into docs/results/. Runs are kept in runs/results/ (the store: a rerun reads finished
# runs back, resumes interrupted ones and re-makes stale ones).
#
#   bash scripts/make_results.sh            # everything (hours on 2 CPU cores)
#   bash scripts/make_results.sh bench_hapt # one part: positive (controls_synthetic_shared and _unshared),
#                                           #   regime_shared, bench_hapt bench_digits controls (or one
#                                           #   controls_{hapt,digits,synthetic}_{full,scarce}) regime_hapt
#                                           #   regime_hapt_unlabelled regime_synthetic regime_synthetic_unlabelled
#                                           #   gap_examples
#   bash scripts/make_results.sh --pack controls_digits_scarce
#                                           # keep the finished runs of a part that is still being made in
#                                           #   scripts/partial-runs/PART.tar.xz (their result.json and job.json;
#                                           #   about 25 kB a run): a part too long for one sitting goes on from
#                                           #   there on another machine. Every pack there is unpacked into the
#                                           #   store before a part runs; the store reads back only the runs whose
#                                           #   code version and data match the checkout's and re-makes the rest.
#                                           #   Delete a part's pack once the part is published.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=${WORKERS:-2}
R=runs/results
D=docs/results
mkdir -p "$R" "$D"
export PYTHONUNBUFFERED=1
PACKS=scripts/partial-runs

if [ "${1:-}" = --pack ]; then
  shift
  mkdir -p "$PACKS"
  for name in "$@"; do
    [ -d "$R/$name" ] || { echo "no runs of $name in $R/$name" >&2; exit 2; }
    # finished runs only: an interrupted run goes on from its checkpoint, which a pack does not keep
    mapfile -t done_runs < <(cd "$R" && grep -l '"status": "completed"' $(find -L "$name" -name result.json) | sort)
    [ ${#done_runs[@]} -gt 0 ] || { echo "no finished run of $name yet" >&2; exit 2; }
    files=(); for f in "${done_runs[@]}"; do files+=("$f" "${f%result.json}job.json"); done
    tar -cJf "$PACKS/$name.tar.xz" -C "$R" --mtime=@0 --owner=0 --group=0 --numeric-owner "${files[@]}"
    echo "$PACKS/$name.tar.xz: ${#done_runs[@]} finished runs ($(du -h "$PACKS/$name.tar.xz" | cut -f1))"
  done
  exit 0
fi
for pack in "$PACKS"/*.tar.xz; do  # runs kept from an earlier sitting (see --pack); newer runs here win
  [ -f "$pack" ] || continue
  tar -xJf "$pack" -C "$R" --skip-old-files && echo "== runs of $(basename "$pack" .tar.xz) read from $pack"
  # A pack saves hours only if this checkout makes the same code version (it covers the core's source and
  # the torch, NumPy, POT and SciPy versions): say so before the runs are quietly made again.
  "$PY" - "$pack" <<'PYCHECK' || true
import json, sys, tarfile
from cmkd_lab.store import code_version
# the pack's own first run (not the store's copy, which may be newer): reading stops at the first result.json
with tarfile.open(sys.argv[1], "r:xz") as tf:
    member = next((m for m in tf if m.name.endswith("result.json")), None)
    stored = json.load(tf.extractfile(member)) if member else {}
made, now = stored.get("identity", {}).get("code_version"), code_version()
if made != now:
    import importlib.metadata as md
    libs = {k: v for k, v in stored.get("versions", {}).items() if k in ("torch", "numpy", "pot")}
    here = {k: md.version("POT" if k == "pot" else k) for k in libs}
    print(f"warning: the pack's runs were made by code version {made}, this checkout makes {now}: they will be "
          f"made again. Made with {libs}; installed here: {here} (if only these differ, install the pack's "
          "versions, and SciPy's of that time, into the environment and start again).", file=sys.stderr)
PYCHECK
done

publish() {  # publish NAME KIND(bench|sweep) DIR
  local name=$1 kind=$2 dir=$3
  if [ "$kind" = bench ]; then
    cp "$dir/results.md" "$D/$name.md"; cp "$dir/results.csv" "$D/$name.csv"; cp "$dir/results.json" "$D/$name.json"
  else
    cp "$dir/sweep.md" "$D/$name.md"; cp "$dir/cells.csv" "$D/${name}_cells.csv"
    cp "$dir/predictors.csv" "$D/${name}_predictors.csv"
    "$PY" -c "import json,sys; from cmkd_lab.results import compact_sweep, load_sweep; \
json.dump(compact_sweep(load_sweep(sys.argv[1])), open(sys.argv[2], 'w'))" "$dir" "$D/$name.json"
  fi
}

run_part() {
  case "$1" in
  bench_hapt)
    "$PY" -m cmkd_lab bench --task hapt --methods ce,fa,la,ucmkd,ucmkd-joint,kd,fitnet,c2kd \
      --pairing unpaired,paired --seeds 5 --epochs 15 --set diagnostics_every=0 --workers "$W" --quiet \
      --out "$R/bench_hapt"
    publish bench_hapt bench "$R/bench_hapt" ;;
  bench_digits)
    "$PY" -m cmkd_lab bench --task digits-speech --methods ce,fa,la,ucmkd,ucmkd-joint,kd,fitnet,c2kd \
      --pairing unpaired,paired --seeds 5 --epochs 10 --set diagnostics_every=0 --workers "$W" --quiet \
      --out "$R/bench_digits_speech"
    publish bench_digits_speech bench "$R/bench_digits_speech" ;;
  controls) for c in synthetic_scarce hapt_scarce digits_scarce synthetic_full hapt_full digits_full; do
      run_part "controls_$c"; done ;;
  positive) run_part controls_synthetic_shared; run_part controls_synthetic_unshared ;;
  controls_synthetic_shared|controls_synthetic_unshared)
    # The positive control: the synthetic task with every factor that decides the label seen by both views
    # (shared_decisive=1) against the same task where the student sees none of them (0); 14 labels (0.2 % of
    # 7,000 training samples, about 3 per class) and the rest unlabelled; 10,000 student samples so that the
    # test split (1,500) measures a difference to about a point.
    local s=1; [ "$1" = controls_synthetic_unshared ] && s=0
    "$PY" -m cmkd_lab bench --task synthetic --task-option shared_decisive=$s --task-option n_student=10000 \
      --methods "ce,entmin,ceiling-kd,ceiling-pl,align-pl,fa,ucmkd-joint[la_teacher_grad=align],ucmkd,cc-fa,class-kd,proto" \
      --teacher-control none,random,shuffled-labels,permuted-classes --seeds 5 --epochs 30 --student-fraction 0.002 \
      --student-unlabelled --min-steps 300 --set diagnostics_every=0 --workers "$W" --quiet --out "$R/$1"
    publish "$1" bench "$R/$1" ;;
  regime_shared)
    # When can a teacher's knowledge reach the student without pairs? The share of the class separation both
    # views see × the labelled share, with the paired ceiling (added by the sweep) and the headroom recovered.
    "$PY" -m cmkd_lab sweep --task synthetic --task-option n_student=10000 \
      --methods "ce,align-pl,ucmkd-joint[la_teacher_grad=align],entmin" --grid shared_decisive=0,0.25,0.5,0.75,1 \
      --grid student_fraction=0.002,0.01,0.05 --student-fraction 0.01 --student-unlabelled --epochs 30 \
      --min-steps 300 --seeds 5 --workers "$W" --no-diagnostics --quiet --out "$R/regime_shared"
    publish regime_shared sweep "$R/regime_shared" ;;
  controls_*)
    # Whose knowledge is it? Every method with the real teacher and under the three controls, at full labels
    # and at scarce labels with the rest of the student's training data unlabelled.
    local M="align-pl,fa,ucmkd-joint[la_teacher_grad=align],ucmkd,cc-fa,class-kd,proto"
    local C="none,random,shuffled-labels,permuted-classes"
    local n=${1#controls_} t e f
    case "${n%_*}" in
      hapt) t=hapt e=15 f=0.02 ;;  # 78 labels, about 13 per class: the scarcest budget where ce is stable
      digits) t=digits-speech e=10 f=0.05
              # ucmkd (three passes per step) is left out here to fit a 2-core budget: on HAPT and the synthetic
              # task it equals ce to first order under every control (its inner steps barely move the student).
              M=${M/,ucmkd,/,} ;;
      synthetic) t=synthetic e=30 f=0.01 ;;
      *) echo "unknown part $1" >&2; exit 2 ;;
    esac
    if [ "${n##*_}" = full ]; then
      "$PY" -m cmkd_lab bench --task "$t" --methods "ce,$M" --teacher-control "$C" --seeds 5 --epochs "$e" \
        --set diagnostics_every=0 --workers "$W" --quiet --out "$R/controls_$n"
    else
      "$PY" -m cmkd_lab bench --task "$t" --methods "ce,entmin,ceiling-kd,ceiling-pl,$M" --teacher-control "$C" \
        --seeds 5 --epochs "$e" \
        --student-fraction "$f" --student-unlabelled --min-steps 300 --set diagnostics_every=0 --workers "$W" \
        --quiet --out "$R/controls_$n"
    fi
    publish "controls_$n" bench "$R/controls_$n" ;;
  regime_hapt)
    "$PY" -m cmkd_lab sweep --task hapt --methods ce,fa,ucmkd --grid student_fraction=0.02,0.05,0.2,1 \
      --epochs 15 --min-steps 300 --seeds 5 --workers "$W" --diag-epoch 2 --quiet --out "$R/regime_hapt"
    publish regime_hapt sweep "$R/regime_hapt" ;;
  regime_hapt_unlabelled)
    "$PY" -m cmkd_lab sweep --task hapt --methods ce,fa,ucmkd-joint,entmin --grid student_unlabelled=false,true \
      --student-fraction 0.02 --student-unlabelled --set la_teacher_grad=align --epochs 15 --min-steps 300 \
      --seeds 5 --workers "$W" --diag-epoch 10 --quiet --out "$R/regime_hapt_unlabelled"
    publish regime_hapt_unlabelled sweep "$R/regime_hapt_unlabelled" ;;
  regime_synthetic)
    "$PY" -m cmkd_lab sweep --task synthetic --methods ce,fa,ucmkd --student-fraction 0.05 \
      --grid lambda_fa=1,10 --grid label_shift=0,1 --epochs 30 --min-steps 300 --seeds 5 --workers "$W" \
      --diag-epoch 10 --quiet --out "$R/regime_synthetic"
    publish regime_synthetic sweep "$R/regime_synthetic" ;;
  regime_synthetic_unlabelled)
    "$PY" -m cmkd_lab sweep --task synthetic --methods ce,fa,ucmkd-joint,ucmkd,entmin \
      --grid overlap=0.6,1.0 --grid student_unlabelled=false,true --grid student_fraction=0.002,0.01,0.05 \
      --grid label_shift=0,0.7 --student-fraction 0.01 --student-unlabelled --set la_teacher_grad=align \
      --epochs 30 --min-steps 300 --seeds 5 --workers "$W" --diag-epoch 10 --quiet \
      --out "$R/regime_synthetic_unlabelled"
    publish regime_synthetic_unlabelled sweep "$R/regime_synthetic_unlabelled" ;;
  gap_examples) "$PY" scripts/gap_examples.py ;;
  *) echo "unknown part $1" >&2; exit 2 ;;
  esac
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(positive regime_shared controls bench_hapt bench_digits regime_hapt regime_synthetic
                                 regime_hapt_unlabelled regime_synthetic_unlabelled gap_examples)
for p in "${parts[@]}"; do
  t0=$(date +%s)
  echo "== $p ($(date -Is))"
  run_part "$p"
  echo "== $p done in $(( $(date +%s) - t0 )) s"
done
