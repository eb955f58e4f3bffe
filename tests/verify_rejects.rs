//! `ebpf-pack verify` and the ELF checks refuse wrong inputs with a precise reason: a loader of the
//! wrong arch, a big-endian object for a little-endian board, a dynamically linked loader, a truncated
//! file, a corrupted tarball, a checksum mismatch, unsafe paths and links.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use ebpf_pack::arch::{Arch, KernelVersion};
use ebpf_pack::verify::{ObjectRules, verify_loader, verify_object};
use support::*;

/// Files of a bundle, read with the tar crate: (path inside, content, is_file).
fn entries(bundle: &Path) -> Vec<(String, Vec<u8>, tar::EntryType, u32)> {
    let bytes = std::fs::read(bundle).expect("bundle");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut out = Vec::new();
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        let kind = e.header().entry_type();
        let mode = e.header().mode().expect("mode");
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((path, data, kind, mode));
    }
    out
}

/// Writes a tarball of `entries` (same layout rules as bundles, but nothing is checked).
fn repack(entries: &[(String, Vec<u8>, tar::EntryType, u32)], out: &Path) {
    let file = std::fs::File::create(out).expect("create");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, data, kind, mode) in entries {
        let mut h = tar::Header::new_old();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(if *kind == tar::EntryType::Symlink {
            0
        } else {
            data.len() as u64
        });
        // Names are written raw: the tar crate itself refuses `..`, which is what these tests need.
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").expect("link name");
        }
        h.set_cksum();
        tar.append(&h, &data[..]).expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gz");
}

