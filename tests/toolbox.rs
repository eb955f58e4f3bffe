//! The toolbox on this machine's kernel: every tool of the x86_64 bundle runs with its BCC-style
//! options while the test makes events whose fields it knows (a file opened, a process killed, a
//! connect to a loopback listener, block I/O on a loop device, a process sleeping a known time), and
//! the tool's JSON lines must hold exactly those fields. Histograms are checked by the bucket of a
//! known delay or by an exact count. Tools whose hooks this kernel lacks (kprobes) must be named by
//! `ebpf-run --check` with the reason.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// One tool at a time: each loads programs that see the whole system.
static KERNEL: Mutex<()> = Mutex::new(());

/// The unpacked x86_64 bundle, once per test binary.
fn top() -> &'static Path {
    static TOP: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, top) = TOP.get_or_init(|| {
        let dir = tempdir();
        let top = unpack(&bundle("x86_64"), dir.path());
        (dir, top)
    });
    top
}

/// The start of a test that loads programs: `None` (after saying why) when this host cannot.
fn kernel_test() -> Option<std::sync::MutexGuard<'static, ()>> {
    if !can_load_bpf() {
        return None;
    }
    let guard = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_tracefs();
    Some(guard)
}

/// What a run of a tool printed: its JSON lines and its stderr.
struct Run {
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    /// The event records (ring buffer lines) of `tool`.
    fn events(&self, tool: &str) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["probe"] == tool && l["map"] == "events" && l.get("key").is_none())
            .filter(|l| l.get("printed").is_none())
            .collect()
    }

    /// The entries of map `map` of the last dump of `tool`.
    fn dump(&self, tool: &str, map: &str) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["probe"] == tool && l["map"] == map && l.get("key").is_some())
            .collect()
    }
}

/// Runs `ebpf-run TOOL ARGS --format json` from the bundle while `workload` runs, then stops it with
/// SIGTERM (it must exit 0).
fn run_tool(args: &[&str], workload: impl FnOnce()) -> Run {
    let running = start_attached(
        Command::new(top().join("ebpf-run"))
            .args(args)
            .args(["--format", "json", "--duration", "120"])
            .current_dir(top()),
    );
    workload();
    std::thread::sleep(Duration::from_millis(500));
    running.signal(libc::SIGTERM);
    let (status, stdout, stderr) = running.wait();
    assert!(
        status.success(),
        "ebpf-run {args:?}: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run { lines, stderr }
}

/// Runs `cmd` to its end and returns its pid.
fn spawn_wait(cmd: &mut Command) -> u32 {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let _ = child.wait();
    pid
}

fn me() -> u64 {
    u64::from(std::process::id())
}

#[test]
fn opensnoop_shows_the_fd_errno_and_path_of_opens_as_bcc_does() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    let there = dir.path().join(unique("there"));
    std::fs::write(&there, "x").expect("write");
    let missing = dir.path().join(unique("missing"));
    let mut pids = (0, 0);
    let run = run_tool(&["opensnoop", "-n", "cat"], || {
        pids.0 = spawn_wait(
            Command::new("cat")
                .arg(&there)
                .stdout(std::process::Stdio::null()),
        );
        pids.1 = spawn_wait(
            Command::new("cat")
                .arg(&missing)
                .stderr(std::process::Stdio::null()),
        );
    });
    let events = run.events("opensnoop");
    assert!(
        events.iter().all(|e| e["comm"] == "cat"),
        "-n cat let others through: {events:?}"
    );
    let ok = events
        .iter()
        .find(|e| e["path"] == there.to_str().expect("utf-8"))
        .unwrap_or_else(|| panic!("no open of {there:?}: {events:?}"));
    assert_eq!(
        (ok["pid"].as_u64(), ok["err"].as_i64()),
        (Some(u64::from(pids.0)), Some(0))
    );
    assert!(ok["fd"].as_i64().is_some_and(|fd| fd >= 3), "{ok}");
    let failed = events
        .iter()
        .find(|e| e["path"] == missing.to_str().expect("utf-8"))
        .unwrap_or_else(|| panic!("no open of {missing:?}: {events:?}"));
    assert_eq!(
        (
            failed["pid"].as_u64(),
            failed["fd"].as_i64(),
            failed["err"].as_i64()
        ),
        (Some(u64::from(pids.1)), Some(-1), Some(2))
    );
    // -x: failed opens only.
    let run = run_tool(&["opensnoop", "-x", "-n", "cat"], || {
        spawn_wait(
            Command::new("cat")
                .arg(&there)
                .stdout(std::process::Stdio::null()),
        );
        spawn_wait(
            Command::new("cat")
                .arg(&missing)
                .stderr(std::process::Stdio::null()),
        );
    });
    let events = run.events("opensnoop");
    assert!(
        events.iter().all(|e| e["err"].as_i64() != Some(0)),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["path"] == missing.to_str().expect("utf-8")),
        "{events:?}"
    );
}

