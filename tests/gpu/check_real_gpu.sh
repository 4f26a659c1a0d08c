#!/usr/bin/env bash
# The real check of issue 17, for a machine with an NVIDIA GPU and its driver.
#
#   tests/gpu/check_real_gpu.sh            # from the repository's root
#   OUT=/some/folder tests/gpu/check_real_gpu.sh   # also keep the report and the run's files
#
# It runs a small workflow of GPU tasks with `gristmill run` (this checkout's src/, any
# Python 3.11+; no package to install: the tasks reach the GPU through the driver's own
# libcuda.so.1 with ctypes) and checks, from what the tasks themselves wrote down and
# from the history Gristmill recorded:
#   1. each task saw exactly the devices it was handed (CUDA_VISIBLE_DEVICES, and the
#      UUID the CUDA driver reports for device 0 inside the task, against history);
#   2. no two whole-GPU tasks overlapped on a device (their own start and end clocks);
#   3. four gpu = 0.25 shares ran on one device at the same time (a barrier);
#   4. each GPU task's peak GPU memory was recorded (it allocated 256 MiB) and its
#      utilisation sampled;
#   5. a task asking for no GPU saw none (CUDA reports no device).
# Without libcuda.so.1 the CUDA parts (the UUID seen inside, the allocation, so the
# peak memory) are skipped and said so: the check then rests on nvidia-smi alone.
# Exit status: 0 when every check passed, 1 when one failed, 2 when it cannot run here.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/gristmill-gpu-check.XXXXXX)
export GRISTMILL_HOME="$WORK/home" GRISTMILL_NO_CACHE=1 PYTHONPATH="$ROOT/src"
unset CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "check_real_gpu: no working nvidia-smi here: this check needs an NVIDIA GPU" >&2
    exit 2
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "check_real_gpu: needs Python 3.11 or newer (PYTHON=...)" >&2; exit 2; }

echo "== the machine"
date -u '+%Y-%m-%d %H:%M:%S UTC'
nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,driver_version \
    --format=csv,noheader || true
nvidia-smi -L
"$PY" -c 'import pynvml' 2>/dev/null && echo "NVML: pynvml installed" || echo "NVML: not installed (nvidia-smi is read)"

W="$WORK/wf"
mkdir -p "$W/t"
cat > "$W/task.py" <<'EOF'
"""One GPU task: write down what it saw and when; allocate 256 MiB through libcuda."""
import ctypes, os, sys, time
name, hold, barrier = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
t = os.path.join(os.path.dirname(os.path.abspath(__file__)), "t")
def put(what, text):
    with open(os.path.join(t, f"{name}.{what}"), "w") as f:
        f.write(str(text))
put("start", time.time_ns())
put("dev", os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
put("nv", os.environ.get("NVIDIA_VISIBLE_DEVICES", "<unset>"))
seen, held = "no-cuda", None
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError:
    cu = None
if cu is not None:
    rc = cu.cuInit(0)
    count = ctypes.c_int(0)
    if rc == 0:
        rc = cu.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0 or count.value == 0:
        seen = f"none (cuInit/cuDeviceGetCount rc {rc}, {count.value} devices)"
    else:
        dev = ctypes.c_int(0)
        cu.cuDeviceGet(ctypes.byref(dev), 0)
        raw = (ctypes.c_ubyte * 16)()
        getter = getattr(cu, "cuDeviceGetUuid_v2", None) or cu.cuDeviceGetUuid
        getter(raw, dev)
        h = bytes(raw).hex()
        seen = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        ctx = ctypes.c_void_p()
        cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev)
        ptr = ctypes.c_uint64()
        if cu.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(256 << 20)) == 0:
            cu.cuMemsetD8_v2(ptr, 1, ctypes.c_size_t(256 << 20))
            held = ptr
        put("count", count.value)
put("seen", seen)
open(os.path.join(t, f"{name}.on"), "w").close()
while barrier and sum(f.endswith(".on") and f.startswith("s") for f in os.listdir(t)) < barrier:
    time.sleep(0.02)
time.sleep(hold)          # the sampler takes a sample every half second
put("end", time.time_ns())
EOF

{
    echo '[workflow]'
    echo 'default = ["w1", "w2", "s1", "s2", "s3", "s4", "m", "cpu"]'
    echo '[capacity]'
    echo 'cpu = 16'
    for n in w1 w2; do
        echo "[tasks.$n]"; echo 'phony = true'
        echo "cmd = \"$PY task.py $n 2 0\""
        echo 'resources = { cpu = 0.5, gpu = 1 }'
    done
    for n in s1 s2 s3 s4; do
        echo "[tasks.$n]"; echo 'phony = true'
        echo "cmd = \"$PY task.py $n 2 4\""
        echo 'resources = { cpu = 0.5, gpu = 0.25 }'
    done
    echo '[tasks.m]'; echo 'phony = true'
    echo "cmd = \"$PY task.py m 2 0\""
    echo 'resources = { cpu = 0.5, gpu_mem = "2GB" }'
    echo '[tasks.cpu]'; echo 'phony = true'
    echo "cmd = \"$PY task.py cpu 0 0\""
    echo 'resources = { cpu = 0.5 }'
} > "$W/gristmill.toml"