fn verify_fails(bundle: &Path, extra: &[&str]) -> String {
    let out = ebpf_pack()
        .arg("verify")
        .arg(bundle)
        .args(extra)
        .output()
        .expect("run");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify must fail with 1\n{stdout}{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    stderr
}

#[test]
fn good_bundle_verifies_and_names_its_target() {
    let b = bundle("x86_64");
    let out = run_ok(
        ebpf_pack()
            .arg("verify")
            .arg(&b)
            .args(["--target", "x86_64"]),
    );
    assert!(
        text(&out).0.contains("ok — target x86_64"),
        "{:?}",
        text(&out)
    );
    let err = verify_fails(&b, &["--target", "beaglebone"]);
    assert!(
        err.contains("bundle is for target `x86_64`, not `beaglebone`"),
        "{err}"
    );
}

#[test]
fn aarch64_loader_presented_for_beaglebone_is_refused() {
    let rpi4 = entries(&bundle("rpi4"));
    let loader = &rpi4
        .iter()
        .find(|e| e.0.ends_with("/ebpf-run"))
        .expect("loader")
        .1;
    let err = verify_loader("ebpf-run", loader, Arch::Arm).expect_err("wrong arch");
    assert!(
        err.problem
            .contains("loader is 64-bit AArch64, target arch `arm` needs 32-bit ARM"),
        "{err}"
    );
    assert!(err.help.contains("armv7-unknown-linux-gnueabihf"), "{err}");
}

#[test]
fn dynamically_linked_loader_is_refused() {
    let dynamic = std::fs::read("/bin/true").expect("/bin/true");
    let err = verify_loader("/bin/true", &dynamic, Arch::X86_64).expect_err("dynamic");
    assert!(
        err.problem
            .contains("dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"),
        "{err}"
    );
    assert!(err.help.contains("crt-static"), "{err}");
}

#[test]
fn truncated_loader_and_object_are_refused() {
    let files = entries(&bundle("x86_64"));
    let loader = &files
        .iter()
        .find(|e| e.0.ends_with("/ebpf-run"))
        .expect("loader")
        .1;
    let err = verify_loader("ebpf-run", &loader[..100], Arch::X86_64).expect_err("truncated");
    assert!(
        err.problem
            .contains("cannot be read (truncated or corrupt)"),
        "{err}"
    );
    let obj = &files
        .iter()
        .find(|e| e.0.ends_with("opensnoop.bpf.o"))
        .expect("object")
        .1;
    let rules = ObjectRules {
        arch: Arch::X86_64,
        kernel: KernelVersion::new(6, 1),
    };
    verify_object("opensnoop.bpf.o", obj, rules).expect("the whole object verifies");
    let err =
        verify_object("opensnoop.bpf.o", &obj[..obj.len() / 2], rules).expect_err("truncated");
    assert!(err.problem.contains("truncated or corrupt"), "{err}");
    let err = verify_object("x", b"hello", rules).expect_err("not ELF");
    assert_eq!(err.problem, "not an ELF file");
}

fn clang() -> Option<String> {
    ["clang-19", "clang"]
        .iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .map(|c| c.to_string())
}

/// Compiles `body` (after the includes and the GPL license) as a little-endian BPF object; `None`
/// (a loud skip, a failure under CI) without clang.
fn compile_bpfel(body: &str) -> Option<Vec<u8>> {
    let Some(clang) = clang() else {
        require(false, "clang");
        return None;
    };
    let dir = tempdir();
    let src = dir.path().join("t.bpf.c");
    std::fs::write(
        &src,
        format!(
            "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n{body}"
        ),
    )
    .expect("write");
    let obj = dir.path().join("t.bpf.o");
    run_ok(
        Command::new(&clang)
            .args([
                "-g",
                "-O2",
                "-target",
                "bpfel",
                "-I/usr/include/x86_64-linux-gnu",
                "-c",
            ])
            .arg(&src)
            .arg("-o")
            .arg(&obj),
    );
    Some(std::fs::read(&obj).expect("object"))
}

#[test]
fn big_endian_object_for_little_endian_board_is_refused() {
    let Some(clang) = clang() else {
        require(false, "clang");
        return;
    };
    let dir = tempdir();
    let obj = dir.path().join("opensnoop.be.o");
    run_ok(
        Command::new(&clang)
            .current_dir(repo())
            .args([
                "-g",
                "-O2",
                "-target",
                "bpfeb",
                "-D__TARGET_ARCH_x86",
                "-Iprobes/include",
                "-Iprobes/include/x86_64",
                "-c",
                "probes/opensnoop.bpf.c",
                "-o",
            ])
            .arg(&obj),
    );
    let data = std::fs::read(&obj).expect("object");
    let rules = ObjectRules {
        arch: Arch::X86_64,
        kernel: KernelVersion::new(6, 1),
    };
    let err = verify_object("opensnoop.be.o", &data, rules).expect_err("BE object");
    assert!(
        err.problem
            .contains("object is big-endian BPF, target arch `x86_64` is little-endian"),
        "{err}"
    );
    assert!(err.help.contains("-target bpfel"), "{err}");
    // The same object is right for a big-endian board.
    verify_object(
        "opensnoop.be.o",
        &data,
        ObjectRules {
            arch: Arch::S390x,
            kernel: KernelVersion::new(6, 1),
        },
    )
    .expect("fits s390x");
}

#[test]
fn object_with_atomics_is_refused_for_arm32_and_ringbuf_for_old_kernels() {
    let Some(data) = compile_bpfel(
        "struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(\".maps\");\n\
         unsigned long long hits;\nSEC(\"tracepoint/syscalls/sys_enter_openat\") int count(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }\n",
    ) else {
        return;
    };
    let err = verify_object(
        "atomic.bpf.o",
        &data,
        ObjectRules {
            arch: Arch::Arm,
            kernel: KernelVersion::new(6, 1),
        },
    )
    .expect_err("atomics");
    assert!(
        err.problem.contains("uses a BPF atomic instruction"),
        "{err}"
    );
    let err = verify_object(
        "atomic.bpf.o",
        &data,
        ObjectRules {
            arch: Arch::X86_64,
            kernel: KernelVersion::new(5, 4),
        },
    )
    .expect_err("ringbuf");
    assert!(
        err.problem
            .contains("map `rb` is a ringbuf, which needs kernel 5.8; target kernel is 5.4"),
        "{err}"
    );
    verify_object(
        "atomic.bpf.o",
        &data,
        ObjectRules {
            arch: Arch::X86_64,
            kernel: KernelVersion::new(5, 8),
        },
    )
    .expect("fine on x86_64 5.8");
}

/// fentry/fexit only where the arch's kernel can attach BPF trampolines to kernel functions: never on
/// 32-bit ARM, on arm64 from 6.4 (Debian's 6.1 arm64 kernel refuses them with ENOTSUPP in QEMU).
#[test]
fn fentry_needs_trampolines_of_the_target_kernel() {
    let Some(data) =
        compile_bpfel("SEC(\"fentry/do_sys_openat2\") int enter(void *ctx) { return 0; }\n")
    else {
        return;
    };
    let rules = |arch, major, minor| ObjectRules {
        arch,
        kernel: KernelVersion::new(major, minor),
    };
    let err = verify_object("f.o", &data, rules(Arch::Arm64, 6, 1)).expect_err("arm64 6.1");
    assert!(
        err.problem
            .contains("`fentry/do_sys_openat2` needs kernel 6.4 on `arm64`, target kernel is 6.1"),
        "{err}"
    );
    verify_object("f.o", &data, rules(Arch::Arm64, 6, 4)).expect("arm64 6.4");
    verify_object("f.o", &data, rules(Arch::X86_64, 5, 5)).expect("x86_64 5.5");
    let err = verify_object("f.o", &data, rules(Arch::Arm, 6, 6)).expect_err("arm");
    assert!(err.problem.contains("does not have"), "{err}");
    // With a kprobe twin on the same function (libbpf-tools' alternatives), ebpf-run runs the
    // kprobe where trampolines are missing: fine for every arch and kernel.
    let Some(pair) = compile_bpfel(
        "SEC(\"fentry/do_sys_openat2\") int enter(void *ctx) { return 0; }\n\
         SEC(\"kprobe/do_sys_openat2\") int enter_kprobe(void *ctx) { return 0; }\n",
    ) else {
        return;
    };
    verify_object("pair.o", &pair, rules(Arch::Arm, 6, 1)).expect("arm with a kprobe twin");
    verify_object("pair.o", &pair, rules(Arch::Arm64, 6, 1)).expect("arm64 6.1 with a kprobe twin");
}

/// A ring buffer with a perf-buffer fallback (EBPF_PACK_EVENTS: opensnoop) is fine for a 5.4 kernel; a
/// plain one is refused with the way out named.
#[test]
fn ringbuf_with_perf_fallback_fits_old_kernels() {
    let files = entries(&bundle("x86_64"));
    let object = |probe: &str| {
        files
            .iter()
            .find(|(path, ..)| path.ends_with(&format!("bpf/{probe}.bpf.o")))
            .map(|(_, data, ..)| data.clone())
            .expect("object in the bundle")
    };
    let old = ObjectRules {
        arch: Arch::X86_64,
        kernel: KernelVersion::new(5, 4),
    };
    verify_object("opensnoop.bpf.o", &object("opensnoop"), old).expect("fallback fits 5.4");
    let Some(plain) = compile_bpfel(
        "struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(\".maps\");\n\
         SEC(\"tracepoint/sched/sched_process_exec\") int t(void *ctx) {\n\
         \tbpf_ringbuf_output(&events, &ctx, 8, 0);\n\treturn 0;\n}\n",
    ) else {
        return;
    };
    let err = verify_object("plain.bpf.o", &plain, old).expect_err("no fallback");
    assert!(
        err.problem
            .contains("map `events` is a ringbuf, which needs kernel 5.8; target kernel is 5.4")
            && err.help.contains("EBPF_PACK_EVENTS"),
        "{err}"
    );
}

#[test]
fn corrupted_tarball_is_refused() {
    let dir = tempdir();
    let mut bytes = std::fs::read(bundle("x86_64")).expect("bundle");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let bad = dir.path().join("corrupt.tar.gz");
    std::fs::write(&bad, &bytes).expect("write");
    let err = verify_fails(&bad, &[]);
    assert!(
        err.contains("not a readable tar.gz") || err.contains("checksum mismatch"),
        "{err}"
    );
    std::fs::write(&bad, &bytes[..mid]).expect("write");
    let err = verify_fails(&bad, &[]);
    assert!(err.contains("not a readable tar.gz"), "{err}");
}

#[test]
fn altered_object_fails_its_checksum() {
    let dir = tempdir();
    let mut files = entries(&bundle("x86_64"));
    let obj = files
        .iter_mut()
        .find(|e| e.0.ends_with("execsnoop.bpf.o"))
        .expect("object");
    let last = obj.1.len() - 1;
    obj.1[last] ^= 1;
    let bad = dir.path().join("altered.tar.gz");
    repack(&files, &bad);
    let err = verify_fails(&bad, &[]);
    assert!(
        err.contains("bpf/execsnoop.bpf.o: checksum mismatch: manifest says"),
        "{err}"
    );
}

#[test]
fn extra_file_unsafe_path_and_link_are_refused() {
    let dir = tempdir();
    let files = entries(&bundle("x86_64"));
    let top = files[0].0.trim_end_matches('/').to_string();

    let mut extra = files.clone();
    extra.push((
        format!("{top}/bpf/evil.bpf.o"),
        b"x".to_vec(),
        tar::EntryType::Regular,
        0o644,
    ));
    let bad = dir.path().join("extra.tar.gz");
    repack(&extra, &bad);
    assert!(verify_fails(&bad, &[]).contains("bpf/evil.bpf.o: is not listed in manifest.json"));

    let mut dotdot = files.clone();
    dotdot.push((
        format!("{top}/../escape"),
        b"x".to_vec(),
        tar::EntryType::Regular,
        0o644,
    ));
    repack(&dotdot, &bad);
    assert!(verify_fails(&bad, &[]).contains("has an absolute or `..` path"));

    let mut link = files.clone();
    link.push((
        format!("{top}/passwd"),
        Vec::new(),
        tar::EntryType::Symlink,
        0o777,
    ));
    repack(&link, &bad);
    assert!(verify_fails(&bad, &[]).contains("not a plain file or folder"));

    // The rest of the table of docs/RELIABILITY.md: each added to the good bundle's entries.
    let cases: [(&str, Vec<u8>, tar::EntryType, u32, &str); 5] = [
        (
            "/etc/cron.d/evil",
            b"x".to_vec(),
            tar::EntryType::Regular,
            0o644,
            "has an absolute or `..` path",
        ),
        (
            "hard",
            Vec::new(),
            tar::EntryType::Link,
            0o644,
            "is a Link, not a plain file or folder",
        ),
        (
            "tty",
            Vec::new(),
            tar::EntryType::Char,
            0o666,
            "is a Char, not a plain file or folder",
        ),
        (
            "bin/su",
            b"x".to_vec(),
            tar::EntryType::Regular,
            0o4755,
            "has mode 4755 (setuid, setgid or sticky bits)",
        ),
        (
            "huge",
            vec![0u8; (257 << 20) as usize],
            tar::EntryType::Regular,
            0o644,
            "unpacks to more than 256 MiB",
        ),
    ];
    for (path, data, kind, mode, why) in cases {
        let mut with = files.clone();
        let full = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{top}/{path}")
        };
        with.push((full, data, kind, mode));
        repack(&with, &bad);
        let err = verify_fails(&bad, &[]);
        assert!(err.contains(why), "{path}: {err}");
    }
}

