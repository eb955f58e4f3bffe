//! The QEMU guest tier: bundles built here are booted with `ebpf-pack try` on real Debian kernels of
//! foreign architectures, and every probe must report the right facts from inside the guest.
//!
//! Guests: arm64 (built-in `qemuarm64` with the `--full-std` loader, kernel with BTF); 32-bit ARM armmp (no BTF: the target's
//! `kernel.btf` is the -dbg package's vmlinux, so the bundle ships a tailored BTF), once with the JIT off
//! and once with `net.core.bpf_jit_enable=1`; s390x (big-endian, no BTF, no JIT); and arm64 once more on
//! Debian 13's 6.12 kernel, new enough for BPF trampolines. Kernels and busybox come from
//! scripts/provision-test-kernels.sh (cached). Test probes of tests/fixtures/guest-probes are built
//! through the same pipeline and loaded in the guests as loose objects: a kprobe in every guest; a tc
//! classifier on the loopback in both arm64 guests (a netlink filter on 6.1, a tcx link on 6.12); an
//! fentry/fexit probe on 6.12. The example probe of `ebpf-pack init` runs in its own bundles on the
//! armv7 (JIT on) and s390x kernels. Guests boot in
//! parallel, each under `try --timeout`. A failed guest prints its console tail and the commands to rerun.
//! Files of the tier live in build/qemu-guests/ so that those commands still work after a failure.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use ebpf_pack::arch::Arch;
use support::*;

#[path = "qemu_guests/checks.rs"]
mod checks;
#[path = "qemu_guests/serial.rs"]
mod serial;
#[path = "qemu_guests/toolbox.rs"]
mod toolbox;
use checks::{problems, report};

/// Facts of one guest kind the tier checks against: test data, the guest ABIs' syscall numbers.
struct GuestArch {
    /// `uname -m` in the guest.
    machine: &'static str,
    /// Number of sync(2).
    sync_nr: u32,
    /// The open-family syscalls (open, creat, openat, openat2: every one reaches do_sys_openat2).
    open_nrs: &'static [u32],
}

const ARM64: GuestArch = GuestArch {
    machine: "aarch64",
    sync_nr: 81,
    open_nrs: &[56, 437],
};
const ARM: GuestArch = GuestArch {
    machine: "armv7l",
    sync_nr: 36,
    open_nrs: &[5, 8, 322, 437],
};
const S390X: GuestArch = GuestArch {
    machine: "s390x",
    sync_nr: 36,
    open_nrs: &[5, 8, 288, 437],
};

/// Seconds `try` lets a guest run; measured boots take 10-40 s here, CI runners can be slower.
const GUEST_TIMEOUT: &str = "300";

fn tier_dir() -> PathBuf {
    let dir = repo().join("build/qemu-guests");
    std::fs::create_dir_all(&dir).expect("build/qemu-guests");
    dir
}

type GuestEnv = BTreeMap<String, String>;

/// Runs scripts/provision-test-kernels.sh once per test binary; the key=value blocks it prints, by arch.
fn provisioned() -> Option<&'static BTreeMap<String, GuestEnv>> {
    static ENVS: OnceLock<Result<BTreeMap<String, GuestEnv>, String>> = OnceLock::new();
    let envs = ENVS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/provision-test-kernels.sh"))
            .args(["arm64", "arm", "s390x", "arm64-trixie"])
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        let (stdout, stderr) = text(&out);
        if !out.status.success() {
            return Err(format!(
                "scripts/provision-test-kernels.sh failed:\n{stderr}"
            ));
        }
        let mut envs: BTreeMap<String, GuestEnv> = BTreeMap::new();
        let mut current = String::new();
        for line in stdout.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k == "arch" {
                current = v.to_string();
            }
            envs.entry(current.clone())
                .or_default()
                .insert(k.to_string(), v.to_string());
        }
        Ok(envs)
    });
    match envs {
        Ok(envs) => Some(envs),
        Err(e) => {
            require(false, &format!("the test kernels ({e})"));
            None
        }
    }
}

fn has_qemu(arch: Arch) -> bool {
    let q = arch.facts().qemu;
    require(
        ebpf_pack::toolchain::find_program(q.binary).is_some(),
        &format!("{} (apt-get install {})", q.binary, q.package),
    )
}

