#!/usr/bin/env python3
"""Boots one of Debian's kernels (scripts/kernel-images.sh fetches them) under qemu
and runs one command inside it, with the host's root filesystem as the guest's.

    python3 tests/kernels/vm.py --kernel 6.1 -- uname -a

What the guest sees:
  * /             the host's /, read-only over virtio-9p (paths are the same inside
                  and out, so /work/main/build/bin/tracer-sidecar runs unchanged)
  * /tmp /run /root /dev/shm   tmpfs (empty; /root so that HOME is writable)
  * /var/tmp      ext4 on a scratch virtio disk (a fresh sparse image per run), so a
                  write + fsync there reaches a real block device
  * results       a host directory shared read-write at the same path (--results, or
                  VM(...).run(results_dir=...)); $VM_RESULTS names it
  * /proc /sys /dev /dev/pts /sys/fs/cgroup (cgroup2) /sys/fs/bpf /sys/kernel/tracing
    /sys/kernel/debug, and /lib/modules/$(uname -r) from build/kernels/<name>/, so
    modprobe works
  * lo up, no other network; 2 vCPUs, 2 GiB (configurable); the command runs as root
    with PATH, HOME=/root, LANG=C.UTF-8 and the environment it is given

Only the standard library is used: it runs under /usr/bin/python3 and venv pythons.
qemu runs without KVM (TCG, -cpu max).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import lzma
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Mapping, NamedTuple, Optional, Sequence, Union

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Mounted afresh in the guest (see the init script), hiding the host's.
GUEST_TMPFS = ("/tmp", "/run", "/root", "/dev/shm", "/var/tmp")
KERNELS_TABLE = HERE / "kernels.txt"
KERNELS_DIR = Path(os.environ.get("TRACER_KERNELS_DIR", REPO / "build" / "kernels"))
# Quiet boot, but warnings and the stacks of a soft lockup (every CPU's) reach
# the console: a guest that hangs leaves its kernel's account of why.
KERNEL_COMMAND_LINE = "console=ttyS0 panic=-1 loglevel=5 softlockup_all_cpu_backtrace=1"
BUSYBOX = Path("/bin/busybox")  # busybox-static
QEMU = "qemu-system-x86_64"

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_MARKER = "vm-init: command starts"

# Modules the initramfs loads, in this order (each after its dependencies from
# modules.dep); those built into a kernel are skipped. Optional ones may be absent.
INITRAMFS_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "ext4", "overlay"]
OPTIONAL_MODULES = ["crc32c_intel", "crc32c_generic", "crc32c_cryptoapi"]  # ext4's checksums

# Bump when the initramfs layout changes, so cached ones are rebuilt.
INITRAMFS_FORMAT = 1

INIT_SCRIPT = r"""#!/bin/sh
# PID 1 of the guest (busybox). It stays in the initramfs: the command runs chrooted
# into /newroot, the host's root over 9p, and its exit status goes to /ctl/status.
PATH=/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

off() {
  sync
  poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 5
  exit 1  # PID 1 exiting panics the kernel; panic=-1 and -no-reboot end qemu
}
fail() {
  echo "vm-init: FAILED: $*"
  [ -d /ctl/.ok ] && echo "$*" >/ctl/init-error
  off
}

while read -r module; do
  insmod "/modules/$module.ko" || fail "insmod $module"
done </modules.list

P9="trans=virtio,version=9p2000.L,msize=262144"
mkdir -p /ctl /newroot
mount -t 9p -o "$P9,cache=none" vmctl /ctl || fail "mount the control share"
mkdir -p /ctl/.ok
. /ctl/config.sh

R=/newroot
mount -t 9p -o "$P9,ro,cache=loose" hostroot $R || fail "mount the host's root (9p)"
mount -t proc proc $R/proc || fail "mount /proc"
mount -t sysfs sysfs $R/sys || fail "mount /sys"
mount -t devtmpfs devtmpfs $R/dev || fail "mount /dev"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/dev/shm
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || mount -t cgroup2 cgroup2 $R/sys/fs/cgroup ||
  echo "vm-init: no cgroup2"