echo "== gristmill plan --json"
"$PY" -m gristmill.cli plan --json -C "$W" | tee "$WORK/plan.json" | "$PY" -c '
import json, sys; p = json.load(sys.stdin)
print("devices:", [(g["index"], g["uuid"], g["visible_as"]) for g in p.get("gpus", [])])'
echo "== gristmill run"
timeout 300 "$PY" -m gristmill.cli run -C "$W"
RUN_RC=$?

echo "== checks"
"$PY" - "$W" "$GRISTMILL_HOME" "$RUN_RC" <<'EOF'
import glob, json, os, sqlite3, sys
w, home, run_rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = os.path.join(w, "t")
failed, skipped = [], []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failed.append(what)
def read(name, what):
    try:
        return open(os.path.join(t, f"{name}.{what}")).read().strip()
    except OSError:
        return None
check(run_rc == 0, f"the run succeeded (exit status {run_rc})")
[db] = glob.glob(os.path.join(home, "**", "history.sqlite3"), recursive=True) or [None]
check(db is not None, "history was written")
rows = {}
if db:
    conn = sqlite3.connect(db)
    for task, gpus, peak, util in conn.execute(
            "SELECT task, gpus, gpu_peak_mem, gpu_util FROM attempts"):
        rows[task] = (json.loads(gpus or "[]"), peak, util)
cuda = read("w1", "seen") not in (None, "no-cuda")
if not cuda:
    skipped.append("libcuda.so.1 not loadable: no UUID seen inside, no allocation, no peak")
gpu_tasks = ["w1", "w2", "s1", "s2", "s3", "s4", "m"]
for n in gpu_tasks:
    gpus, peak, util = rows.get(n, ([], None, None))
    words = [g.get("visible_as") for g in gpus]
    check(read(n, "dev") == ",".join(words) and words != [],
          f"{n} saw CUDA_VISIBLE_DEVICES={read(n, 'dev')!r}, history says it had {words}")
    check(read(n, "nv") == read(n, "dev"), f"{n}: NVIDIA_VISIBLE_DEVICES is the same")
    if cuda and gpus:
        inside = read(n, "seen")
        check(gpus[0].get("uuid", "").endswith(inside or "?") and read(n, "count") == "1",
              f"{n}: inside, CUDA sees 1 device, {inside}; history: {gpus[0].get('uuid')}")
        check(peak is not None and peak >= 256 << 20,
              f"{n}: peak GPU memory recorded: {peak} bytes (it allocated {256 << 20})")
    print(f"     {n}: gpu_peak_mem={peak} gpu_util={util}")
def span(n):
    return int(read(n, "start")), int(read(n, "end"))
a, b = span("w1"), span("w2")
same = rows.get("w1", [[]])[0] and rows.get("w1")[0] == rows.get("w2", [[]])[0]
check(not same or a[1] <= b[0] or b[1] <= a[0],
      f"w1 and w2 (whole GPUs) did not overlap on a device: {a} {b}")
for s in ("s1", "s2", "s3", "s4"):
    for whole in ("w1", "w2"):
        x, y = span(s), span(whole)
        if rows.get(s, [[]])[0] and rows[s][0][0].get("uuid") in \
                [g.get("uuid") for g in rows.get(whole, [[]])[0]]:
            check(x[1] <= y[0] or y[1] <= x[0], f"share {s} never ran beside {whole} on its device")
share_devices = {json.dumps(rows.get(s, [[]])[0]) for s in ("s1", "s2", "s3", "s4")}
check(len(share_devices) == 1 and "[]" not in share_devices, f"the four 0.25 shares ran on one device, together: {share_devices}")
starts, ends = [span(s)[0] for s in ("s1", "s2", "s3", "s4")], [span(s)[1] for s in ("s1", "s2", "s3", "s4")]
check(max(starts) < min(ends), "the four shares were running at the same moment")
check(read("cpu", "dev") == "" and rows.get("cpu", [None])[0] == [],
      f"the task with no GPU saw none: CUDA_VISIBLE_DEVICES={read('cpu', 'dev')!r}")
if cuda:
    check(read("cpu", "seen", ).startswith("none"), f"inside it, CUDA: {read('cpu', 'seen')}")
for s in skipped:
    print("SKIPPED " + s)
print("RESULT: " + ("FAIL (" + "; ".join(failed) + ")" if failed else "PASS"))
sys.exit(1 if failed else 0)
EOF
RC=$?
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && tar -C "$WORK" -czf "$OUT/gpu-check-files.tgz" wf home plan.json 2>/dev/null
fi
exit $RC
