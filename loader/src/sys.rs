//! Every system call `ebpf-run` makes itself (aya does the rest): signal handlers, the memlock limit,
//! `poll(2)` on ring buffers, raw `bpf(2)` map iteration for keys and values of any size, and the
//! packet sockets that socket filters attach to.
//!
//! All `unsafe` code of the loader lives here, behind safe functions whose buffers are sized from the
//! kernel's own description of the map.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the SIGINT/SIGTERM handler.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM request a clean stop (see [`stop_requested`]) instead of killing the process.
///
/// The handlers are installed without `SA_RESTART`, so a blocked `poll(2)` returns promptly.
pub fn install_stop_handlers() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty handler) that we then fill in.
        let mut action: libc::sigaction = unsafe { mem::zeroed() };
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `sa_mask` is a valid, exclusively borrowed sigset_t.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised and outlives the call; the handler only stores to an
        // atomic, which is async-signal-safe; a null old-action pointer is allowed.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM has arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Raises RLIMIT_MEMLOCK to infinity: kernels before 5.11 charge BPF maps against it.
pub fn raise_memlock_limit() -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` where `/sys/kernel/btf` cannot be seen: in a mount namespace of its own (every mount in it
/// private, so nothing propagates back) with an empty read-only tmpfs over that folder, then returns to
/// the original namespace; the private one and its tmpfs vanish with it. Call it while the process is
/// single-threaded (the kernel lets only such a process re-enter a mount namespace).
///
/// aya 0.14's `EbpfLoader::new()` always parses the kernel's whole BTF, even when the caller then hands
/// it another one; made here, it finds none and costs nothing. `None` (the caller then pays the parse)
/// without the privilege to unshare, mount and return (CAP_SYS_ADMIN, CAP_SYS_CHROOT) or when anything
/// else fails before `f` runs.
pub fn without_kernel_btf<T>(f: impl FnOnce() -> T) -> Option<T> {
    let c = |s: &str| CString::new(s).ok();
    let (ns, root, btf, tmpfs) = (
        c("/proc/self/ns/mnt")?,
        c("/")?,
        c("/sys/kernel/btf")?,
        c("tmpfs")?,
    );
    // SAFETY: `ns` is a valid C string; the fd is owned below.
    let raw = unsafe { libc::open(ns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh fd nothing else owns.
    let original = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: plain system calls; every pointer is a valid C string that outlives the call, or null
    // where the kernel accepts null.
    let hidden = unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return None;
        }
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == 0
            && libc::mount(
                tmpfs.as_ptr(),
                btf.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) == 0
    };
    let result = hidden.then(f);
    // SAFETY: `original` is an open namespace fd. Should returning fail, the process keeps a private
    // copy of the same mounts, only with /sys/kernel/btf covered, which nothing reads after this.
    unsafe { libc::setns(original.as_raw_fd(), libc::CLONE_NEWNS) };
    result
}

/// Waits up to `timeout_ms` for any of `fds` to become readable; `Ok(false)` on timeout or a signal.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<bool> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pollfds` is a valid array of `pollfds.len()` entries that outlives the call, and every fd
    // in it is kept open by its `BorrowedFd` for the duration.
    let n = unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok(false),
            _ => Err(err),
        };
    }
    Ok(n > 0)
}

/// Opens an `AF_PACKET` socket that receives every packet (`ETH_P_ALL`) of interface `iface`: the
/// place a `socket` program sees an interface's traffic. Nobody reads it; the kernel drops what queues.
pub fn packet_socket(iface: &str) -> io::Result<OwnedFd> {
    let index = if_index(iface)?;
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(all),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created socket that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is valid; the fields we need are set below.
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = all;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the given length that outlives the call.
    let ret = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

/// The leading fields of the `bpf_attr` of `BPF_MAP_CREATE`.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

/// The memory page size (ring buffer sizes are multiples of it).
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    u32::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Creates (and closes again) a map of type `map_type` with the given sizes: does this kernel have it?
pub fn probe_map_type(map_type: u32, key_size: u32, value_size: u32, max: u32) -> io::Result<()> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries: max,
    };
    // SAFETY: the attr holds no pointers.
    let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }?;
    // SAFETY: BPF_MAP_CREATE returned a new fd that nothing else owns; dropping it closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