#[test]
fn execsnoop_shows_arguments_results_and_parents() {
    let Some(_k) = kernel_test() else { return };
    let arg = unique("arg");
    let mut pid = 0;
    let run = run_tool(&["execsnoop", "-P", &me().to_string()], || {
        pid = spawn_wait(
            Command::new("/bin/echo")
                .args([arg.as_str(), "two words"])
                .stdout(std::process::Stdio::null()),
        );
        let _ = Command::new("/nonexistent/ebpfpack-no-such-program").status();
    });
    let events = run.events("execsnoop");
    let echo = events
        .iter()
        .find(|e| e["pid"].as_u64() == Some(u64::from(pid)))
        .unwrap_or_else(|| panic!("no exec of pid {pid}: {events:?}"));
    assert_eq!(echo["pcomm"], "echo");
    assert_eq!(echo["ppid"].as_u64(), Some(me()));
    assert_eq!(echo["ret"].as_i64(), Some(0));
    assert_eq!(echo["args"], format!("/bin/echo {arg} two words"));
    assert!(
        events.iter().any(|e| e["ret"].as_i64() == Some(-2)
            && e["args"]
                .as_str()
                .is_some_and(|a| a.starts_with("/nonexistent/ebpfpack-no-such-program"))),
        "the failed exec: {events:?}"
    );
    // -x: only the failed one.
    let run = run_tool(&["execsnoop", "-x", "-P", &me().to_string()], || {
        spawn_wait(&mut Command::new("/bin/true"));
        let _ = Command::new("/nonexistent/ebpfpack-no-such-program").status();
    });
    let events = run.events("execsnoop");
    assert!(
        !events.is_empty() && events.iter().all(|e| e["ret"].as_i64() == Some(-2)),
        "{events:?}"
    );
}

#[test]
fn exitsnoop_shows_exit_codes_and_signals() {
    let Some(_k) = kernel_test() else { return };
    let mut pids = (0, 0);
    let run = run_tool(&["exitsnoop", "-x"], || {
        pids.0 = spawn_wait(Command::new("sh").args(["-c", "exit 7"]));
        let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
        pids.1 = sleeper.id();
        std::thread::sleep(Duration::from_millis(200));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    });
    let events = run.events("exitsnoop");
    let find = |pid: u32| {
        events
            .iter()
            .find(|e| e["pid"].as_u64() == Some(u64::from(pid)))
            .unwrap_or_else(|| panic!("no exit of {pid}: {events:?}"))
    };
    let sh = find(pids.0);
    assert_eq!(
        (
            sh["pcomm"].as_str(),
            sh["exit_code"].as_i64(),
            sh["sig"].as_i64()
        ),
        (Some("sh"), Some(7), Some(0))
    );
    assert_eq!(
        (sh["ppid"].as_u64(), sh["tid"].as_u64()),
        (Some(me()), Some(u64::from(pids.0)))
    );
    let killed = find(pids.1);
    assert_eq!(
        (
            killed["pcomm"].as_str(),
            killed["exit_code"].as_i64(),
            killed["sig"].as_i64()
        ),
        (Some("sleep"), Some(0), Some(9))
    );
    assert!(
        killed["age_ms"]
            .as_u64()
            .is_some_and(|ms| (150..5000).contains(&ms)),
        "{killed}"
    );
}

#[test]
fn killsnoop_shows_signal_target_and_result() {
    let Some(_k) = kernel_test() else { return };
    let mut target = 0;
    let run = run_tool(&["killsnoop", "-p", &me().to_string()], || {
        let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
        target = sleeper.id();
        // SAFETY: kill(2) of our own child, and of a pid that cannot exist (pid_max is below it).
        unsafe {
            libc::kill(target as i32, libc::SIGUSR1);
            libc::kill(0x3fff_fff0, 0);
        }
        let _ = sleeper.wait();
    });
    let events = run.events("killsnoop");
    assert!(
        events
            .iter()
            .any(|e| e["tpid"].as_u64() == Some(u64::from(target))
                && e["sig"].as_i64() == Some(i64::from(libc::SIGUSR1))
                && e["result"].as_i64() == Some(0)
                && e["pid"].as_u64() == Some(me())),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["tpid"].as_i64() == Some(0x3fff_fff0)
                && e["sig"].as_i64() == Some(0)
                && e["result"].as_i64() == Some(-3)),
        "kill of a missing pid: ESRCH: {events:?}"
    );
}

#[test]
fn statsnoop_shows_failed_and_successful_stats() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    let missing = dir.path().join(unique("nostat"));
    let there = dir.path().join(unique("stat"));
    std::fs::write(&there, "x").expect("write");
    let run = run_tool(&["statsnoop", "-p", &me().to_string()], || {
        assert!(std::fs::metadata(&missing).is_err());
        assert!(std::fs::metadata(&there).is_ok());
    });
    let events = run.events("statsnoop");
    let of = |p: &Path| {
        events
            .iter()
            .find(|e| e["path"] == p.to_str().expect("utf-8"))
            .copied()
    };
    let m = of(&missing).unwrap_or_else(|| panic!("no stat of {missing:?}: {events:?}"));
    assert_eq!(
        (m["ret"].as_i64(), m["err"].as_i64(), m["pid"].as_u64()),
        (Some(-1), Some(2), Some(me()))
    );
    let t = of(&there).unwrap_or_else(|| panic!("no stat of {there:?}: {events:?}"));
    assert_eq!((t["ret"].as_i64(), t["err"].as_i64()), (Some(0), Some(0)));
}

