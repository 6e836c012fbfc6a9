#!/bin/sh
# mutator's image entrypoint: train the script in /trial at once, or run the command given.
#
#   docker run -v "$PWD/trial:/trial" IMAGE                   -> harness on /trial/train.py
#   docker run -v ... IMAGE --metric-regex 'acc: ([0-9.]+)'   -> the same, with harness options
#   docker run -v ... IMAGE python -m mutator.training.harness S ...   -> exactly that command (the runner)
#
# MUTATOR_SCRIPT (default /trial/train.py) and MUTATOR_TRIAL_DIR (default /trial) move the script
# and the results; MUTATOR_UMASK (default 0002) sets the mode of the files the trial writes.
set -eu

umask "${MUTATOR_UMASK:-0002}"
# Any uid may run the image (`docker run --user "$(id -u):$(id -g)"`); Keras and matplotlib
# write to $HOME, so give them one that exists and is writable.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; then
    export HOME=/tmp
fi

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"  # a command, not harness options
fi

script="${MUTATOR_SCRIPT:-/trial/train.py}"
trial_dir="${MUTATOR_TRIAL_DIR:-/trial}"
if [ ! -f "$script" ]; then
    echo "mutator: no training script at $script: mount a trial dir holding train.py on /trial (-v \"\$PWD/trial:/trial\") or set MUTATOR_SCRIPT" >&2
    exit 2
fi
if [ ! -w "$trial_dir" ]; then
    echo "mutator: $trial_dir is not writable by uid $(id -u): chown it to $(id -u) on the host, or run with --user \"\$(id -u):\$(id -g)\"" >&2
    exit 2
fi
exec python -m mutator.training.harness "$script" --trial-dir "$trial_dir" "$@"