/// The leading fields of the `bpf_attr` of `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads (and unloads again) `r0 = 0; exit` as a program of type `prog_type`: does this kernel have
/// the type, and may this process load it?
pub fn probe_prog_type(prog_type: u32, expected_attach_type: u32) -> io::Result<()> {
    // `mov64 r0, 0; exit` as struct bpf_insn bytes (opcode first, all else zero: the same in either
    // byte order).
    let insns: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];
    probe_prog(prog_type, expected_attach_type, &insns)
}

/// `BPF_FUNC_get_attach_cookie`.
const FUNC_GET_ATTACH_COOKIE: i32 = 174;

/// Whether programs may call `bpf_get_attach_cookie` (kernel 5.15, or a backport): a tracepoint
/// program calling it is loaded and unloaded, as libbpf probes it for `LINUX_HAS_BPF_COOKIE`.
pub fn has_bpf_cookie() -> bool {
    // `call get_attach_cookie; exit`: the call's imm (bytes 4..8) is in the machine's byte order.
    let mut call = [0x85, 0, 0, 0, 0, 0, 0, 0];
    call[4..].copy_from_slice(&FUNC_GET_ATTACH_COOKIE.to_ne_bytes());
    let insns = [call, [0x95, 0, 0, 0, 0, 0, 0, 0]];
    probe_prog(5, 0, &insns).is_ok()
}

/// Loads (and unloads again) `insns` as a GPL program of type `prog_type`.
fn probe_prog(prog_type: u32, expected_attach_type: u32, insns: &[[u8; 8]]) -> io::Result<()> {
    let license = b"GPL\0";
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: addr(insns.as_ptr().cast()),
        license: addr(license.as_ptr()),
        expected_attach_type,
        ..ProgLoadAttr::default()
    };
    // SAFETY: `insns` holds `insn_cnt` instructions and `license` is NUL-terminated; both outlive the
    // call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns; dropping it closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}
/// `BPF_CGROUP_INET_INGRESS` attach type; `BPF_CGROUP_INET_EGRESS` is the next one.
pub const ATTACH_CGROUP_INET_INGRESS: u32 = 0;
/// `BPF_XDP` attach type.
pub const ATTACH_XDP: u32 = 37;
/// `BPF_TCX_INGRESS` attach type (kernel 6.6); `BPF_TCX_EGRESS` is the next one.
pub const ATTACH_TCX_INGRESS: u32 = 46;

/// The `bpf_attr` layout of `BPF_LINK_CREATE` (the per-type tail left zero).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target: u32,
    attach_type: u32,
    flags: u32,
    tail: [u64; 3],
}

/// Links program `prog` to `target` (an interface index for XDP and tcx, a cgroup fd) with a BPF link: detached
/// when the returned fd closes, so nothing outlives the process.
pub fn link_create(prog: BorrowedFd<'_>, target: u32, attach_type: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target,
        attach_type,
        ..LinkCreateAttr::default()
    };
    // SAFETY: the attr holds no pointers.
    let fd = unsafe { bpf(BPF_LINK_CREATE, &mut attr) }?;
    // SAFETY: BPF_LINK_CREATE returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of network interface `iface`.
pub fn if_index(iface: &str) -> io::Result<u32> {
    let name = CString::new(iface).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface {iface}"),
        )),
        index => Ok(index),
    }
}

/// The leading fields of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER1`, 72 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

/// Bit `n` of perf_event_attr's flag bitfield (`disabled` is 0, `freq` 10): C allocates bitfields
/// from the least significant bit on little-endian targets and from the most significant one on
/// big-endian ones (s390x).
const fn attr_flag(n: u32) -> u64 {
    if cfg!(target_endian = "big") {
        1 << (63 - n)
    } else {
        1 << n
    }
}

/// Reads a number from a sysfs file of the uprobe PMU.
fn uprobe_pmu_value(file: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/sys/bus/event_source/devices/uprobe/{file}"))?;
    let digits = text.trim().rsplit(':').next().unwrap_or_default();
    digits
        .parse()
        .map_err(|_| io::Error::other(format!("unreadable uprobe PMU {file}")))
}