#[test]
fn mountsnoop_shows_mount_and_umount_calls() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    let at = dir.path().to_str().expect("utf-8").to_string();
    let source = unique("src");
    let run = run_tool(&["mountsnoop", "-p", &me().to_string()], || {
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let (src, target, fs, data) = (c(&source), c(&at), c("tmpfs"), c("size=1m"));
        // SAFETY: valid NUL-terminated strings for mount(2) and umount2(2), on a folder of our own.
        unsafe {
            assert_eq!(
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    fs.as_ptr(),
                    0,
                    data.as_ptr().cast()
                ),
                0
            );
            assert_eq!(libc::umount2(target.as_ptr(), 0), 0);
        }
    });
    let events = run.events("mountsnoop");
    let mount = events
        .iter()
        .find(|e| e["op"] == "MOUNT" && e["source"] == source.as_str())
        .unwrap_or_else(|| panic!("no mount of {source}: {events:?}"));
    assert_eq!(
        (
            mount["target"].as_str(),
            mount["fstype"].as_str(),
            mount["data"].as_str(),
            mount["ret"].as_i64()
        ),
        (Some(at.as_str()), Some("tmpfs"), Some("size=1m"), Some(0))
    );
    let own_ns = std::fs::read_link("/proc/self/ns/mnt")
        .expect("ns")
        .display()
        .to_string();
    assert_eq!(
        own_ns,
        format!("mnt:[{}]", mount["mnt_ns"]),
        "the namespace inode"
    );
    assert!(
        events.iter().any(|e| e["op"] == "UMOUNT"
            && e["target"] == at.as_str()
            && e["ret"].as_i64() == Some(0)),
        "{events:?}"
    );
}

/// A loop device over a temporary 8 MiB file, detached when dropped.
struct LoopDevice {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl LoopDevice {
    fn new() -> Option<LoopDevice> {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        file.as_file().set_len(8 << 20).expect("size");
        let out = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on"])
            .arg(file.path())
            .output()
            .ok()?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !dev.is_empty()).then_some(LoopDevice { dev, _file: file })
    }

    /// MAJOR:MINOR of the device, as the tools print it.
    fn maj_min(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.dev).expect("stat").rdev();
        (libc::major(rdev) as u64, libc::minor(rdev) as u64)
    }

    /// `n` direct 4 KiB reads from sector 0 on: exactly `n` block requests.
    fn read_direct(&self, n: usize) {
        let status = Command::new("dd")
            .args([
                format!("if={}", self.dev),
                "of=/dev/null".into(),
                "bs=4k".into(),
                format!("count={n}"),
                "iflag=direct".into(),
                "status=none".into(),
            ])
            .status()
            .expect("dd");
        assert!(status.success());
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn biolatency_and_biosnoop_count_every_request_of_a_loop_device() {
    let Some(_k) = kernel_test() else { return };
    let Some(dev) = LoopDevice::new() else {
        require(false, "loop devices (losetup)");
        return;
    };
    let (major, minor) = dev.maj_min();
    let disk = format!("{major}:{minor}");
    let run = run_tool(&["biolatency", "-D"], || dev.read_direct(16));
    let hists = run.dump("biolatency", "hist_us");
    let ours = hists
        .iter()
        .find(|h| h["key"]["disk"] == disk.as_str())
        .unwrap_or_else(|| panic!("no histogram for disk {disk}: {hists:?}"));
    let total: u64 = ours["value"]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(total, 16, "16 reads, 16 requests: {ours}");

    let dev_number = (major << 20 | minor).to_string();
    let run = run_tool(&["biosnoop", "-d", &dev_number], || dev.read_direct(16));
    let events = run.events("biosnoop");
    assert_eq!(
        events.len(),
        16,
        "-d {disk}: only the loop device's 16 reads: {events:?}"
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            (e["disk"].as_str(), e["comm"].as_str(), e["bytes"].as_u64()),
            (Some(disk.as_str()), Some("dd"), Some(4096)),
            "{e}"
        );
        assert!(
            e["t"].as_str().is_some_and(|t| t.starts_with('R')),
            "a read: {e}"
        );
        assert_eq!(
            e["sector"].as_u64(),
            Some(8 * i as u64),
            "sectors in order: {e}"
        );
    }
}

