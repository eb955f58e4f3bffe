use std::path::Path;

use super::*;
use crate::target::{TargetOrigin, parse_target};

fn target(extra: &str) -> Result<crate::target::Target, crate::target::TargetError> {
    let text = format!(
        "schema: 1\nname: board\ndescription: d\narch: arm\nkernel:\n  version: \"6.1\"\n  btf: builtin\n{extra}"
    );
    parse_target(&text, "t.yaml", Path::new("/"), TargetOrigin::Builtin)
}

#[test]
fn arch_defaults_apply_and_a_target_file_overrides_them() {
    let plain = target("").expect("valid");
    assert_eq!(plain.qemu, QemuOverrides::default());
    let s = qemu_settings(plain.arch, &plain.qemu);
    assert_eq!(s.binary, "qemu-system-arm");
    assert_eq!(s.machine, "virt");
    assert_eq!(s.cpu.as_deref(), Some("cortex-a15"));
    assert_eq!(s.console, "ttyAMA0");

    let t = target("qemu:\n  cpu: cortex-a7\n  console: ttyS0\n").expect("valid");
    let s = qemu_settings(t.arch, &t.qemu);
    assert_eq!(s.machine, "virt", "not overridden");
    assert_eq!(s.cpu.as_deref(), Some("cortex-a7"));
    assert_eq!(s.console, "ttyS0");
}

#[test]
fn bad_qemu_values_are_located() {
    let err = target("qemu:\n  machine: \"virt,highmem=off x\"\n  bogus: 1\n").expect_err("bad");
    let text = err.to_string();
    assert!(
        text.starts_with("t.yaml:10:3: unknown field `bogus`"),
        "{text}"
    );
    let err = target("qemu:\n  machine: \"a b\"\n").expect_err("bad");
    let text = err.to_string();
    assert!(
        text.starts_with("t.yaml:9:12: qemu.machine `a b` is not a single word"),
        "{text}"
    );
}

#[test]
fn qemu_command_is_pasteable_and_complete() {
    let s = qemu_settings(Arch::Arm64, &QemuOverrides::default());
    let cmd = qemu_command(
        &s,
        Path::new("/k/vmlinuz"),
        Path::new("build/x/initramfs.cpio.gz"),
        Some("nokaslr"),
        512,
        &GuestConsole::Stdio,
    );
    assert_eq!(
        cmd.shell_line(),
        "qemu-system-aarch64 -M virt -cpu cortex-a57 -m 512 -nographic -no-reboot -nic none \
         -kernel /k/vmlinuz -initrd build/x/initramfs.cpio.gz \
         -append 'console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=3 nokaslr'"
    );
    let s390 = qemu_settings(Arch::S390x, &QemuOverrides::default());
    let cmd = qemu_command(
        &s390,
        Path::new("k"),
        Path::new("i"),
        None,
        512,
        &GuestConsole::Stdio,
    );
    assert!(!cmd.args.contains(&"-cpu".to_string()), "{cmd:?}");
    assert!(cmd.shell_line().contains("console=ttysclp0 "), "{cmd:?}");
    // A console socket: the machine's UART, or the SCLP console on s390x.
    let sock = GuestConsole::Socket("/tmp/g.sock".into());
    let arm = qemu_command(&s, Path::new("k"), Path::new("i"), None, 512, &sock);
    let line = arm.shell_line();
    assert!(
        line.contains(
            "-chardev socket,id=console,path=/tmp/g.sock,server=on,wait=off -serial chardev:console"
        ),
        "{line}"
    );
    assert!(!line.contains("-nographic"), "{line}");
    let s390_sock = qemu_command(&s390, Path::new("k"), Path::new("i"), None, 512, &sock);
    assert!(
        s390_sock
            .shell_line()
            .contains("-serial none -device sclpconsole,chardev=console"),
        "{s390_sock:?}"
    );
}

#[test]
fn a_shell_guest_offers_its_console_and_loops_the_workload() {
    let init = init_script(&InitOptions {
        shell: true,
        jit: Jit::Off,
        ..InitOptions::default()
    });
    assert!(
        init.contains("echo \"0\" > /proc/sys/net/core/bpf_jit_enable") || init.contains("JIT='0'"),
        "{init}"
    );
    assert!(init.contains("( while :; do /workload"), "{init}");
    assert!(init.ends_with("sh\npoweroff -f\n"), "{init}");
    assert!(!init.contains("ebpf-run"), "{init}");
}