/// `perf_event_open(attr, pid, cpu)` with close-on-exec and no group.
fn perf_event_open(
    attr: &PerfEventAttr,
    pid: libc::c_int,
    cpu: libc::c_int,
) -> io::Result<OwnedFd> {
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // SAFETY: `attr` is a valid perf_event_attr prefix whose `size` says how much of it there is; any
    // pointer in it (a uprobe path) is kept alive by the caller for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const PerfEventAttr,
            pid,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Runs program `prog` on every firing of perf event `event` and enables it.
fn perf_event_set_bpf(event: &OwnedFd, prog: BorrowedFd<'_>) -> io::Result<()> {
    const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
    for (request, arg) in [
        (PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()),
        (PERF_EVENT_IOC_ENABLE, 0),
    ] {
        // SAFETY: both ioctls take an int argument and `event` is a perf event fd.
        if unsafe { libc::ioctl(event.as_raw_fd(), request as _, arg) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Opens a uprobe (a uretprobe when `ret`) at file offset `offset` of `path` for every process,
/// through the uprobe PMU's perf event. The probe goes away when the fd closes.
fn open_uprobe(path: &std::path::Path, offset: u64, ret: bool) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let config = if ret {
        1u64 << uprobe_pmu_value("format/retprobe")?
    } else {
        0
    };
    let attr = PerfEventAttr {
        kind: uprobe_pmu_value("type")?,
        size: mem::size_of::<PerfEventAttr>() as u32,
        config,
        sample_period: 1,
        wakeup_events: 1,
        config1: path.as_ptr() as usize as u64,
        config2: offset,
        ..PerfEventAttr::default()
    };
    // pid -1 with cpu 0: every process (the program runs on whichever CPU hits the probe).
    perf_event_open(&attr, -1, 0)
}

/// Attaches program `prog` at file offset `offset` of `path` as a uprobe (a uretprobe when `ret`) for
/// every process. The probe goes away when the fd closes.
pub fn attach_uprobe(
    prog: BorrowedFd<'_>,
    path: &std::path::Path,
    offset: u64,
    ret: bool,
) -> io::Result<OwnedFd> {
    let event = open_uprobe(path, offset, ret)?;
    perf_event_set_bpf(&event, prog)?;
    Ok(event)
}

/// `BPF_PERF_EVENT`: the attach type of a BPF link to a perf event (Linux 5.15).
const ATTACH_PERF_EVENT: u32 = 41;

/// [`attach_uprobe`] through a BPF link carrying `cookie` (bpf_get_attach_cookie in the program):
/// the perf event and the link, both to keep open.
pub fn attach_uprobe_with_cookie(
    prog: BorrowedFd<'_>,
    path: &std::path::Path,
    offset: u64,
    ret: bool,
    cookie: u64,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let event = open_uprobe(path, offset, ret)?;
    let mut link = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target: event.as_raw_fd() as u32,
        attach_type: ATTACH_PERF_EVENT,
        ..LinkCreateAttr::default()
    };
    link.tail[0] = cookie;
    // SAFETY: the attr holds no pointers.
    let fd = unsafe { bpf(BPF_LINK_CREATE, &mut link) }?;
    // SAFETY: BPF_LINK_CREATE returned a new fd that nothing else owns.
    Ok((event, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Samples CPU `cpu` with the software cpu-clock event at `freq` Hz, running `prog` on each sample
/// (works in VMs without a hardware PMU). Stops when the fd closes.
pub fn attach_cpu_clock(prog: BorrowedFd<'_>, cpu: u32, freq: u64) -> io::Result<OwnedFd> {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const FLAG_FREQ: u64 = attr_flag(10);
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: mem::size_of::<PerfEventAttr>() as u32,
        config: 0, // PERF_COUNT_SW_CPU_CLOCK
        sample_period: freq,
        flags: FLAG_FREQ,
        ..PerfEventAttr::default()
    };
    let event = perf_event_open(&attr, -1, cpu as libc::c_int)?;
    perf_event_set_bpf(&event, prog)?;
    Ok(event)
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid
/// systems), from `/proc/mounts`.
pub fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split(' ');
        let (_, dir, fs) = (f.next()?, f.next()?, f.next()?);
        (fs == "cgroup2").then(|| dir.into())
    })
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The `bpf_attr` layout of the map element commands.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

/// The `bpf_attr` layout of `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The leading fields of `struct bpf_map_info` (the kernel fills at most `info_len` bytes).
#[repr(C)]
#[derive(Default)]
struct MapInfoPrefix {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// Issues `bpf(cmd, attr, size_of::<A>())`.
///
/// # Safety
/// Every pointer stored in `attr` must be valid for the reads and writes the kernel performs for `cmd`.
unsafe fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_int> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of `size_of::<A>()` bytes (the kernel
    // accepts a shorter attr and zero-fills the rest); the caller guarantees its embedded pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A,
            mem::size_of::<A>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as libc::c_int)
}

/// Address of a buffer as the kernel's `__aligned_u64` pointer field.
fn addr(p: *const u8) -> u64 {
    p as usize as u64
}

/// A map opened for raw iteration: its fd plus the key and value sizes the kernel reports.
pub struct RawMap<'fd> {
    fd: BorrowedFd<'fd>,
    /// `BPF_MAP_TYPE_*` as reported by the kernel.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: usize,
    /// Value size in bytes (one CPU's share for per-CPU maps).
    pub value_size: usize,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Bytes a lookup writes: `value_size`, or `round_up(value_size, 8) × cpu_slots` for per-CPU maps.
    lookup_size: usize,
}

impl<'fd> RawMap<'fd> {
    /// Asks the kernel for the map's sizes. `cpu_slots` must be at least the number of possible CPUs
    /// (see `dump::possible_cpu_slots`); it is used only for per-CPU map types.
    pub fn open(fd: BorrowedFd<'fd>, cpu_slots: usize) -> io::Result<Self> {
        let mut info = MapInfoPrefix::default();
        let mut attr = InfoAttr {
            bpf_fd: fd.as_raw_fd() as u32,
            info_len: mem::size_of::<MapInfoPrefix>() as u32,
            info: addr((&mut info as *mut MapInfoPrefix).cast()),
        };
        // SAFETY: `attr.info` points to `info`, writable for `info_len` bytes, and outlives the call.
        unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
        let value_size = info.value_size as usize;
        let per_cpu = crate::map_types::is_per_cpu(info.map_type);
        let lookup_size = if per_cpu {
            value_size
                .checked_next_multiple_of(8)
                .and_then(|v| v.checked_mul(cpu_slots.max(1)))
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?
        } else {
            value_size
        };
        Ok(RawMap {
            fd,
            map_type: info.map_type,
            key_size: info.key_size as usize,
            value_size,
            max_entries: info.max_entries,
            lookup_size,
        })
    }

    /// The key after `key` (the first key when `None`); `Ok(None)` at the end of the map.
    pub fn next_key(&self, key: Option<&[u8]>) -> io::Result<Option<Vec<u8>>> {
        if key.is_some_and(|k| k.len() != self.key_size) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut next = vec![0u8; self.key_size];
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.map_or(0, |k| addr(k.as_ptr())),
            value_or_next_key: addr(next.as_mut_ptr()),
            ..MapElemAttr::default()
        };
        // SAFETY: `key` (when present) is readable for key_size bytes, `next` writable for key_size bytes,
        // key_size being what the kernel reported for this fd; both outlive the call. A null key asks for
        // the first key.
        match unsafe { bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) } {
            Ok(_) => Ok(Some(next)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value stored under `key` (all CPUs' values for per-CPU maps); `Ok(None)` if absent.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if key.len() != self.key_size {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut value = vec![0u8; self.lookup_size];
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: addr(key.as_ptr()),
            value_or_next_key: addr(value.as_mut_ptr()),
            ..MapElemAttr::default()
        };
        // SAFETY: `key` is readable for key_size bytes; `value` is writable for the value size the kernel
        // reported (times the CPU slots for per-CPU maps, at least the possible CPU count); both outlive
        // the call.
        match unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) } {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl RawMap<'_> {
    /// Empties the map for the next interval: hash maps lose every entry, arrays (whose entries cannot
    /// be deleted) get zero values on every CPU.
    pub fn clear(&self) -> io::Result<()> {
        let array = matches!(self.map_type, 2 | 6); // BPF_MAP_TYPE_ARRAY, _PERCPU_ARRAY
        let zero = vec![0u8; self.lookup_size];
        let mut key = self.next_key(None)?;
        while let Some(k) = key {
            // Deleting a hash key first would lose the iteration's place: find the next one before.
            let next = self.next_key(Some(&k))?;
            let mut attr = MapElemAttr {
                map_fd: self.fd.as_raw_fd() as u32,
                key: addr(k.as_ptr()),
                value_or_next_key: if array { addr(zero.as_ptr()) } else { 0 },
                ..MapElemAttr::default()
            };
            let cmd = if array {
                BPF_MAP_UPDATE_ELEM
            } else {
                BPF_MAP_DELETE_ELEM
            };
            // SAFETY: `k` is readable for key_size bytes and `zero` for the map's lookup size (all CPUs'
            // values of a per-CPU array), both outliving the call.
            match unsafe { bpf(cmd, &mut attr) } {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            key = next;
        }
        Ok(())
    }
}

/// `RTM_NEWQDISC` / `RTM_DELQDISC`.
const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
/// `TC_H_CLSACT`: the clsact qdisc's parent; its handle is `TC_H_MAKE(TC_H_CLSACT, 0)`.
const TC_H_CLSACT: u32 = 0xffff_fff1;
const CLSACT_HANDLE: u32 = 0xffff_0000;
/// `TCA_KIND`.
const TCA_KIND: u16 = 1;

/// `struct nlmsghdr` + `struct tcmsg` + the `TCA_KIND` attribute "clsact".
#[repr(C)]
struct QdiscRequest {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
    family: u8,
    pad: [u8; 3],
    ifindex: i32,
    handle: u32,
    parent: u32,
    info: u32,
    attr_len: u16,
    attr_type: u16,
    attr: [u8; 8],
}

/// Adds (`add`) or deletes the clsact qdisc of interface `ifindex` over rtnetlink and waits for the
/// kernel's answer.
fn clsact(ifindex: u32, add: bool) -> io::Result<()> {
    let req = QdiscRequest {
        len: mem::size_of::<QdiscRequest>() as u32,
        kind: if add { RTM_NEWQDISC } else { RTM_DELQDISC },
        flags: (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16
            | if add {
                (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16
            } else {
                0
            },
        seq: 1,
        pid: 0,
        family: libc::AF_UNSPEC as u8,
        pad: [0; 3],
        ifindex: ifindex as i32,
        handle: CLSACT_HANDLE,
        parent: TC_H_CLSACT,
        info: 0,
        attr_len: 4 + 7,
        attr_type: TCA_KIND,
        attr: *b"clsact\0\0",
    };
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `req` is a plain struct readable for its size; the kernel's address is the zeroed
    // sockaddr_nl of family AF_NETLINK.
    let sent = unsafe {
        let mut to: libc::sockaddr_nl = mem::zeroed();
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            sock.as_raw_fd(),
            (&req as *const QdiscRequest).cast(),
            mem::size_of::<QdiscRequest>(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // The answer: nlmsghdr (16 bytes) then, for NLMSG_ERROR, the errno as a negative i32.
    let mut answer = [0u8; 512];
    // SAFETY: `answer` is writable for its length.
    let got = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            answer.as_mut_ptr().cast(),
            answer.len(),
            0,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let word = |at: usize| answer.get(at..).and_then(|b| b.first_chunk::<4>()).copied();
    let kind = answer
        .get(4..)
        .and_then(|b| b.first_chunk::<2>())
        .map(|b| u16::from_ne_bytes(*b));
    match (kind, word(16).map(i32::from_ne_bytes)) {
        (Some(k), Some(0)) if k == libc::NLMSG_ERROR as u16 => Ok(()),
        (Some(k), Some(e)) if k == libc::NLMSG_ERROR as u16 => {
            Err(io::Error::from_raw_os_error(-e))
        }
        _ => Err(io::Error::other("unexpected rtnetlink answer")),
    }
}

/// A clsact qdisc this run added to an interface, for netlink tc filters; deleted when dropped.
pub struct Clsact(u32);

impl Clsact {
    /// Adds the clsact qdisc to interface `ifindex`; `None` when it already has one (not ours to
    /// delete).
    pub fn add(ifindex: u32) -> io::Result<Option<Clsact>> {
        match clsact(ifindex, true) {
            Ok(()) => Ok(Some(Clsact(ifindex))),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Clsact {
    fn drop(&mut self) {
        let _ = clsact(self.0, false);
    }
}