/// A shell that waits (in 10 ms sleeps) until `go` exists, then sleeps `n` times `secs` seconds, each
/// in a `sleep` child it waits for: the shell's own off-CPU times are those sleeps.
struct Sleeper {
    child: std::process::Child,
    go: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sleeper {
    fn new(n: u32, secs: &str) -> Sleeper {
        let dir = tempdir();
        let go = dir.path().join("go");
        let script = format!(
            "while [ ! -e {go} ]; do sleep 0.01; done; i=0; while [ $i -lt {n} ]; do sleep {secs}; i=$((i+1)); done",
            go = go.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .expect("sh");
        Sleeper {
            child,
            go,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it sleep its `n` times and waits for it.
    fn run(&mut self) {
        std::fs::write(&self.go, "").expect("go");
        let _ = self.child.wait();
    }
}

/// A histogram's slot counts.
fn slots(hist: &Value) -> Vec<u64> {
    hist["value"]["slots"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[test]
fn cpudist_puts_known_sleeps_into_their_bucket() {
    let Some(_k) = kernel_test() else { return };
    // 30 sleeps of 20 ms: with -O the shell's off-CPU times (the sleep plus starting `sleep`, a
    // millisecond or two) fall into slot 14, 16384 -> 32767 usecs.
    let mut sleeper = Sleeper::new(30, "0.02");
    let pid = sleeper.pid().to_string();
    let run = run_tool(&["cpudist", "-O", "-p", &pid], || sleeper.run());
    let hists = run.dump("cpudist", "hist_us");
    assert_eq!(hists.len(), 1, "{hists:?}");
    let counts = slots(hists[0]);
    assert!(
        counts.get(14).is_some_and(|&n| (28..=31).contains(&n)),
        "30 sleeps of 20 ms: {counts:?}"
    );
}

#[test]
fn runqlat_counts_each_wakeup_of_a_process() {
    let Some(_k) = kernel_test() else { return };
    let mut sleeper = Sleeper::new(20, "0.01");
    let pid = sleeper.pid();
    let run = run_tool(&["runqlat", "-P", "-p", &pid.to_string()], || sleeper.run());
    let hists = run.dump("runqlat", "hist_us");
    assert!(
        !hists.is_empty()
            && hists
                .iter()
                .all(|h| h["key"]["pid"].as_u64() == Some(u64::from(pid))),
        "-P: histograms keyed by the process id: {hists:?}"
    );
    let total: u64 = hists.iter().flat_map(|h| slots(h)).sum();
    assert!(
        total >= 20,
        "20 sleeps end in 20 wakeups of the shell: {hists:?}"
    );
}

#[test]
fn softirqs_and_hardirqs_name_what_ran() {
    let Some(_k) = kernel_test() else { return };
    // Loopback packets are received in the NET_RX softirq.
    let run = run_tool(&["softirqs"], || {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for _ in 0..200 {
            tx.send_to(b"ebpf-pack", rx.local_addr().expect("addr"))
                .expect("send");
        }
    });
    let rows = run.dump("softirqs", "softirqs");
    let net_rx = rows
        .iter()
        .find(|r| r["key"] == "net_rx")
        .unwrap_or_else(|| panic!("no net_rx: {rows:?}"));
    assert!(
        net_rx["value"]["count"].as_u64().is_some_and(|n| n >= 1),
        "{net_rx}"
    );
    assert!(
        net_rx["value"]["total_ns"].as_u64().is_some_and(|n| n > 0),
        "{net_rx}"
    );

    // Hardware interrupts: every one hardirqs counts is one /proc/interrupts counted in the same time.
    let counts = || -> std::collections::HashMap<String, u64> {
        std::fs::read_to_string("/proc/interrupts")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let name = words.last()?.to_string();
                let n = words[1..].iter().map_while(|w| w.parse::<u64>().ok()).sum();
                Some((name, n))
            })
            .collect()
    };
    let before = counts();
    let run = run_tool(&["hardirqs"], || {
        // Direct reads of the root disk complete with an interrupt on a virtio or NVMe disk.
        let _ = Command::new("dd")
            .args([
                "if=/proc/self/exe",
                "of=/dev/null",
                "bs=4k",
                "count=64",
                "iflag=direct",
                "status=none",
            ])
            .status();
    });
    let after = counts();
    let rows = run.dump("hardirqs", "hardirqs");
    if rows.is_empty() {
        // Then no numbered interrupt may have fired meanwhile.
        for (name, n) in &after {
            let grew = before.get(name).is_some_and(|b| n > b);
            assert!(
                !grew || name.parse::<u64>().is_err(),
                "{name} fired but hardirqs saw nothing: {}",
                run.stderr
            );
        }
    }
    for r in &rows {
        let name = r["key"]["name"].as_str().expect("name");
        let seen = r["value"]["count"].as_u64().expect("count");
        let delta = after.get(name).zip(before.get(name)).map(|(a, b)| a - b);
        assert!(
            delta.is_some_and(|d| d >= seen),
            "{name}: hardirqs counted {seen}, /proc/interrupts {delta:?}"
        );
    }
}

#[test]
fn tcp_tools_see_a_loopback_connection() {
    let Some(_k) = kernel_test() else { return };
    let exchange = || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(&[7u8; 10240]).expect("send");
        let mut got = vec![0u8; 10240];
        server.read_exact(&mut got).expect("recv");
        server.write_all(&[8u8; 2048]).expect("send");
        let mut back = vec![0u8; 2048];
        client.read_exact(&mut back).expect("recv");
        let cport = client.local_addr().expect("addr").port();
        drop(client);
        drop(server);
        std::thread::sleep(Duration::from_millis(300));
        (port, cport)
    };
    let mut ports = (0, 0);
    let run = run_tool(&["tcpconnect", "-p", &me().to_string()], || {
        ports = exchange()
    });
    let events = run.events("tcpconnect");
    assert!(
        events
            .iter()
            .any(|e| e["dport"].as_u64() == Some(u64::from(ports.0))
                && e["daddr"] == "127.0.0.1"
                && e["saddr"] == "127.0.0.1"
                && e["ip"] == 4
                && e["pid"].as_u64() == Some(me())),
        "connect to port {}: {events:?}",
        ports.0
    );
    let run = run_tool(&["tcpaccept", "-p", &me().to_string()], || {
        ports = exchange()
    });
    let events = run.events("tcpaccept");
    assert!(
        events
            .iter()
            .any(|e| e["lport"].as_u64() == Some(u64::from(ports.0))
                && e["rport"].as_u64() == Some(u64::from(ports.1))
                && e["raddr"] == "127.0.0.1"
                && e["laddr"] == "127.0.0.1"),
        "accept on port {}: {events:?}",
        ports.0
    );
    let run = run_tool(&["tcplife", "-p", &me().to_string()], || ports = exchange());
    let events = run.events("tcplife");
    let client = events
        .iter()
        .find(|e| {
            e["lport"].as_u64() == Some(u64::from(ports.1))
                && e["rport"].as_u64() == Some(u64::from(ports.0))
        })
        .unwrap_or_else(|| panic!("the client's connection {ports:?}: {events:?}"));
    assert_eq!(
        (client["tx_kb"].as_u64(), client["rx_kb"].as_u64()),
        (Some(10), Some(2)),
        "{client}"
    );
    assert_eq!(
        (client["laddr"].as_str(), client["raddr"].as_str()),
        (Some("127.0.0.1"), Some("127.0.0.1"))
    );
}

#[test]
fn tcpretrans_sees_syns_retransmitted_to_a_full_listener() {
    let Some(_k) = kernel_test() else { return };
    let mut port = 0;
    let run = run_tool(&["tcpretrans"], || {
        // A listener with a backlog of 0 takes one connection into its queue; the SYNs of the next
        // ones are dropped and retransmitted after a second.
        let listener = socket2_listener();
        port = listener.1;
        let mut clients = Vec::new();
        for _ in 0..3 {
            // SAFETY: a plain non-blocking TCP socket connected to our own listener, closed on drop.
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
                let addr = libc::sockaddr_in {
                    sin_family: libc::AF_INET as u16,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                libc::connect(
                    fd,
                    (&addr as *const libc::sockaddr_in).cast(),
                    std::mem::size_of_val(&addr) as u32,
                );
                clients.push(fd);
            }
        }
        std::thread::sleep(Duration::from_millis(1800));
        for fd in clients {
            // SAFETY: our own fds.
            unsafe { libc::close(fd) };
        }
        drop(listener);
    });
    let events = run.events("tcpretrans");
    assert!(
        events
            .iter()
            .any(|e| e["rport"].as_u64() == Some(u64::from(port))
                && e["state"] == "SYN_SENT"
                && e["raddr"] == "127.0.0.1"),
        "SYN retransmits to port {port}: {events:?}"
    );
}

/// A TCP listener on 127.0.0.1 with a backlog of 0: its fd (closed on drop) and port.
fn socket2_listener() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: socket/bind/listen/getsockname on a fresh fd owned by the OwnedFd returned.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut len = std::mem::size_of_val(&addr) as u32;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len);
        (
            std::os::fd::OwnedFd::from_raw_fd(fd),
            u16::from_be(addr.sin_port),
        )
    }
}