mount -t bpf -o mode=700 bpf $R/sys/fs/bpf || echo "vm-init: no bpffs"
mount -t tracefs tracefs $R/sys/kernel/tracing || echo "vm-init: no tracefs"
mount -t debugfs debugfs $R/sys/kernel/debug || echo "vm-init: no debugfs"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs $R/run || fail "mount /run"
mount -t tmpfs -o mode=700 tmpfs $R/root || fail "mount /root"
if [ "$VM_DISK" = 1 ]; then
  mount -t ext4 /dev/vda $R/var/tmp || fail "mount the scratch disk on /var/tmp"
  chmod 1777 $R/var/tmp
else
  mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp || fail "mount /var/tmp"
fi
release="$(uname -r)"
if [ -d $R/lib/modules ]; then
  mount -t tmpfs -o mode=755 tmpfs $R/lib/modules || fail "mount /lib/modules"
else
  # The host has no /lib/modules to mount on: a read-only overlay on /usr/lib adds it.
  libdir="$(realpath $R/lib)"
  mkdir -p /overlay
  mount -t tmpfs -o mode=755 tmpfs /overlay
  mkdir -p "/overlay/modules/$release"
  mount -t overlay -o "lowerdir=/overlay:$libdir" overlay "$libdir" ||
    fail "mount an overlay on $libdir for /lib/modules"
fi

# Shares before the modules: the modules may be in one (a checkout under /tmp).
i=0
for share in $VM_SHARES; do
  mkdir -p "$R$share" 2>/dev/null
  mount -t 9p -o "$P9,cache=none" "share$i" "$R$share" || fail "mount share$i on $share"
  i=$((i + 1))
done

mkdir -p "$R/lib/modules/$release"
mount -o bind,ro "$R$VM_MODULES" "$R/lib/modules/$release" || fail "bind the modules"
echo /sbin/modprobe >/proc/sys/kernel/modprobe

hostname "$VM_HOSTNAME"
ip link set lo up || fail "lo up"

cat /proc/uptime >/ctl/uptime
echo "vm-init: command starts"
chroot $R /usr/bin/env -i PATH="$VM_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/sh \
  TERM=dumb LANG=C.UTF-8 /bin/sh "$VM_CTL/cmd.sh" </dev/null >/ctl/output 2>&1
echo $? >/ctl/status.tmp
mv /ctl/status.tmp /ctl/status
echo "vm-init: command ended"
off
"""

# The kernel runs /sbin/modprobe (request_module) from the initramfs' root: use the
# host's kmod on the guest's modules instead of busybox's.
MODPROBE_WRAPPER = """#!/bin/sh
exec /bin/chroot /newroot /sbin/modprobe "$@"
"""


class VMError(RuntimeError):
    """The guest did not run the command to its end."""


class VMTimeout(VMError):
    pass


class VMResult(NamedTuple):
    status: int
    output: str
    boot_seconds: float  # qemu started -> command started
    total_seconds: float  # qemu started -> qemu ended


class Kernel(NamedTuple):
    name: str
    suite: str
    packages: tuple
    version: str

    @property
    def directory(self) -> Path:
        return KERNELS_DIR / self.name

    @property
    def fetched(self) -> bool:
        return (self.directory / "vmlinuz").is_file() and (self.directory / "release").is_file()

    @property
    def release(self) -> str:
        return (self.directory / "release").read_text().strip()


def kernels() -> list:
    """The kernels of tests/kernels/kernels.txt, in its order."""
    found = []
    for line in KERNELS_TABLE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 4:
            found.append(Kernel(fields[0], fields[1], tuple(fields[2].split(",")), fields[3]))
    return found


def find_kernel(name: str) -> Kernel:
    """By its name in kernels.txt (5.10, 6.1, ...) or its release (uname -r)."""
    table = kernels()
    for kernel in table:
        if name == kernel.name:
            return kernel
    for kernel in table:
        if kernel.fetched and name == kernel.release:
            return kernel
    prefixed = [k for k in table if k.name.startswith(name)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise VMError(f"no kernel {name!r} in {KERNELS_TABLE} (have: {', '.join(k.name for k in table)})")


# --- initramfs -------------------------------------------------------------------


def _module_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".xz", ".zst", ".gz"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base[:-3].replace("-", "_") if base.endswith(".ko") else base


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    return data


def resolve_modules(moddir: Path, wanted: Sequence[str], optional: Sequence[str] = ()) -> list:
    """Module files (relative to moddir) to insmod in order: dependencies first."""
    deps = {}
    by_name = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        module, rest = line.split(":", 1)
        deps[module] = rest.split()
        by_name[_module_name(module)] = module
    builtin = set()
    if (moddir / "modules.builtin").exists():
        builtin = {_module_name(m) for m in (moddir / "modules.builtin").read_text().split()}
    order: list = []

    def add(module: str) -> None:
        if module in order:
            return
        for dep in reversed(deps.get(module, [])):  # modules.dep lists the deepest last
            add(dep)
        order.append(module)

    for name in list(wanted) + list(optional):
        key = name.replace("-", "_")
        if key in by_name:
            add(by_name[key])
        elif key not in builtin and name not in optional:
            raise VMError(f"module {name} is neither in {moddir}/modules.dep nor built in")
    return order


class _Cpio:
    """A newc archive, written without the cpio tool (and with /dev/console in it)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev=(0, 0)) -> None:
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{value:08x}" for value in (
            self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0))
        self.inode += 1
        self.buffer.write(header.encode() + encoded)
        self.buffer.write(b"\0" * (-(110 + len(encoded)) % 4))
        self.buffer.write(data)
        self.buffer.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buffer.getvalue()