#[test]
fn bundle_entries_are_deterministic_and_owned_by_root() {
    let files = entries(&bundle("x86_64"));
    let bytes = std::fs::read(bundle("x86_64")).expect("bundle");
    // gzip header: no mtime, no file name.
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(bytes[3] & 0x08, 0, "no FNAME");
    let paths: Vec<&str> = files.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
    for (path, _, kind, mode) in &files {
        let want = if path.ends_with('/') || path.ends_with("ebpf-run") {
            0o755
        } else {
            0o644
        };
        assert_eq!(*mode, want, "{path} {kind:?}");
    }
}

/// `kernel.btf: <path>` is classified by content: raw BTF, ELF with .BTF, ELF with only DWARF (pahole
/// route), and anything else refused with advice.
#[test]
fn kernel_btf_inputs_are_classified_by_content() {
    use ebpf_pack::plan::BtfInput;
    use ebpf_pack::project::classify_btf;
    use ebpf_pack::target::{TargetOrigin, parse_target};

    let dir = tempdir();
    let target_for = |path: &Path| {
        let text = format!(
            "schema: 1\nname: t\ndescription: d\narch: arm\nkernel:\n  version: \"6.1\"\n  btf: {}\n",
            path.display()
        );
        parse_target(&text, "t.yaml", dir.path(), TargetOrigin::Builtin).expect("target")
    };
    // Raw BTF: this kernel's own.
    let raw = Path::new("/sys/kernel/btf/vmlinux");
    if raw.exists() {
        assert_eq!(
            classify_btf(&target_for(raw)).expect("raw"),
            BtfInput::Btf(raw.to_path_buf())
        );
    }
    // ELF with DWARF only: what a kernel built with CONFIG_DEBUG_INFO but without BTF looks like.
    let src = dir.path().join("k.c");
    std::fs::write(
        &src,
        "struct task { int pid; struct task *parent; };\nstruct task init_task;\n",
    )
    .expect("write");
    let dwarf = dir.path().join("vmlinux-dwarf");
    run_ok(
        Command::new("gcc")
            .args(["-g", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&dwarf),
    );
    assert_eq!(
        classify_btf(&target_for(&dwarf)).expect("dwarf"),
        BtfInput::Dwarf(dwarf.clone())
    );
    // The same ELF after pahole added .BTF: usable as is.
    let with_btf = dir.path().join("vmlinux-btf");
    std::fs::copy(&dwarf, &with_btf).expect("copy");
    run_ok(Command::new("pahole").arg("-J").arg(&with_btf));
    assert_eq!(
        classify_btf(&target_for(&with_btf)).expect("btf"),
        BtfInput::Btf(with_btf.clone())
    );
    // Stripped ELF and non-ELF files are refused with advice.
    let stripped = dir.path().join("vmlinux-stripped");
    run_ok(
        Command::new("strip")
            .arg("-g")
            .arg("-o")
            .arg(&stripped)
            .arg(&dwarf),
    );
    let err = classify_btf(&target_for(&stripped))
        .expect_err("stripped")
        .to_string();
    assert!(err.contains("has neither .BTF nor DWARF"), "{err}");
    let zimage = dir.path().join("zImage");
    std::fs::write(&zimage, [0u8; 64]).expect("write");
    let err = classify_btf(&target_for(&zimage))
        .expect_err("zImage")
        .to_string();
    assert!(
        err.contains("neither an ELF vmlinux nor a raw BTF file"),
        "{err}"
    );
    let err = classify_btf(&target_for(&dir.path().join("missing")))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("kernel.btf: cannot read"), "{err}");
}