fn env_path(env: &GuestEnv, key: &str) -> PathBuf {
    PathBuf::from(
        env.get(key)
            .unwrap_or_else(|| panic!("provisioning printed no {key}=: {env:?}")),
    )
}

/// Writes a target file into the tier's folder.
fn target_file(name: &str, arch: Arch, btf: &str) -> PathBuf {
    write_target(
        &tier_dir(),
        name,
        &format!(
            "schema: 1\nname: {name}\ndescription: QEMU guest of the test tier\narch: {arch}\nkernel:\n  version: \"6.1\"\n  btf: {btf}\n"
        ),
    )
}

/// Unpacks a bundle into the tier's folder `name/` and returns its top folder.
fn unpacked(bundle: &Path, name: &str) -> PathBuf {
    let dir = tier_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("unpack dir");
    unpack(bundle, &dir)
}

/// Builds probe `probe` of the fixture project (tests/fixtures/guest-probes) for `arch` and a target
/// kernel `kernel` with `loader` (the pipeline's own clang step and checks; no BTF: the fixtures have no
/// CO-RE) and returns its object.
/// `btf`: the fixture target's `kernel.btf` (`none`, `builtin` or a vmlinux): a probe with CO-RE
/// reads needs one to be verified, and runs against the guest bundle's BTF.
fn fixture_object(probe: &str, arch: Arch, kernel: &str, btf: &str, loader: &Path) -> PathBuf {
    let dir = tier_dir().join(format!("{probe}-{arch}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("probes")).expect("fixture project");
    // A C probe, or a bpftrace program (`.bt`) that the build compiles to one.
    let script = format!("probes/{probe}.bt");
    let source = if repo()
        .join("tests/fixtures/guest-probes")
        .join(&script)
        .exists()
    {
        script
    } else {
        format!("probes/{probe}.bpf.c")
    };
    std::fs::copy(
        repo().join("tests/fixtures/guest-probes").join(&source),
        dir.join(&source),
    )
    .unwrap_or_else(|e| panic!("copy {source}: {e}"));
    std::os::unix::fs::symlink(repo().join("probes/include"), dir.join("probes/include"))
        .expect("symlink probes/include");
    let file = write_target(
        &dir,
        &format!("{probe}-{arch}"),
        &format!(
            "schema: 1\nname: {probe}-{arch}\ndescription: test probe {probe}\narch: {arch}\nkernel:\n  version: \"{kernel}\"\n  btf: {btf}\n"
        ),
    );
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(&dir)
            .args(["build", "--bundle-name", probe, "--loader"])
            .arg(loader)
            .arg("--target-file")
            .arg(&file),
    );
    let rel = text(&out).0.split_whitespace().nth(1).map(str::to_string);
    let bundle = dir.join(rel.expect("fixture bundle path"));
    let top = unpacked(&bundle, &format!("{probe}-{arch}-unpacked"));
    top.join(format!("bpf/{probe}.bpf.o"))
}

/// One boot: the `ebpf-pack try` arguments and what the guest must show.
struct Case {
    name: &'static str,
    guest: &'static GuestArch,
    args: Vec<String>,
    /// `@@ebpf-pack: jit=` value expected.
    jit: &'static str,
    /// `btf=` value expected (the kernel's own BTF).
    btf: &'static str,
    /// The fentry/fexit fixture runs too (kernels with BPF trampolines).
    fentry: bool,
    /// The tc fixture runs on the guest's loopback, and how it must attach.
    tc: Option<TcPath>,
    /// The kernel's own version (Debian's package version, `6.1.192-3`: its release says 6.1.0).
    kernel_version: String,
}

/// How ebpf-run attaches a tc classifier on a kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TcPath {
    /// A tcx link (kernel 6.6 and later).
    Tcx,
    /// A netlink filter on a clsact qdisc (kernels before 6.6).
    Netlink,
}

/// What a boot printed.
struct Outcome {
    ok: bool,
    output: String,
    command: String,
    secs: f64,
}