def initramfs(kernel: Kernel, rebuild: bool = False) -> Path:
    """build/kernels/<name>/initramfs.cpio.gz, built once and again when its inputs change."""
    directory = kernel.directory
    release = kernel.release
    moddir = directory / "lib" / "modules" / release
    modules = resolve_modules(moddir, INITRAMFS_MODULES, OPTIONAL_MODULES)
    if not BUSYBOX.is_file():
        raise VMError(f"{BUSYBOX} is missing: apt-get install busybox-static (scripts/install-deps.sh)")
    key_source = {
        "format": INITRAMFS_FORMAT, "init": INIT_SCRIPT, "modprobe": MODPROBE_WRAPPER,
        "release": release,
        "busybox": [BUSYBOX.stat().st_size, BUSYBOX.stat().st_mtime_ns],
        "modules": [[m, (moddir / m).stat().st_size, (moddir / m).stat().st_mtime_ns] for m in modules],
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()
    target = directory / "initramfs.cpio.gz"
    key_file = directory / "initramfs.key"
    if not rebuild and target.exists() and key_file.exists() and key_file.read_text().strip() == key:
        return target

    cpio = _Cpio()
    for name in ("bin", "sbin", "dev", "proc", "sys", "modules", "newroot", "ctl", "etc", "tmp"):
        cpio.directory(name)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    applets = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if applet not in ("busybox", "modprobe"):
            cpio.symlink(f"bin/{applet}", "busybox")
    cpio.file("sbin/modprobe", MODPROBE_WRAPPER.encode(), 0o755)
    names = []
    for module in modules:
        name = _module_name(module)
        names.append(name)
        cpio.file(f"modules/{name}.ko", _read_module(moddir / module))
    cpio.file("modules.list", ("\n".join(names) + "\n").encode())
    cpio.file("init", INIT_SCRIPT.encode(), 0o755)
    _replace_cached(target, gzip.compress(cpio.finish(), compresslevel=6, mtime=0), key_file, key)
    return target


def _replace_cached(target: Path, data: bytes, key_file: Path, key: str) -> None:
    """Writes a cached build product whole (a reader never sees half of it),
    then the key of the inputs it was made from."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, target)
    key_file.write_text(key + "\n")


def boot_image(kernel: Kernel) -> Path:
    """The kernel for qemu's -kernel: the ELF vmlinux unpacked from Debian's bzImage
    (cached as build/kernels/<name>/vmlinux), which qemu boots through the PVH entry
    point, skipping the ~3.5 s that decompressing the bzImage takes under TCG. Falls
    back to the bzImage when the kernel has no PVH entry or cannot be unpacked."""
    vmlinuz = kernel.directory / "vmlinuz"
    target = kernel.directory / "vmlinux"
    stamp = kernel.directory / "vmlinux.key"
    key = f"{vmlinuz.stat().st_size} {vmlinuz.stat().st_mtime_ns}"
    if target.exists() and stamp.exists() and stamp.read_text().strip() == key:
        return target
    config = (kernel.directory / "config").read_text()
    if "CONFIG_PVH=y" not in config:
        return vmlinuz
    data = vmlinuz.read_bytes()
    try:
        if data[0x202:0x206] != b"HdrS":
            raise ValueError("not a bzImage")
        setup = ((data[0x1F1] or 4) + 1) * 512
        offset, length = struct.unpack_from("<II", data, 0x248)
        payload = data[setup + offset: setup + offset + length]
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor().decompress(payload)
        elif payload.startswith(b"\x28\xb5\x2f\xfd"):
            elf = subprocess.run(["zstd", "-dcq"], input=payload[:-4], capture_output=True,
                                 check=True).stdout
        elif payload.startswith(b"\x1f\x8b"):
            elf = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
        else:
            raise ValueError(f"unknown compression {payload[:4].hex()}")
        if not elf.startswith(b"\x7fELF"):
            raise ValueError("the payload is no ELF")
    except (ValueError, OSError, lzma.LZMAError, subprocess.CalledProcessError) as error:
        print(f"vm: booting the bzImage of {kernel.name} ({error})", file=sys.stderr)
        return vmlinuz
    _replace_cached(target, elf, stamp, key)
    return target


# --- running ---------------------------------------------------------------------


def _check_path(path: str) -> str:
    if not path.startswith("/") or any(c.isspace() for c in path) or "'" in path:
        raise VMError(f"cannot share {path!r}: it must be absolute, without spaces or quotes")
    return path


class VM:
    """One kernel, booted once per run() (each run is a fresh guest)."""

    def __init__(self, kernel: Union[str, Kernel], memory_mib: int = 2048, cpus: int = 2,
                 scratch_mib: int = 256, timeout: float = 900.0, append: str = "",
                 qemu: str = QEMU) -> None:
        self.kernel = kernel if isinstance(kernel, Kernel) else find_kernel(kernel)
        if not self.kernel.fetched:
            raise VMError(f"kernel {self.kernel.name} is not fetched: run scripts/kernel-images.sh")
        if shutil.which(qemu) is None:
            raise VMError(f"{qemu} is missing: apt-get install qemu-system-x86 (scripts/install-deps.sh)")
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.scratch_mib = scratch_mib
        self.timeout = timeout
        self.append = append
        self.qemu = qemu
        self.console = ""  # the serial console of the last run
        self.run_dir: Optional[Path] = None  # kept after a failed run (or keep=True)

    def run(self, command: Union[str, Sequence[str]], *, results_dir: Union[str, Path, None] = None,
            shares: Iterable[Union[str, Path]] = (), env: Optional[Mapping[str, str]] = None,
            cwd: Union[str, Path, None] = None, timeout: Optional[float] = None,
            stream: Optional[IO[str]] = None, keep: bool = False) -> VMResult:
        """Boots the kernel, runs `command` (a shell string, or an argv) and powers off.

        results_dir (created if missing) and each of `shares` are host directories the
        guest sees read-write at the same path; the command finds results_dir in
        $VM_RESULTS. `stream` gets the command's output while it runs. Raises
        VMTimeout after `timeout` seconds and VMError if the guest did not report
        the command's exit status; both carry the end of the console."""
        timeout = self.timeout if timeout is None else timeout
        kernel = self.kernel
        initrd = initramfs(kernel)
        runs = KERNELS_DIR / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{kernel.name}-", dir=runs))
        self.run_dir = run_dir
        ctl = run_dir / "ctl"
        ctl.mkdir()
        shared = []
        if results_dir is not None:
            results = Path(results_dir).resolve()
            results.mkdir(parents=True, exist_ok=True)
            shared.append(results)
        for share in shares:
            path = Path(share).resolve()
            if not path.is_dir():
                raise VMError(f"cannot share {path}: not a directory")
            shared.append(path)
        # The guest's own tmpfs hides what the host has there: a checkout (and
        # its kernels) under /tmp is shared, or the guest could not see it.
        for needed in (REPO, KERNELS_DIR):
            needed = needed.resolve()
            hidden = any(needed == Path(t) or Path(t) in needed.parents for t in GUEST_TMPFS)
            if hidden and not any(p == needed or p in needed.parents for p in shared):
                shared.append(needed)
        shared.sort(key=lambda p: len(p.parts))  # a share inside another is mounted after it
        for path in shared:
            _check_path(str(path))
        _check_path(str(ctl))
        moddir = kernel.directory / "lib" / "modules" / kernel.release
        _check_path(str(moddir))

        if isinstance(command, str):
            body = command
        else:
            body = "exec " + " ".join(shlex.quote(str(arg)) for arg in command)
        environment = {"VM_KERNEL": kernel.name}
        if results_dir is not None:
            environment["VM_RESULTS"] = str(Path(results_dir).resolve())
        environment.update(env or {})
        lines = ["# written by tests/kernels/vm.py"]
        lines += [f"export {name}={shlex.quote(str(value))}" for name, value in environment.items()]
        directory = str(cwd) if cwd is not None else os.getcwd()
        lines.append(f"cd {shlex.quote(directory)} 2>/dev/null || cd /")
        lines.append(body)
        (ctl / "cmd.sh").write_text("\n".join(lines) + "\n")
        (ctl / "config.sh").write_text("\n".join([
            f"VM_CTL='{ctl}'",
            f"VM_MODULES='{moddir}'",
            f"VM_DISK={1 if self.scratch_mib else 0}",
            f"VM_SHARES='{' '.join(str(p) for p in shared)}'",
            f"VM_HOSTNAME='vm-{kernel.name.replace('.', '-')}'",
            f"VM_PATH='{GUEST_PATH}'",
        ]) + "\n")

        args = [
            self.qemu, "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", "tcg",
            "-cpu", "max", "-smp", str(self.cpus), "-m", str(self.memory_mib),
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
            "-kernel", str(boot_image(kernel)), "-initrd", str(initrd),
            "-append", " ".join(filter(None, [KERNEL_COMMAND_LINE, self.append])),
        ]
        exports = [("hostroot", "/", True), ("vmctl", str(ctl), False)]
        exports += [(f"share{i}", str(path), False) for i, path in enumerate(shared)]
        for tag, path, readonly in exports:
            args += ["-fsdev", f"local,id={tag},path={path},security_model=none,multidevs=remap"
                     + (",readonly=on" if readonly else ""),
                     "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
        if self.scratch_mib:
            image = run_dir / "scratch.img"
            with open(image, "wb") as handle:
                handle.truncate(self.scratch_mib * 1024 * 1024)
            subprocess.run(["mkfs.ext4", "-F", "-q", "-E", "nodiscard", "-L", "scratch", str(image)],
                           check=True, capture_output=True)
            args += ["-drive", f"file={image},if=virtio,format=raw,cache=none,discard=unmap"]

        console_tail: collections.deque = collections.deque(maxlen=40)
        console_log = open(run_dir / "console.log", "w", errors="replace")
        started_at: list = []
        start = time.monotonic()
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)

        def read_console() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if START_MARKER in line and not started_at:
                    started_at.append(time.monotonic())
                console_tail.append(line)
                console_log.write(line + "\n")
                console_log.flush()

        reader = threading.Thread(target=read_console, daemon=True)
        reader.start()
        output_path = ctl / "output"
        streamed = 0
        timed_out = False
        try:
            while process.poll() is None:
                if time.monotonic() - start > timeout:
                    timed_out = True
                    break
                if stream is not None and output_path.exists():
                    streamed = _stream(output_path, streamed, stream)
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(timeout=5)
            console_log.close()
        end = time.monotonic()
        if stream is not None and output_path.exists():
            _stream(output_path, streamed, stream)
        self.console = (run_dir / "console.log").read_text(errors="replace")
        tail = "\n".join(console_tail)
        if timed_out:
            raise VMTimeout(f"{kernel.name}: no result after {timeout:.0f} s; qemu killed; "
                            f"run kept in {run_dir}; console ends:\n{tail}")
        status_file = ctl / "status"
        if not status_file.exists():
            reason = (ctl / "init-error").read_text().strip() if (ctl / "init-error").exists() else ""
            raise VMError(f"{kernel.name}: the guest ended (qemu exit {process.returncode}) without "
                          f"the command's status{': ' + reason if reason else ''}; "
                          f"run kept in {run_dir}; console ends:\n{tail}")
        status = int(status_file.read_text().strip())
        output = output_path.read_text(errors="replace") if output_path.exists() else ""
        boot = (started_at[0] if started_at else end) - start
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
            self.run_dir = None
        return VMResult(status, output, boot, end - start)


def _stream(path: Path, offset: int, out: IO[str]) -> int:
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    if data:
        out.write(data.decode(errors="replace"))
        out.flush()
    return offset + len(data)


def run(kernel: str, command: Union[str, Sequence[str]], **options) -> VMResult:
    """run("6.1", "uname -r") -> VMResult(status, output, boot_seconds, total_seconds)."""
    vm_options = {k: options.pop(k) for k in ("memory_mib", "cpus", "scratch_mib", "append")
                  if k in options}
    return VM(kernel, **vm_options).run(command, **options)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Boot a Debian kernel under qemu and run a command in it "
                    "(the host's / is the guest's, read-only).",
        usage="%(prog)s --kernel NAME [options] -- CMD...")
    parser.add_argument("--kernel", help="a name from tests/kernels/kernels.txt (5.10, 6.1, ...)")
    parser.add_argument("--memory", type=int, default=2048, metavar="MiB")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--scratch", type=int, default=256, metavar="MiB",
                        help="size of the ext4 scratch disk on /var/tmp (0: tmpfs instead)")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS")
    parser.add_argument("--results", metavar="DIR", help="host directory shared read-write ($VM_RESULTS)")
    parser.add_argument("--share", action="append", default=[], metavar="DIR",
                        help="another host directory the guest may write (same path)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--append", default="", help="more kernel command line")
    parser.add_argument("--keep", action="store_true", help="keep build/kernels/runs/<run>/")
    parser.add_argument("--console", action="store_true", help="print the serial console afterwards")
    parser.add_argument("--list", action="store_true", help="list the kernels and exit")
    parser.add_argument("command", nargs="*")
    options = parser.parse_args(argv)
    if options.list:
        for k in kernels():
            state = k.release if k.fetched else "not fetched (scripts/kernel-images.sh)"
            print(f"{k.name:6} {k.suite:17} {k.version:18} {state}")
        return 0
    if not options.kernel or not options.command:
        parser.error("--kernel NAME and a command are needed")
    env = dict(item.split("=", 1) for item in options.env)
    try:
        vm = VM(options.kernel, memory_mib=options.memory, cpus=options.cpus,
                scratch_mib=options.scratch, timeout=options.timeout, append=options.append)
        command = options.command
        result = vm.run(command if len(command) > 1 else command[0], results_dir=options.results,
                        shares=options.share, env=env, stream=sys.stdout, keep=options.keep)
    except VMError as error:
        print(f"vm: {error}", file=sys.stderr)
        return 125
    if options.console:
        sys.stderr.write(vm.console)
    print(f"vm: kernel {vm.kernel.name} ({vm.kernel.release}): exit status {result.status}, "
          f"boot {result.boot_seconds:.1f} s, total {result.total_seconds:.1f} s"
          + (f", run kept in {vm.run_dir}" if vm.run_dir else ""), file=sys.stderr)
    return result.status


if __name__ == "__main__":
    sys.exit(main())