#[test]
fn kconfig_externs_are_checked_for_type_name_and_the_board_config() {
    use ebpf_pack::verify::verify_kconfig;
    use ebpf_pack_object::kconfig::{KernelFacts, parse_config};
    let Some(good) = compile_bpfel(
        "extern int CONFIG_HZ __kconfig;\n\
         extern _Bool CONFIG_EP_OPTIONAL __kconfig __weak;\n\
         extern unsigned int LINUX_KERNEL_VERSION __kconfig;\n\
         int out;\n\
         SEC(\"tracepoint/syscalls/sys_enter_getsid\") int p(void *ctx)\n\
         { out = CONFIG_HZ + CONFIG_EP_OPTIONAL + LINUX_KERNEL_VERSION; return 0; }\n",
    ) else {
        return;
    };
    let rules = ObjectRules {
        arch: Arch::X86_64,
        kernel: KernelVersion::new(6, 1),
    };
    verify_object("k.bpf.o", &good, rules).expect("known names and types");
    let board = |config: &str| KernelFacts {
        release: "6.1".into(),
        config: Some(parse_config(config)),
        config_source: "boards/gw.config".into(),
        ..KernelFacts::default()
    };
    // The board's config decides: a strong extern needs its option there; a weak one does not.
    verify_kconfig("k.bpf.o", &good, Some(&board("CONFIG_HZ=250\n"))).expect("has CONFIG_HZ");
    let err = verify_kconfig("k.bpf.o", &good, Some(&board("CONFIG_BPF=y\n")))
        .expect_err("lacks CONFIG_HZ");
    assert!(
        err.problem.contains(
            "CONFIG_HZ is not set in the kernel's config (boards/gw.config), and not __weak"
        ),
        "{err}"
    );
    assert!(err.help.contains("declare the externs __weak"), "{err}");
    let err = verify_kconfig("k.bpf.o", &good, Some(&board("CONFIG_HZ=fast\n")))
        .expect_err("not a number");
    assert!(
        err.problem.contains("CONFIG_HZ is `fast`, not a number"),
        "{err}"
    );

    // Names no kernel gives, and types no value fits, are refused whatever the board.
    let Some(unknown) = compile_bpfel(
        "extern int LINUX_EP_NOPE __kconfig;\nint out;\n\
         SEC(\"tracepoint/syscalls/sys_enter_getsid\") int p(void *ctx) { out = LINUX_EP_NOPE; return 0; }\n",
    ) else {
        return;
    };
    let err = verify_object("u.bpf.o", &unknown, rules).expect_err("unknown name");
    assert!(
        err.problem
            .contains("unrecognized .kconfig extern LINUX_EP_NOPE"),
        "{err}"
    );
    let Some(shaped) = compile_bpfel(
        "struct ep_pair { int a, b; };\nextern struct ep_pair CONFIG_EP_PAIR __kconfig;\nint out;\n\
         SEC(\"tracepoint/syscalls/sys_enter_getsid\") int p(void *ctx) { out = CONFIG_EP_PAIR.b; return 0; }\n",
    ) else {
        return;
    };
    let err = verify_object("s.bpf.o", &shaped, rules).expect_err("struct extern");
    assert!(
        err.problem.contains(
            ".kconfig extern CONFIG_EP_PAIR has type `struct ep_pair`, which takes no kernel config value"
        ),
        "{err}"
    );
}

