"""A container image made here, for the tests and benchmarks of container isolation:
a rootfs of Debian's busybox-static (busybox and its applets as links), imported with
``podman import``. No registry is reachable, and none is needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/gristmill-test-busybox:1"


def available() -> bool:
    return shutil.which("podman") is not None and os.path.exists(BUSYBOX)


def ensure_image(podman: str = "podman", image: str = IMAGE) -> str:
    """``image``, imported now unless podman has it already."""
    if subprocess.run([podman, "image", "exists", image], capture_output=True,
                      timeout=120).returncode == 0:
        return image
    with tempfile.TemporaryDirectory(prefix="gristmill-rootfs-") as work:
        root = os.path.join(work, "root")
        for d in ("bin", "tmp", "etc", "proc", "sys", "dev"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(BUSYBOX, os.path.join(root, "bin/busybox"))
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for name in applets:
            if name != "busybox":
                os.symlink("busybox", os.path.join(root, "bin", name))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\n")
        tar = os.path.join(work, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(root, arcname=".")
        subprocess.run([podman, "import", "--change", "ENV PATH=/bin", tar, image],
                       capture_output=True, text=True, timeout=300, check=True)
    return image