fn boot(case: &Case) -> Outcome {
    let mut cmd = ebpf_pack();
    cmd.arg("-C").arg(repo()).arg("try").args(&case.args);
    let command = format!(
        "{} -C {} try {}",
        env!("CARGO_BIN_EXE_ebpf-pack"),
        repo().display(),
        case.args.join(" ")
    );
    let start = Instant::now();
    let out = cmd.output().expect("run ebpf-pack try");
    let (stdout, stderr) = text(&out);
    Outcome {
        ok: out.status.success(),
        output: format!("{stdout}{stderr}"),
        command,
        secs: start.elapsed().as_secs_f64(),
    }
}

#[test]
fn probes_trace_on_arm64_armv7_and_s390x_kernels() {
    let Some(envs) = provisioned() else {
        return;
    };
    if ![Arch::Arm64, Arch::Arm, Arch::S390x]
        .into_iter()
        .all(has_qemu)
    {
        return;
    }
    let env = |arch: &str| {
        envs.get(arch)
            .unwrap_or_else(|| panic!("no {arch} guest: {envs:?}"))
    };
    let (arm64, arm, s390x, arm64_612) =
        (env("arm64"), env("arm"), env("s390x"), env("arm64-trixie"));

    // Bundles, then kprobe objects built with each bundle's loader (sequential: builds share the CPUs).
    // The arm64 guest runs the `--full-std` loader (rustup's prebuilt std), the others the default one
    // (std rebuilt, immediate-abort panics), so both kinds of loader are proven on a real kernel.
    let arm64_bundle = full_std_bundle("qemuarm64");
    let armv7_file = target_file(
        "guest-armv7",
        Arch::Arm,
        &env_path(arm, "vmlinux").display().to_string(),
    );
    let s390x_file = target_file(
        "guest-s390x",
        Arch::S390x,
        &env_path(s390x, "vmlinux").display().to_string(),
    );
    let (armv7_bundle, s390x_bundle) = {
        let _lock = build_lock();
        (
            built_bundle(&armv7_file, &[]).0,
            built_bundle(&s390x_file, &[]).0,
        )
    };
    let mut kprobes = HashMap::new();
    let mut alternatives = HashMap::new();
    let mut oneliners = HashMap::new();
    let (mut fentry, mut tcount) = (None, None);
    for (arch, bundle) in [
        (Arch::Arm64, &arm64_bundle),
        (Arch::Arm, &armv7_bundle),
        (Arch::S390x, &s390x_bundle),
    ] {
        let loader = unpacked(bundle, &format!("{arch}-bundle")).join("ebpf-run");
        kprobes.insert(arch, fixture_object("kcount", arch, "6.1", "none", &loader));
        alternatives.insert(arch, fixture_object("acount", arch, "6.1", "none", &loader));
        // The one-liner's kretprobe reads retval with CO-RE (each kernel's register size).
        let btf = match arch {
            Arch::Arm64 => "builtin".to_string(),
            Arch::Arm => env_path(arm, "vmlinux").display().to_string(),
            _ => env_path(s390x, "vmlinux").display().to_string(),
        };
        oneliners.insert(arch, fixture_object("btopens", arch, "6.1", &btf, &loader));
        if arch == Arch::Arm64 {
            fentry = Some(fixture_object("fcount", arch, "6.12", "none", &loader));
            tcount = Some(fixture_object("tcount", arch, "6.1", "none", &loader));
        }
    }
    let fentry = fentry.expect("arm64 fentry fixture");
    let tcount = tcount.expect("arm64 tc fixture");

    // `extra`: objects besides the arch's kprobe fixture, loaded from the guest's /extra/.
    let guest_args = |env: &GuestEnv, arch: Arch, how: &[String], jit: &str, extra: &[&Path]| {
        let mut args: Vec<String> = how.to_vec();
        args.extend([
            "--kernel".into(),
            env_path(env, "kernel").display().to_string(),
            "--busybox".into(),
            env_path(env, "busybox").display().to_string(),
            "--timeout".into(),
            GUEST_TIMEOUT.into(),
            "--jit".into(),
            jit.into(),
            "--workload".into(),
            repo()
                .join("tests/fixtures/guest-workload.sh")
                .display()
                .to_string(),
        ]);
        // Modules the provisioning extracted for this guest (the tc probe's qdisc and classifier).
        for module in env
            .get("modules")
            .into_iter()
            .flat_map(|m| m.split_whitespace())
        {
            args.extend(["--module".into(), module.to_string()]);
        }
        let objects: Vec<&Path> = [
            kprobes[&arch].as_path(),
            alternatives[&arch].as_path(),
            oneliners[&arch].as_path(),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
        for object in &objects {
            args.extend(["--add".into(), object.display().to_string()]);
        }
        args.extend(
            // syscount: every syscall, not the default top 10 (the checks need sync and the opens).
            ["--", "opensnoop", "execsnoop", "syscount", "-T", "0"]
                .into_iter()
                .chain(toolbox::TOOLS.iter().copied())
                .map(String::from),
        );
        if extra.contains(&tcount.as_path()) {
            args.extend(["--iface".into(), "lo".into()]);
        }
        for object in &objects {
            let name = object.file_name().expect("object name").to_string_lossy();
            args.push(format!("/extra/{name}"));
        }
        args
    };
    let bundle_arg = |b: &Path| vec!["--bundle".to_string(), b.display().to_string()];
    let cases = [
        Case {
            name: "arm64",
            guest: &ARM64,
            args: guest_args(
                arm64,
                Arch::Arm64,
                &bundle_arg(&arm64_bundle),
                "default",
                &[&tcount],
            ),
            jit: "1",
            btf: "yes",
            fentry: false,
            tc: Some(TcPath::Netlink),
            kernel_version: arm64["kernel_version"].clone(),
        },
        // The same bundle (its BTF from Debian 12's 6.1 kernel) on 6.12: CO-RE across kernel versions,
        // fentry/fexit attached through BPF trampolines, tc through a tcx link (6.1: netlink).
        Case {
            name: "arm64-6.12",
            guest: &ARM64,
            args: guest_args(
                arm64_612,
                Arch::Arm64,
                &bundle_arg(&arm64_bundle),
                "default",
                &[&fentry, &tcount],
            ),
            jit: "1",
            btf: "yes",
            fentry: true,
            tc: Some(TcPath::Tcx),
            kernel_version: arm64_612["kernel_version"].clone(),
        },
        Case {
            name: "armv7-jit-off",
            guest: &ARM,
            args: guest_args(arm, Arch::Arm, &bundle_arg(&armv7_bundle), "off", &[]),
            jit: "0",
            btf: "no",
            fentry: false,
            tc: None,
            kernel_version: arm["kernel_version"].clone(),
        },
        Case {
            name: "armv7-jit-on",
            guest: &ARM,
            args: guest_args(arm, Arch::Arm, &bundle_arg(&armv7_bundle), "on", &[]),
            jit: "1",
            btf: "no",
            fentry: false,
            tc: None,
            kernel_version: arm["kernel_version"].clone(),
        },
        // Through try's own build (up to date by now): the path a user takes.
        Case {
            name: "s390x",
            guest: &S390X,
            args: guest_args(
                s390x,
                Arch::S390x,
                &[
                    "--target-file".to_string(),
                    s390x_file.display().to_string(),
                ],
                "default",
                &[],
            ),
            jit: "none",
            btf: "no",
            fentry: false,
            tc: None,
            kernel_version: s390x["kernel_version"].clone(),
        },
    ];
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.iter().map(|c| s.spawn(|| boot(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("guest thread"))
            .collect()
    });
    let mut failures = Vec::new();
    for (case, out) in cases.iter().zip(&outcomes) {
        let bad = problems(case, out);
        // try reports "(N s boot to result)": QEMU start to the loader's exit status.
        let boot = out
            .output
            .lines()
            .find_map(|l| {
                l.split_once("in the guest (")?
                    .1
                    .split_once(" s boot to result")
            })
            .map_or("?", |(secs, _)| secs);
        eprintln!(
            "guest {}: {boot} s boot to result, {:.1} s with try's build check, {}",
            case.name,
            out.secs,
            if bad.is_empty() { "ok" } else { "FAILED" }
        );
        if !bad.is_empty() {
            failures.push(report(case, out, &bad));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The example probe `ebpf-pack init` writes, in a project outside the repository's probes, on the
/// 32-bit ARM kernel with its JIT on (no atomics allowed) and on the big-endian s390x kernel, both
/// without kernel BTF (the bundles ship BTF tailored to it): the new process of the workload's
/// `sh -c` is reported with the workload shell as its parent, both pids as the workload prints them.
#[test]
fn init_example_probe_reports_forks_on_armv7_with_jit_and_on_big_endian_s390x() {
    let Some(envs) = provisioned() else {
        return;
    };
    if ![Arch::Arm, Arch::S390x].into_iter().all(has_qemu) {
        return;
    }
    let project = tier_dir().join("init-project");
    let _ = std::fs::remove_dir_all(&project);
    run_ok(
        ebpf_pack()
            .arg("init")
            .arg(&project)
            .args(["--name", "hello", "--ci", "none"]),
    );
    std::fs::create_dir_all(project.join("targets")).expect("targets/");
    let guests = [("arm", Arch::Arm, "on"), ("s390x", Arch::S390x, "default")];
    let mut bundles = Vec::new();
    for (key, arch, _) in guests {
        let env = envs
            .get(key)
            .unwrap_or_else(|| panic!("no {key} guest: {envs:?}"));
        let name = format!("hello-{arch}");
        write_target(
            &project.join("targets"),
            &name,
            &format!(
                "schema: 1\nname: {name}\ndescription: example probe in the guest\narch: {arch}\nkernel:\n  version: \"6.1\"\n  btf: {}\n",
                env_path(env, "vmlinux").display()
            ),
        );
        let out = run_ok(
            ebpf_pack()
                .arg("-C")
                .arg(&project)
                .args(["build", "--target", &name]),
        );
        let rel = text(&out).0.split_whitespace().nth(1).map(str::to_string);
        bundles.push(project.join(rel.expect("bundle path")));
    }
    let outputs: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = guests
            .iter()
            .zip(&bundles)
            .map(|((key, _, jit), bundle)| {
                let env = &envs[*key];
                let project = &project;
                s.spawn(move || {
                    let mut cmd = ebpf_pack();
                    // In the project, so the guest's files go to its build/, not the crate's.
                    cmd.arg("-C")
                        .arg(project)
                        .arg("try")
                        .arg("--bundle")
                        .arg(bundle)
                        .arg("--kernel")
                        .arg(env_path(env, "kernel"))
                        .arg("--busybox")
                        .arg(env_path(env, "busybox"))
                        .args(["--timeout", GUEST_TIMEOUT, "--jit", jit, "--workload"])
                        .arg(repo().join("tests/fixtures/guest-workload.sh"))
                        .args(["--", "hello"]);
                    let line = format!("{cmd:?}");
                    let out = cmd.output().expect("run ebpf-pack try");
                    let (o, e) = text(&out);
                    assert!(out.status.success(), "{line}: {}\n{o}\n{e}", out.status);
                    (line, format!("{o}{e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("guest thread"))
            .collect()
    });
    for (command, output) in &outputs {
        let marker = |what: &str| {
            output
                .lines()
                .find_map(|l| {
                    l.split_once(&format!("@@ebpf-pack: workload {what} pid="))?
                        .1
                        .split(' ')
                        .next()
                })
                .map(str::to_string)
                .unwrap_or_else(|| panic!("{command}: no `workload {what}` line:\n{output}"))
        };
        let (shell, child) = (marker("open"), marker("exec"));
        let wanted = format!("hello ppid={shell} pid={child} uid=0 comm=");
        // ebpf-run aligns its columns as values grow (`ppid=99  pid=103` after a `ppid=100`): compare
        // the words.
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let seen = output.lines().find(|l| words(l).contains(&wanted));
        assert!(
            seen.is_some(),
            "{command}: no `{wanted}...` line:\n{output}"
        );
        eprintln!("guest line: {}", seen.unwrap_or_default().trim());
    }
}

#[test]
fn try_refuses_a_loader_of_the_wrong_arch_before_booting() {
    let x86_top = unpacked(&bundle("x86_64"), "x86_64-bundle");
    let file = write_target(
        &tier_dir(),
        "guest-wrong-loader",
        "schema: 1\nname: guest-wrong-loader\ndescription: arm64 board handed an x86_64 loader\narch: arm64\nkernel:\n  version: \"6.1\"\n  btf: builtin\nprobes: [opensnoop]\n",
    );
    let out = ebpf_pack()
        .arg("-C")
        .arg(repo())
        .args(["try", "--kernel", "/nonexistent/vmlinuz", "--target-file"])
        .arg(&file)
        .arg("--loader")
        .arg(x86_top.join("ebpf-run"))
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("loader is 64-bit x86-64, target arch `arm64` needs 64-bit AArch64"),
        "{stderr}"
    );
    assert!(!stderr.contains("booting"), "nothing may boot: {stderr}");
}

#[test]
fn try_refuses_a_module_of_another_arch_or_kind_before_booting() {
    let Some(envs) = provisioned() else {
        return;
    };
    let arm64 = &envs["arm64"];
    // An x86-64 relocatable object named like a module, and an executable passed as one.
    let host_ko = tier_dir().join("host.ko");
    let source = tier_dir().join("host-module.c");
    std::fs::write(&source, "int ebpf_pack_test_symbol;\n").expect("write C");
    run_ok(
        Command::new("gcc")
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(&host_ko),
    );
    let busybox_ko = tier_dir().join("busybox.ko");
    std::fs::copy(env_path(arm64, "busybox"), &busybox_ko).expect("copy busybox");
    for (module, want) in [
        (
            &host_ko,
            "module is 64-bit little-endian x86-64, target arch `arm64` needs 64-bit little-endian AArch64",
        ),
        (
            &busybox_ko,
            "is not a kernel module (not a relocatable ELF)",
        ),
    ] {
        let out = ebpf_pack()
            .args(["try", "--bundle"])
            .arg(bundle("qemuarm64"))
            .arg("--kernel")
            .arg(env_path(arm64, "kernel"))
            .arg("--busybox")
            .arg(env_path(arm64, "busybox"))
            .arg("--module")
            .arg(module)
            .output()
            .expect("run");
        let (stdout, stderr) = text(&out);
        // Exit 2: bad input, as for any unusable file handed to try.
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(stderr.contains(want), "want {want:?} in {stderr}");
        assert!(!stderr.contains("booting"), "nothing may boot: {stderr}");
    }
}

#[test]
fn try_refuses_an_object_of_the_wrong_endianness_before_booting() {
    use ebpf_pack::bundle::{BundleFile, file_entries, verify_bundle, write_bundle};
    // The arm64 bundle with opensnoop compiled big-endian, checksums made consistent again: only the
    // object check can catch it.
    let good = bundle("qemuarm64");
    let verified = verify_bundle("b", &std::fs::read(&good).expect("bundle"), None).expect("good");
    let obj = tier_dir().join("opensnoop.bpfeb.o");
    run_ok(
        Command::new("clang-19")
            .current_dir(repo())
            .args([
                "-g",
                "-O2",
                "-target",
                "bpfeb",
                "-D__TARGET_ARCH_arm64",
                "-Iprobes/include",
                "-Iprobes/include/arm64",
                "-c",
                "probes/opensnoop.bpf.c",
                "-o",
            ])
            .arg(&obj),
    );
    let files: Vec<BundleFile> = verified
        .files
        .iter()
        .filter(|(p, _)| !matches!(p.as_str(), "manifest.json" | "SHA256SUMS"))
        .map(|(path, data)| BundleFile {
            path: path.clone(),
            data: if path == "bpf/opensnoop.bpf.o" {
                std::fs::read(&obj).expect("object")
            } else {
                data.clone()
            },
        })
        .collect();
    let mut manifest = verified.manifest.clone();
    manifest.files = file_entries(&files);
    let bad = tier_dir().join("wrong-endian.tar.gz");
    let mut out = Vec::new();
    write_bundle(&mut out, &verified.stem, &manifest, &files, 0).expect("write");
    std::fs::write(&bad, out).expect("write bundle");
    let out = ebpf_pack()
        .args(["try", "--kernel", "/nonexistent/vmlinuz", "--bundle"])
        .arg(&bad)
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("refusing to boot"), "{stderr}");
    assert!(
        stderr.contains("object is big-endian BPF, target arch `arm64` is little-endian"),
        "{stderr}"
    );
    assert!(!stderr.contains("booting"), "nothing may boot: {stderr}");
}