/// An object stripped of its `.BTF` (clang without `-g`) or of its license section is refused by name,
/// with what to add.
#[test]
fn object_without_btf_or_license_is_refused_naming_the_fix() {
    let Some(data) = compile_bpfel(
        "SEC(\"tracepoint/syscalls/sys_enter_getpid\") int on_getpid(void *ctx) { return 0; }\n",
    ) else {
        return;
    };
    let dir = tempdir();
    let obj = dir.path().join("t.bpf.o");
    std::fs::write(&obj, &data).expect("write");
    let rules = || ObjectRules {
        arch: Arch::X86_64,
        kernel: KernelVersion::new(6, 1),
    };
    verify_object("t.bpf.o", &data, rules()).expect("the whole object verifies");
    // clang's debug info refers to LICENSE, so that section is renamed rather than removed.
    let strip: [(&[&str], &str, &str); 2] = [
        (
            &[
                "--remove-section=.BTF",
                "--remove-section=.BTF.ext",
                "--remove-section=.rel.BTF",
                "--remove-section=.rel.BTF.ext",
            ],
            "object has no .BTF section",
            "-g",
        ),
        (
            &["--rename-section=license=notice"],
            "object has no license section",
            "SEC(\"license\")",
        ),
    ];
    for (args, want, fix) in strip {
        let stripped = dir.path().join("stripped.bpf.o");
        run_ok(
            Command::new("llvm-objcopy-19")
                .args(args)
                .arg(&obj)
                .arg(&stripped),
        );
        let bytes = std::fs::read(&stripped).expect("stripped object");
        let err = verify_object("t.bpf.o", &bytes, rules())
            .expect_err(want)
            .to_string();
        assert!(err.contains(want), "{err}");
        assert!(err.contains(fix), "{err}");
    }
}