#[test]
fn init_runs_the_loader_with_quoted_args_and_reports_its_status() {
    let init = init_script(&InitOptions {
        loader_args: vec!["opensnoop".into(), "/extra/k probe.bpf.o".into()],
        duration_secs: None,
        jit: Jit::On,
        modules: vec!["sch_ingress.ko".into(), "cls_bpf.ko".into()],
        shell: false,
    });
    assert!(init.starts_with("#!/bin/busybox sh\n"), "{init}");
    assert!(
        init.contains("./ebpf-run opensnoop '/extra/k probe.bpf.o' 2>/tmp/ebpf-run.err &"),
        "{init}"
    );
    assert!(init.contains("JIT='1'"), "{init}");
    // Modules load in order before the loader starts.
    let insmod = init
        .find("for m in sch_ingress.ko cls_bpf.ko; do\n  if insmod \"/modules/$m\"")
        .expect("insmod loop");
    assert!(insmod < init.find("./ebpf-run").expect("loader"), "{init}");
    assert!(init.contains("mount -t bpf bpf /sys/fs/bpf"), "{init}");
    assert!(init.contains("kill -TERM $LOADER"), "{init}");
    assert!(init.contains("echo \"$M ebpf-run exit=$RC"), "{init}");
    assert!(init.trim_end().ends_with("poweroff -f"), "{init}");

    let timed = init_script(&InitOptions {
        loader_args: Vec::new(),
        duration_secs: Some(7),
        jit: Jit::Default,
        modules: Vec::new(),
        shell: false,
    });
    assert!(timed.contains("./ebpf-run --duration 7 2>"), "{timed}");
    assert!(timed.contains("JIT=''"), "{timed}");
    assert!(
        timed.contains("if [ -n '' ]; then"),
        "the loader stops itself"
    );
}

#[test]
fn initramfs_holds_busybox_bundle_extras_and_scripts() {
    let mut bundle = BTreeMap::new();
    bundle.insert("ebpf-run".to_string(), vec![0x7f]);
    bundle.insert("bpf/opensnoop.bpf.o".to_string(), vec![1]);
    let extra = vec![("kcount.bpf.o".to_string(), vec![2])];
    let modules = vec![("cls_bpf.ko".to_string(), vec![3])];
    let fs = guest_initramfs(&GuestFiles {
        busybox: b"bb",
        bundle: &bundle,
        extra: &extra,
        modules: &modules,
        workload: DEFAULT_WORKLOAD.as_bytes(),
        init: "#!/bin/busybox sh\n",
    })
    .expect("layout");
    let mut cpio = Vec::new();
    fs.write_cpio(&mut cpio).expect("cpio");
    let text = String::from_utf8_lossy(&cpio);
    for name in [
        "init\0",
        "workload\0",
        "bin/busybox\0",
        "bin/sh\0",
        "bundle/ebpf-run\0",
        "bundle/bpf/opensnoop.bpf.o\0",
        "extra/kcount.bpf.o\0",
        "modules/cls_bpf.ko\0",
        "sys\0",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    let bad = vec![("../x".to_string(), vec![])];
    assert!(
        guest_initramfs(&GuestFiles {
            busybox: b"bb",
            bundle: &bundle,
            extra: &bad,
            modules: &[],
            workload: b"",
            init: "",
        })
        .is_err()
    );
}

#[test]
fn the_loader_status_is_read_from_the_console() {
    let console = "[    1.0] booting\r\n@@ebpf-pack: guest machine=aarch64\r\nopensnoop pid=1\r\n\
                   @@ebpf-pack: ebpf-run exit=3 uptime=9.12\r\n[    9.2] reboot: Power down\r\n";
    assert_eq!(loader_exit(console), Some(3));
    assert_eq!(loader_exit("Kernel panic - not syncing\n"), None);
    assert_eq!(
        console_tail(console, 2),
        "@@ebpf-pack: ebpf-run exit=3 uptime=9.12\n[    9.2] reboot: Power down"
    );
}

#[test]
fn default_workload_announces_what_it_does() {
    for marker in [
        "workload open pid=",
        "workload exec pid=",
        "workload syscall name=sync",
    ] {
        assert!(DEFAULT_WORKLOAD.contains(marker), "{marker}");
    }
}
