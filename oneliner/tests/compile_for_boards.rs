//! Every one-liner of the table compiles, through the BPF C the compiler writes, with clang-19 for
//! the four kinds of board (x86_64, arm64, 32-bit arm, big-endian s390x) against the probe header
//! and each arch's vmlinux.h, the way ebpf-pack's compile step builds probes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebpf_pack_oneliner::{Target, compile, parse};

#[path = "support/table.rs"]
mod table;
use table::ONE_LINERS;

/// What a board's syscall table offers (the compile test needs these few).
fn target() -> Target {
    Target {
        syscalls: [
            "openat",
            "open",
            "read",
            "kill",
            "getpid",
            "open_by_handle_at",
            "open_tree",
        ]
        .map(String::from)
        .to_vec(),
        syscall_rows: Vec::new(),
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn clang() -> Option<&'static str> {
    ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
}

#[test]
fn the_table_compiles_for_every_kind_of_board() {
    let Some(clang) = clang() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "clang is required under CI"
        );
        eprintln!("SKIPPED the_table_compiles_for_every_kind_of_board: no clang");
        return;
    };
    let dir = std::env::temp_dir().join(format!("oneliner-compile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut failures = Vec::new();
    for (i, src) in ONE_LINERS.iter().enumerate() {
        let program = parse(src).unwrap_or_else(|d| panic!("{}", d.render("-e", src)));
        let compiled =
            compile(&program, &target()).unwrap_or_else(|d| panic!("{}", d.render("-e", src)));
        let c = dir.join(format!("bt{i}.bpf.c"));
        std::fs::write(&c, &compiled.c).expect("write C");
        for (arch, bpf, define) in [
            ("x86_64", "bpfel", "x86"),
            ("arm64", "bpfel", "arm64"),
            ("arm", "bpfel", "arm"),
            ("s390x", "bpfeb", "s390"),
        ] {
            let out = Command::new(clang)
                // The flags of ebpf-pack's compile step that decide what compiles.
                .args(["-g", "-O2", "-Wall", "-Werror", "-mcpu=v3", "-target", bpf])
                .arg(format!("-D__TARGET_ARCH_{define}"))
                .arg("-I")
                .arg(repo().join(format!("probes/include/{arch}")))
                .arg("-I")
                .arg(repo().join("probes/include"))
                .arg("-c")
                .arg(&c)
                .arg("-o")
                .arg(dir.join(format!("bt{i}-{arch}.bpf.o")))
                .output()
                .expect("clang runs");
            if !out.status.success() {
                failures.push(format!(
                    "{src}\n  for {arch}: {}\n--- C ---\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    compiled.c
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// clang's errors about the C map back to the statement it was written for: the C of a one-liner
/// with one call misspelt (the kind of gap the compiler's own checks could leave) is refused by
/// clang, and the error points at that statement of the one-liner.
#[test]
fn clang_errors_point_at_the_one_liners_statement() {
    let Some(clang) = clang() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "clang is required under CI"
        );
        eprintln!("SKIPPED clang_errors_point_at_the_one_liners_statement: no clang");
        return;
    };
    let src = "tracepoint:syscalls:sys_enter_read /pid > 1/ { @a = count(); @c[cpu] = count(); }";
    let program = parse(src).expect("parses");
    let compiled = compile(&program, &target()).expect("compiles");
    let broken = compiled
        .c
        .replace("bpf_get_smp_processor_id()", "bpf_get_smp_processor_idd()");
    assert_ne!(broken, compiled.c, "the C reads the CPU number");
    let dir = std::env::temp_dir().join(format!("oneliner-clang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let c = dir.join("broken.bpf.c");
    std::fs::write(&c, &broken).expect("write C");
    let out = Command::new(clang)
        .args([
            "-g",
            "-O2",
            "-Wall",
            "-Werror",
            "-target",
            "bpfel",
            "-D__TARGET_ARCH_x86",
        ])
        .arg("-I")
        .arg(repo().join("probes/include/x86_64"))
        .arg("-I")
        .arg(repo().join("probes/include"))
        .arg("-c")
        .arg(&c)
        .arg("-o")
        .arg(dir.join("broken.bpf.o"))
        .output()
        .expect("clang runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "clang refuses the misspelt call");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let d = ebpf_pack_oneliner::compile::clang_diagnostic(&broken, "broken.bpf.c", &stderr)
        .unwrap_or_else(|| panic!("mapped back:\n{stderr}"));
    let at = src.find("@c[cpu]").expect("the statement");
    assert_eq!(d.span.start, at, "{}", d.render("-e", src));
    let shown = d.render("-e", src);
    assert!(shown.contains(&format!("-e:1:{}", at + 1)), "{shown}");
    assert!(
        shown.contains("bpf_get_smp_processor_idd"),
        "clang's words: {shown}"
    );
}