#[test]
fn bindsnoop_shows_protocol_port_address_and_result() {
    let Some(_k) = kernel_test() else { return };
    let mut ports = (0, 0);
    let run = run_tool(&["bindsnoop", "-p", &me().to_string()], || {
        let t = TcpListener::bind("127.0.0.1:0").expect("tcp");
        let u = UdpSocket::bind("[::1]:0").ok();
        ports = (
            t.local_addr().expect("a").port(),
            u.as_ref().map_or(0, |u| u.local_addr().expect("a").port()),
        );
        assert!(TcpListener::bind("10.255.255.254:5555").is_err());
    });
    let events = run.events("bindsnoop");
    assert!(
        events.iter().any(|e| e["proto"] == "TCP"
            && e["addr"] == "127.0.0.1"
            && e["port"] == 0
            && e["ret"] == 0),
        "bind of 127.0.0.1:0 (the port the caller asked for): {events:?}"
    );
    assert!(
        events.iter().any(|e| e["addr"] == "10.255.255.254"
            && e["port"] == 5555
            && e["ret"].as_i64() == Some(-99)),
        "EADDRNOTAVAIL: {events:?}"
    );
    if ports.1 != 0 {
        assert!(
            events
                .iter()
                .any(|e| e["proto"] == "UDP" && e["addr"] == "::1"),
            "{events:?}"
        );
    }
}

