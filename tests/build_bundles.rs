//! Real builds of the x86_64, rpi4 and beaglebone bundles: clang, the cross cargo builds, verification
//! and the tarball, then the ELF facts of what landed in dist/.

mod support;

use std::path::Path;
use std::process::Command;

use ebpf_pack::arch::{Arch, em};
use ebpf_pack::bundle::verify_bundle;
use ebpf_pack::verify::verify_loader;
use ebpf_pack_manifest::{BtfMode, Endian};
use support::*;

/// The tools of probes/ (every `NAME.bpf.c`), sorted: what the repository's bundles hold.
fn toolbox() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("probes"))
        .expect("probes/")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".bpf.c")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

fn check_bundle(target: &str, arch: Arch, machine: u16, bits: u8, file_says: &[&str]) {
    let path = bundle(target);
    let bytes = std::fs::read(&path).expect("bundle");
    let v = verify_bundle("bundle", &bytes, Some(target)).unwrap_or_else(|e| panic!("{e}"));
    let m = &v.manifest;
    assert_eq!(m.target.name, target);
    assert_eq!(m.target.arch, arch.facts().name);
    assert_eq!(m.target.bits, bits);
    assert_eq!(m.target.endian, Endian::Little);
    assert_eq!(m.target.btf, BtfMode::Kernel);
    assert_eq!(
        m.probes.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        toolbox(),
        "every tool of probes/, sorted"
    );
    assert!(
        m.tools.contains_key("clang") && m.tools.contains_key("rustc"),
        "{:?}",
        m.tools
    );
    let loader = &v.files["ebpf-run"];
    let facts = verify_loader("ebpf-run", loader, arch).expect("loader verifies");
    assert_eq!((facts.machine, facts.bits), (machine, bits));

    // An independent opinion on the same bytes: file(1) on the unpacked loader.
    let dir = tempdir();
    let top = unpack(&path, dir.path());
    assert_eq!(
        top.file_name().and_then(|n| n.to_str()),
        Some(v.stem.as_str())
    );
    let out = run_ok(Command::new("file").arg("-b").arg(top.join("ebpf-run")));
    let described = String::from_utf8_lossy(&out.stdout).to_string();
    for word in file_says {
        assert!(
            described.contains(word),
            "file(1) says {described:?}, expected {word:?}"
        );
    }
    assert!(
        described.contains("statically linked") || described.contains("static-pie linked"),
        "{described}"
    );
    // The .sha256 beside the bundle is what sha256sum -c accepts.
    run_ok(
        Command::new("sha256sum")
            .arg("-c")
            .arg(format!("{}.sha256", path.display()))
            .current_dir(path.parent().expect("dist")),
    );
    // SHA256SUMS inside is what sha256sum -c accepts on the board.
    run_ok(
        Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&top),
    );
}

#[test]
fn x86_64_bundle_is_static_x86_64_with_three_probes() {
    check_bundle("x86_64", Arch::X86_64, em::X86_64, 64, &["x86-64"]);
}

#[test]
fn rpi4_bundle_is_static_aarch64() {
    check_bundle("rpi4", Arch::Arm64, em::AARCH64, 64, &["ARM aarch64"]);
}

#[test]
fn beaglebone_bundle_is_static_armv7_hard_float() {
    check_bundle(
        "beaglebone",
        Arch::Arm,
        em::ARM,
        32,
        &["32-bit", "ARM", "EABI5"],
    );
}

#[test]
fn unchanged_inputs_are_not_rebuilt() {
    let first = bundle("x86_64");
    let _rebuilding = build_lock();
    let before = std::fs::read(&first).expect("bundle");
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["build", "--target", "x86_64"]),
    );
    let (_, stderr) = text(&out);
    for probe in toolbox() {
        assert!(
            stderr.contains(&format!("[x86_64] compile-{probe}: up to date")),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read(&first).expect("bundle"),
        before,
        "a no-change rebuild must give the same bytes"
    );
}

#[test]
fn dry_run_prints_commands_and_builds_nothing() {
    let out = run_ok(ebpf_pack().arg("-C").arg(repo()).args([
        "build",
        "--target",
        "beaglebone",
        "--target",
        "rpi4",
        "--dry-run",
    ]));
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("# ebpf-pack build --target beaglebone (plan)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-target bpfel -mcpu=v2 -D__TARGET_ARCH_arm "),
        "{stdout}"
    );
    assert!(
        stdout.contains("--target aarch64-unknown-linux-musl"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld"),
        "{stdout}"
    );
}