/// A memory cgroup limited to 32 MiB for the OOM test, removed when dropped: v2 if the memory
/// controller is there, else v1.
struct MemoryCgroup(PathBuf);

impl MemoryCgroup {
    fn new() -> Option<MemoryCgroup> {
        let name = unique("oom");
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, limit) = if std::fs::read_to_string(v2)
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
        {
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
            (Path::new("/sys/fs/cgroup").join(&name), "memory.max")
        } else if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            (
                Path::new("/sys/fs/cgroup/memory").join(&name),
                "memory.limit_in_bytes",
            )
        } else {
            return None;
        };
        std::fs::create_dir(&dir).ok()?;
        let cg = MemoryCgroup(dir);
        std::fs::write(cg.0.join(limit), "33554432").ok()?;
        let _ = std::fs::write(cg.0.join("memory.swap.max"), "0");
        Some(cg)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn oomkill_names_the_process_the_oom_killer_chose() {
    let Some(_k) = kernel_test() else { return };
    let Some(cg) = MemoryCgroup::new() else {
        require(
            false,
            "a memory cgroup (v2 memory.max or v1 memory.limit_in_bytes)",
        );
        return;
    };
    let procs = cg.0.join("cgroup.procs");
    let mut victim = 0;
    let run = run_tool(&["oomkill"], || {
        // dd's 256 MiB buffer cannot fit in 32 MiB.
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "echo $$ > {} && exec dd if=/dev/zero of=/dev/null bs=256M count=1",
                    procs.display()
                ),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        victim = child.id();
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the OOM killer's SIGKILL"
        );
    });
    let events = run.events("oomkill");
    let kill = events
        .iter()
        .find(|e| e["kpid"].as_u64() == Some(u64::from(victim)))
        .unwrap_or_else(|| panic!("no OOM kill of {victim}: {events:?}"));
    assert_eq!(
        (kill["tpid"].as_u64(), kill["tcomm"].as_str()),
        (Some(u64::from(victim)), Some("dd")),
        "{kill}"
    );
    // The victim's name and size are in the record on 6.8+ kernels.
    if kill["kcomm"] != "" {
        assert_eq!(kill["kcomm"], "dd");
        assert!(
            kill["pages"]
                .as_u64()
                .is_some_and(|p| p >= (256 << 20) / 4096),
            "{kill}"
        );
    }
}

#[test]
fn syscount_counts_a_known_number_of_calls_with_latency() {
    let Some(_k) = kernel_test() else { return };
    let run = run_tool(
        &["syscount", "-L", "-p", &me().to_string(), "-T", "0"],
        || {
            for _ in 0..1000 {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        },
    );
    let rows = run.dump("syscount", "counts");
    let getppid = rows
        .iter()
        .find(|r| r["key"].as_i64() == Some(libc::SYS_getppid))
        .unwrap_or_else(|| panic!("no getppid row: {rows:?}"));
    assert!(
        getppid["value"]["count"]
            .as_u64()
            .is_some_and(|n| n >= 1000),
        "{getppid}"
    );
    assert!(
        getppid["value"]["total_ns"].as_u64().is_some_and(|n| n > 0),
        "-L totals the time: {getppid}"
    );
    // -T 3: the three busiest only.
    let run = run_tool(&["syscount", "-T", "3"], || {
        std::thread::sleep(Duration::from_millis(300))
    });
    assert!(run.dump("syscount", "counts").len() <= 3);
}

#[test]
fn kprobe_tools_run_here_or_check_names_why_not() {
    let Some(_k) = kernel_test() else { return };
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let out = Command::new(top().join("ebpf-run"))
        // funccount last: its PATTERN would take the next word.
        .args([
            "--check",
            "capable",
            "filelife",
            "vfsstat",
            "opensnoop",
            "funccount",
        ])
        .current_dir(top())
        .output()
        .expect("check");
    let (stdout, stderr) = text(&out);
    if kprobes {
        assert!(out.status.success(), "{stdout}{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
    for tool in ["capable", "filelife", "vfsstat"] {
        assert!(
            stdout.contains(&format!("  cannot run: {tool}: needs kprobes\n")),
            "{stdout}"
        );
    }
    // funccount's uprobe program stands in for user patterns; its kprobe is what kernel ones need.
    assert!(
        stdout.contains("  can run: opensnoop, funccount\n")
            && stdout.contains(
                "  can run in part: funccount: its programs that need kprobes are skipped\n"
            ),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  kprobes: no /sys/bus/event_source/devices/kprobe: the kernel lacks CONFIG_KPROBES"), "{stdout}");
}

#[test]
fn funccount_takes_its_pattern_as_bcc_does_and_needs_one() {
    let out = Command::new(top().join("ebpf-run"))
        .args(["funccount", "-h"])
        .current_dir(top())
        .output()
        .expect("help");
    let (stdout, _) = text(&out);
    assert!(
        stdout.starts_with("usage: ebpf-run funccount [OPTIONS] PATTERN [interval [count]]"),
        "{stdout}"
    );
    assert!(stdout.contains("  PATTERN "), "{stdout}");
    // No pattern: refused before anything loads, naming what to give.
    let out = Command::new(top().join("ebpf-run"))
        .args(["funccount", "-d", "1"])
        .current_dir(top())
        .output()
        .expect("run");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("attaches where `pattern` says, and it is empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ebpf-run funccount '<pattern>'"),
        "{stderr}"
    );
}

#[test]
fn tool_help_lists_the_options_each_object_declares() {
    let out = Command::new(top().join("ebpf-run"))
        .args(["opensnoop", "-h"])
        .current_dir(top())
        .output()
        .expect("help");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "  -p PID ",
        "  -x ",
        "  -n NAME ",
        "  -d SECS ",
        "interval [count]",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    let out = Command::new(top().join("ebpf-run"))
        .args(["opensnoop", "-q"])
        .current_dir(top())
        .output()
        .expect("bad option");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("opensnoop has no option `-q`; its options: -p PID, -t TID, -u UID, -n NAME, -x, -d SECS, -i SECS"), "{stderr}");
}

/// profile's workload (tests/fixtures/spin-workload.c) built in `dir`: `spin-workload`, stripped as
/// a board's binaries are; `symbols/spin-workload`, its unstripped self; `other/spin-workload`, an
/// unstripped twin with another build id.
fn spin_workload(dir: &Path) -> PathBuf {
    let source = repo().join("tests/fixtures/spin-workload.c");
    let build = |out: &Path, extra: &[&str]| {
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        run_ok(
            Command::new("gcc")
                .args(["-O0", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o"])
                .arg(out)
                .arg(&source)
                .args(extra),
        );
    };
    let unstripped = dir.join("symbols/spin-workload");
    build(&unstripped, &[]);
    build(&dir.join("other/spin-workload"), &["-DVARIANT=1"]);
    let stripped = dir.join("spin-workload");
    run_ok(
        Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&unstripped),
    );
    stripped
}

/// The samples of folded lines ending in `suffix` (`STACK COUNT` lines).
fn folded_samples(text: &str, prefix: &str, suffix: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(stack, _)| stack.starts_with(prefix) && stack.ends_with(suffix))
        .filter_map(|(_, n)| n.parse::<u64>().ok())
        .sum()
}

#[test]
fn profile_names_user_and_kernel_frames_on_the_board() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    spin_workload(dir.path());
    // Unstripped on the board: ebpf-run names the user frames from the file itself.
    let mut spin = Command::new(dir.path().join("symbols/spin-workload"))
        .spawn()
        .expect("spin");
    let pid = spin.id().to_string();
    let out = Command::new(top().join("ebpf-run"))
        .args(["profile", "-p", &pid, "-F", "49", "-d", "3"])
        .current_dir(top())
        .output()
        .expect("profile");
    let _ = spin.kill();
    let _ = spin.wait();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("profile map counts:\n"), "{stdout}");
    // 3 s at 49 Hz of a process that never sleeps: at most 147 samples (plus a tick of slack), most
    // of them in spin_inner; the getppid loop's kernel frames named from /proc/kallsyms.
    let total = folded_samples(&stdout, "spin-workload;", "");
    let inner = folded_samples(&stdout, "spin-workload;", ";main;spin_outer;spin_inner");
    assert!(
        (30..=150).contains(&total),
        "-F 49 for 3 s: {total} samples\n{stdout}"
    );
    assert!(
        inner * 3 >= total,
        "spin_inner is most of the time: {inner} of {total}\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("spin-workload;")
            && l.contains(";getppid")
            && l.contains("getppid_[k]")),
        "the getppid loop's kernel frames: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains(';'))
            .all(|l| l.starts_with("spin-workload;")),
        "-p {pid} let others through: {stdout}"
    );
}