#[test]
fn targets_lists_builtin_boards_with_facts() {
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(repo())
            .args(["targets", "--json"]),
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for want in [
        "x86_64",
        "rpi4",
        "beaglebone",
        "qemuarm64",
        "qemuarm",
        "riscv64",
        "s390x",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let bb = list
        .as_array()
        .expect("array")
        .iter()
        .find(|t| t["name"] == "beaglebone")
        .expect("beaglebone");
    assert_eq!(bb["bits"], 32);
    assert_eq!(bb["bpf_target"], "bpfel");
    assert_eq!(bb["triple"], "armv7-unknown-linux-gnueabihf");
}

#[test]
fn bad_target_file_fails_before_building_with_its_location() {
    let dir = tempdir();
    let file = write_target(
        dir.path(),
        "board",
        "schema: 1\nname: board\ndescription: d\narch: arm\nkernel:\n  version: \"6.1\"\n  btf: builtin\n  bpf-jit: yes\n",
    );
    let out = build_target_file(&file, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("board.yaml:8:3: unknown field `bpf-jit`"),
        "{stderr}"
    );
}

#[test]
fn missing_cross_linker_is_named_with_its_install_command() {
    let dir = tempdir();
    let file = write_target(
        dir.path(),
        "odd",
        "schema: 1\nname: odd\ndescription: d\narch: arm\nlibc: glibc\nlinker: no-such-linker-gcc\nkernel:\n  version: \"6.1\"\n  btf: builtin\n",
    );
    let out = build_target_file(&file, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("no-such-linker-gcc (needed for target odd: linking the loader)"),
        "{stderr}"
    );
    assert!(!repo().join("dist/ebpf-pack-0.1.0-odd.tar.gz").exists());
}

#[test]
fn help_text_is_stable() {
    let out = run_ok(ebpf_pack().arg("--help"));
    insta::assert_snapshot!("help", text(&out).0);
    let out = run_ok(ebpf_pack().args(["build", "--help"]));
    insta::assert_snapshot!("build_help", text(&out).0);
}

/// The stripped static aarch64-musl loader must stay within its flash budget of 640 KiB
/// (docs/PERFORMANCE.md), which the default build (std rebuilt, panics abort at once) meets; the
/// `--full-std` build with the stable toolchain's prebuilt std is held to 800 KiB, a tripwire for
/// growth (768 KiB until libbpf-style loading, PERFORMANCE.md). The `--full-std` bundle verifies like
/// any other.
#[test]
fn aarch64_loader_fits_its_size_budget() {
    const BUDGET: usize = 640 * 1024;
    // A tripwire for growth, not the budget (docs/PERFORMANCE.md: 830,912 with .kconfig externs).
    const FULL_STD_BUDGET: usize = 848 * 1024;
    let loader_size = |bundle: &Path| {
        let files = ebpf_pack::bundle::read_bundle("rpi4", &std::fs::read(bundle).expect("bundle"))
            .expect("bundle reads")
            .1;
        files["ebpf-run"].len()
    };
    let size = loader_size(&bundle("rpi4"));
    assert!(
        size <= BUDGET,
        "aarch64-musl ebpf-run is {size} bytes, budget {BUDGET}"
    );
    let full = full_std_bundle("rpi4");
    run_ok(
        ebpf_pack()
            .arg("verify")
            .arg(&full)
            .args(["--target", "rpi4"]),
    );
    let full_size = loader_size(&full);
    remove_bundle(&full);
    assert!(
        full_size <= FULL_STD_BUDGET,
        "aarch64-musl ebpf-run --full-std is {full_size} bytes, budget {FULL_STD_BUDGET}"
    );
    assert!(size < full_size, "default {size} vs --full-std {full_size}");
}

/// The route for kernels built without BTF: `kernel.btf` names an ELF with DWARF only; pahole makes BTF,
/// bpftool makes the target's own vmlinux.h, and the bundle ships BTF tailored to its objects. The
/// "kernel" here is an object whose DWARF describes the kernel types the probes use (from the committed
/// x86_64 vmlinux.h); a real kernel's DWARF route is proven on foreign kernels in QEMU.
#[test]
fn dwarf_only_vmlinux_gives_a_bundle_with_tailored_btf() {
    let dir = tempdir();
    let src = dir.path().join("types.c");
    std::fs::write(&src, "#include \"vmlinux.h\"\n").expect("write");
    let vmlinux = dir.path().join("vmlinux");
    run_ok(
        Command::new("clang-19")
            // Every type of the header, used or not (its anonymous enums too: BPF_ANY, true):
            // DWARF as complete as a kernel's own.
            .args([
                "-g",
                "-fno-eliminate-unused-debug-types",
                "-c",
                "-target",
                "x86_64-linux-gnu",
            ])
            .arg("-I")
            .arg(repo().join("probes/include/x86_64"))
            .arg(&src)
            .arg("-o")
            .arg(&vmlinux),
    );
    let file = write_target(
        dir.path(),
        "dwarf-board",
        "schema: 1\nname: dwarf-board\ndescription: x86_64 kernel without BTF\narch: x86_64\nkernel:\n  version: \"6.1\"\n  btf: vmlinux\nprobes: [execsnoop, syscount]\n",
    );
    // A clean build: every step must really run.
    let _ = std::fs::remove_dir_all(repo().join("build/dwarf-board"));
    let (path, stderr) = built_bundle(&file, &["-v"]);
    assert!(
        stderr.contains("+ pahole --btf_encode_detached="),
        "{stderr}"
    );
    assert!(stderr.contains("+ bpftool gen min_core_btf"), "{stderr}");
    let v = verify_bundle(
        "bundle",
        &std::fs::read(&path).expect("bundle"),
        Some("dwarf-board"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.manifest.target.btf, BtfMode::Bundled);
    assert!(
        v.manifest.tools.contains_key("pahole"),
        "{:?}",
        v.manifest.tools
    );
    let btf = &v.files["btf/vmlinux.btf"];
    assert!(btf.len() < 16 * 1024, "tailored BTF is {} bytes", btf.len());
    // The generated vmlinux.h came from the DWARF, not from the committed one.
    let generated = std::fs::read_to_string(repo().join("build/dwarf-board/include/vmlinux.h"))
        .expect("vmlinux.h");
    assert!(
        generated.contains("struct trace_event_raw_sched_process_exec {"),
        "generated header lacks the probe's types"
    );
    remove_bundle(&path);
}

/// Big-endian boards without kernel BTF: bpftool cannot read bpfeb objects here, so the pipeline tailors
/// against little-endian twins and converts the result. The "kernel" BTF is this host's, converted to
/// big-endian; the shipped BTF must be big-endian and describe what the objects relocate against.
#[test]
fn big_endian_board_gets_big_endian_tailored_btf() {
    let host_btf = Path::new("/sys/kernel/btf/vmlinux");
    if !require(host_btf.exists(), "kernel BTF (/sys/kernel/btf/vmlinux)") {
        return;
    }
    let dir = tempdir();
    let be =
        ebpf_pack_object::btf::to_byte_order(&std::fs::read(host_btf).expect("read BTF"), true)
            .expect("convert");
    std::fs::write(dir.path().join("vmlinux-be.btf"), be).expect("write");
    let file = write_target(
        dir.path(),
        "be-board",
        "schema: 1\nname: be-board\ndescription: big-endian board without BTF\narch: s390x\nkernel:\n  version: \"6.1\"\n  btf: vmlinux-be.btf\nprobes: [execsnoop]\n",
    );
    let (path, _) = built_bundle(&file, &[]);
    let v = verify_bundle(
        "bundle",
        &std::fs::read(&path).expect("bundle"),
        Some("be-board"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.manifest.target.endian, Endian::Big);
    let btf =
        ebpf_pack_object::btf::Btf::parse(&v.files["btf/vmlinux.btf"]).expect("shipped BTF parses");
    assert!(
        btf.is_big_endian(),
        "shipped BTF must be in the board's byte order"
    );
    assert!(
        btf.type_count() > 2,
        "tailored BTF holds the relocated types"
    );
    remove_bundle(&path);
}

/// `verify` says which tools the bundle's lowest kernel cannot run, and which kernel options the
/// others need: a board on 5.4 has no bpf_probe_read_kernel (5.5), which every tool here calls.
#[test]
fn verify_names_the_tools_an_old_kernel_cannot_run() {
    let dir = tempdir();
    let file = write_target(
        dir.path(),
        "old-board",
        "schema: 1\nname: old-board\ndescription: x86_64 board on 5.4\narch: x86_64\nkernel:\n  version: \"5.4\"\n  btf: builtin\nprobes: [opensnoop, cpudist]\n",
    );
    let (old, _) = built_bundle(&file, &[]);
    let out = run_ok(ebpf_pack().arg("verify").arg(&old));
    remove_bundle(&old);
    let (stdout, _) = text(&out);
    for tool in ["opensnoop", "cpudist"] {
        assert!(
            stdout.contains(&format!(
                "  cannot run on kernel 5.4: {tool}: needs kernel 5.5 (bpf_probe_read_kernel"
            )),
            "{stdout}"
        );
    }
    let out = run_ok(ebpf_pack().arg("verify").arg(bundle("x86_64")));
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("  needs CONFIG_FTRACE_SYSCALLS in the board's kernel: ")
            && stdout.contains("  needs CONFIG_KPROBES + CONFIG_KPROBE_EVENTS in the board's kernel: capable, filelife, funccount, vfsstat\n")
            && !stdout.contains("cannot run"),
        "{stdout}"
    );
}

/// `ebpf-pack tools`: every tool of probes/ with what its compiled object needs, and the boards.
#[test]
fn tools_lists_the_toolbox_with_what_each_needs() {
    let _lock = build_lock();
    let out = run_ok(ebpf_pack().arg("-C").arg(repo()).args(["tools", "--json"]));
    let (stdout, _) = text(&out);
    let tools: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<String> = tools
        .iter()
        .map(|t| t["tool"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, toolbox());
    let tool = |name: &str| tools.iter().find(|t| t["tool"] == name).expect("listed");
    let capable = tool("capable");
    assert_eq!(
        capable["configs"],
        serde_json::json!(["KPROBES", "KPROBE_EVENTS"])
    );
    assert_eq!(capable["hooks"][0]["kind"], "kprobe");
    assert_eq!(
        capable["boards"]["rpi4"]["if_config"],
        serde_json::json!(["KPROBES", "KPROBE_EVENTS"])
    );
    let funccount = tool("funccount");
    assert_eq!(
        (
            funccount["min_kernel"].as_str(),
            funccount["min_kernel_because"].as_str()
        ),
        (Some("5.15"), Some("bpf_get_func_ip"))
    );
    assert!(
        funccount["options"]
            .as_array()
            .expect("options")
            .iter()
            .any(|o| o["flag"] == "PATTERN")
    );
    let opensnoop = tool("opensnoop");
    assert!(
        opensnoop["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("every file open")),
        "{opensnoop}"
    );
    assert_eq!(opensnoop["btf"], true);
    for flag in ["-p", "-t", "-u", "-n", "-x"] {
        assert!(
            opensnoop["options"]
                .as_array()
                .expect("options")
                .iter()
                .any(|o| o["flag"] == flag),
            "{flag}"
        );
    }
    // The text form ends with the sets a probes: or tools: list may name.
    let out = run_ok(ebpf_pack().arg("-C").arg(repo()).arg("tools"));
    let (text_out, _) = text(&out);
    assert!(
        text_out.contains("capable — every capability check the kernel makes"),
        "{text_out}"
    );
    assert!(
        text_out.contains(
            "sets for `probes:` and `tools:`: @all @process @files @disk @sched @net @syscalls"
        ),
        "{text_out}"
    );
}

/// A project of its own takes tools of the toolbox with `tools:`, a target picks them with sets, and
/// an unknown set or tool is refused at its line.
#[test]
fn projects_take_tools_and_targets_pick_sets() {
    let dir = tempdir();
    run_ok(
        ebpf_pack()
            .arg("init")
            .arg(dir.path())
            .args(["--name", "kit", "--ci", "none"]),
    );
    let project = dir.path().join("ebpf-pack.yaml");
    let mut yaml = std::fs::read_to_string(&project).expect("project file");
    yaml.push_str("tools: [\"@net\", biolatency]\n");
    std::fs::write(&project, &yaml).expect("write");
    std::fs::create_dir_all(dir.path().join("targets")).expect("targets/");
    write_target(
        &dir.path().join("targets"),
        "gw",
        "schema: 1\nname: gw\ndescription: a gateway\narch: arm64\nlibc: musl\nlinker: rust-lld\nkernel:\n  version: \"6.1\"\n  btf: builtin\nprobes: [\"@net\", hello]\n",
    );
    let out = run_ok(ebpf_pack().arg("-C").arg(dir.path()).args([
        "build",
        "--target",
        "gw",
        "--dry-run",
    ]));
    let (plan, _) = text(&out);
    let mut compiled: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.ends_with(".bpf.c")))
        .filter_map(|w| w.rsplit('/').next()?.strip_suffix(".bpf.c"))
        .collect();
    compiled.sort();
    compiled.dedup();
    assert_eq!(
        compiled,
        [
            "bindsnoop",
            "hello",
            "tcpaccept",
            "tcpconnect",
            "tcplife",
            "tcpretrans"
        ],
        "{plan}"
    );
    assert!(
        plan.contains("-fdebug-prefix-map=") && plan.contains("=/ebpf-pack/tools"),
        "tools compile under a fixed path: {plan}"
    );

    std::fs::write(
        &project,
        yaml.replace("\"@net\", biolatency", "\"@nope\", nosuchtool"),
    )
    .expect("write");
    let out = ebpf_pack()
        .arg("-C")
        .arg(dir.path())
        .args(["build", "--target", "gw", "--dry-run"])
        .output()
        .expect("run");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tools: `@nope` is no set of tools"),
        "{stderr}"
    );
}