/// A screenshot of `svg` by headless Chromium, read back by tesseract: the text a person sees.
fn seen_in_browser(svg: &Path, height: u32) -> Option<String> {
    let browser = ["chromium-headless-shell", "chromium"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let ocr = Command::new("tesseract").arg("--version").output().is_ok();
    if !require(
        browser.is_some(),
        "headless Chromium (scripts/install-deps.sh installs it)",
    ) || !require(ocr, "tesseract (scripts/install-deps.sh installs it)")
    {
        return None;
    }
    let png = svg.with_extension("png");
    let out = Command::new(browser.expect("found"))
        .args([
            "--headless",
            "--no-sandbox",
            "--hide-scrollbars",
            "--force-device-scale-factor=2",
        ])
        .arg(format!("--window-size=1200,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", svg.display()))
        .output()
        .expect("chromium");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png_bytes = std::fs::read(&png).expect("png");
    assert!(png_bytes.starts_with(b"\x89PNG"), "not a PNG");
    let out = run_ok(Command::new("tesseract").arg(&png).arg("-"));
    Some(text(&out).0)
}

#[test]
fn profile_via_run_names_stripped_frames_from_the_build_and_draws_a_flame_graph() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    let stripped = spin_workload(dir.path());
    let mut spin = Command::new(&stripped).spawn().expect("spin");
    let pid = spin.id().to_string();
    let (svg, folded) = (
        dir.path().join("flame.svg"),
        dir.path().join("stacks.folded"),
    );
    // `other/` comes first and holds a twin with another build id: it must be passed over.
    let out = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(["run", "--target", "x86_64", "--via", "local", "--symbols"])
        .arg(dir.path().join("other"))
        .arg("--symbols")
        .arg(dir.path().join("symbols"))
        .arg("--flamegraph")
        .arg(&svg)
        .arg("--folded")
        .arg(&folded)
        .args(["profile", "--", "-p", &pid, "-F", "49", "-d", "3"])
        .output()
        .expect("run");
    let _ = spin.kill();
    let _ = spin.wait();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("other/spin-workload is not the board's")
            && stderr.contains("build id differs"),
        "{stderr}"
    );
    // The board's binary is stripped: main, spin_outer and spin_inner come from symbols/.
    let stacks = std::fs::read_to_string(&folded).expect("--folded");
    let inner = folded_samples(&stacks, "spin-workload;", ";main;spin_outer;spin_inner");
    let total = folded_samples(&stacks, "spin-workload;", "");
    assert!(
        (30..=150).contains(&total),
        "-F 49 for 3 s: {total}\n{stacks}"
    );
    assert!(inner * 3 >= total, "{inner} of {total}\n{stacks}");
    // The workload's getppid calls reach the kernel: its frames under the libc wrapper, marked
    // `_[k]` (which kernel frames a sample catches varies: entry, do_syscall_64, the syscall).
    assert!(
        stacks
            .lines()
            .any(|l| l.contains(";getppid;") && l.contains("_[k]")),
        "{stacks}"
    );
    assert!(
        stdout.contains(";main;spin_outer;spin_inner "),
        "printed as text too: {stdout}"
    );
    // The flame graph opens in a browser and shows the workload's functions.
    let doc = std::fs::read_to_string(&svg).expect("--flamegraph");
    assert!(
        doc.starts_with("<?xml") && doc.contains("<title>spin_inner ("),
        "{doc}"
    );
    let height: u32 = doc
        .split("height=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .and_then(|h| h.parse::<f64>().ok())
        .map(|h| h as u32)
        .expect("svg height");
    if let Some(seen) = seen_in_browser(&svg, height) {
        // The outer frames span the graph and their labels read back whole; the innermost,
        // spin_inner, is checked in the document above (its label, in a box the share of the
        // samples decides, OCR reads back only some of the time on this host).
        let names = ["spin_outer", "main", "spin-workload"];
        for name in names {
            assert!(
                seen.contains(name),
                "{name} not seen in the screenshot: {seen}"
            );
        }
    }
}

#[test]
fn funccount_counts_the_functions_of_a_binary_that_a_pattern_matches() {
    let Some(_k) = kernel_test() else { return };
    let dir = tempdir();
    let exe = dir.path().join("user-calls");
    run_ok(
        Command::new("gcc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(repo().join("tests/fixtures/user-calls.c")),
    );
    // BCC's PATH:PATTERN: one uprobe per matching function, each counted under its name.
    let spec = format!("{}:ep_call_*", exe.display());
    let run = run_tool(&["funccount", &spec], || {
        run_ok(&mut Command::new(&exe));
        run_ok(&mut Command::new(&exe));
    });
    let counts: Vec<(String, u64)> = run
        .dump("funccount", "ucounts")
        .iter()
        .map(|r| {
            (
                r["key"]["func"].as_str().unwrap_or_default().to_owned(),
                r["value"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [("ep_call_b".to_owned(), 14), ("ep_call_a".to_owned(), 10)],
        "two runs of 5 ep_call_a and 7 ep_call_b calls"
    );
    assert!(
        run.stderr.contains("2 functions of") && run.stderr.contains("match `ep_call_*`"),
        "{}",
        run.stderr
    );
    // A library by BCC's short name, and a pattern that matches nothing.
    let out = Command::new(top().join("ebpf-run"))
        .args(["funccount", "c:ep_no_such_function_*", "-d", "1"])
        .current_dir(top())
        .output()
        .expect("run");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no function of ")
            && stderr.contains("libc.so.6 matches `ep_no_such_function_*`"),
        "{stderr}"
    );
}
