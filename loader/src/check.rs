//! `--check`: can the running kernel run these probes? Each requirement is probed for real (a tiny map
//! or program is created and closed again), never guessed from version strings, and reported as one
//! `ok`/`warn`/`FAIL` line; a verdict line ends the report.

use std::io::{self, Write};
use std::path::Path;

use ebpf_pack_manifest::AttachKind;

use crate::bundle::{BtfSource, KERNEL_BTF};
use crate::failure::{Exit, Failure};
use crate::probe::ProbeObject;
use crate::{btf, map_types, sys};

/// Where the kernel's JIT switch lives.
const JIT_SETTING: &str = "/proc/sys/net/core/bpf_jit_enable";
/// tracefs, where it is mounted today and where it used to be.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The program type behind an attach kind: `(name, BPF_PROG_TYPE_*)`; `None` for the BTF-attached
/// tracing kinds, which cannot be loaded without a target.
fn prog_type(kind: AttachKind) -> Option<(&'static str, u32)> {
    Some(match kind {
        AttachKind::Tracepoint => ("tracepoint", 5),
        AttachKind::RawTracepoint => ("raw_tracepoint", 17),
        AttachKind::Kprobe | AttachKind::Kretprobe | AttachKind::Uprobe | AttachKind::Uretprobe => {
            ("kprobe", 2)
        }
        AttachKind::PerfEvent => ("perf_event", 7),
        AttachKind::Xdp => ("xdp", 6),
        AttachKind::Tc => ("sched_cls", 3),
        AttachKind::Socket => ("socket_filter", 1),
        AttachKind::CgroupSkb => ("cgroup_skb", 8),
        AttachKind::TpBtf | AttachKind::Fentry | AttachKind::Fexit => return None,
    })
}

/// Key, value and entry counts that make a minimal map of `map_type`, when known.
fn map_shape(map_type: u32, page: u32) -> Option<(u32, u32, u32)> {
    Some(match map_type {
        map_types::RINGBUF => (0, 0, page),
        4 => (4, 4, 1),       // perf_event_array
        22 | 23 => (0, 8, 1), // queue, stack
        1..=3 | 5..=7 | 9 | 10 => (4, 8, 1),
        _ => return None,
    })
}

/// The report being written: lines, the names of the failed requirements, and per probe the
/// requirements it needs that failed.
struct Report {
    text: String,
    failed: Vec<String>,
    blocked: Vec<Vec<String>>,
    /// Per probe, per program: a failed requirement of that program alone (its kind, its
    /// tracepoint). A probe runs while one of its programs can (the others are skipped).
    program_blocked: Vec<Vec<bool>>,
    /// Per probe: a failed requirement of the whole object (BTF, a map type, bpf(2)).
    probe_blocked: Vec<bool>,
}

impl Report {
    fn line(&mut self, status: &str, what: &str, detail: &str) {
        self.text
            .push_str(&format!("  {status:<5} {what}: {detail}\n"));
        if status == "FAIL" {
            self.failed.push(what.to_owned());
        }
    }

    /// A failed requirement that the probes `who` (indexes) need as a whole.
    fn fail(&mut self, what: &str, detail: &str, who: impl IntoIterator<Item = usize>) {
        self.line("FAIL", what, detail);
        for i in who {
            self.need(i, what);
            if let Some(b) = self.probe_blocked.get_mut(i) {
                *b = true;
            }
        }
    }

    /// A failed requirement of the programs `who` (probe, program indexes) alone.
    fn fail_programs(&mut self, what: &str, detail: &str, who: &[(usize, usize)]) {
        self.line("FAIL", what, detail);
        for &(i, j) in who {
            self.need(i, what);
            if let Some(b) = self.program_blocked.get_mut(i).and_then(|p| p.get_mut(j)) {
                *b = true;
            }
        }
    }

    fn need(&mut self, i: usize, what: &str) {
        if let Some(b) = self.blocked.get_mut(i)
            && !b.iter().any(|w| w == what)
        {
            b.push(what.to_owned());
        }
    }

    /// Whether probe `i` can run here: no requirement of the whole object failed and one of its
    /// programs has all it needs.
    fn runs(&self, i: usize) -> bool {
        self.probe_blocked.get(i) == Some(&false)
            && self
                .program_blocked
                .get(i)
                .is_some_and(|p| p.iter().any(|b| !b))
    }
}

/// The (probe, program) indexes of the programs of one of `kinds`.
fn with_kind(probes: &[ProbeObject], kinds: &[AttachKind]) -> Vec<(usize, usize)> {
    probes
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            p.programs
                .iter()
                .enumerate()
                .filter(|(_, prog)| prog.attach.as_ref().is_some_and(|(k, _)| kinds.contains(k)))
                .map(move |(j, _)| (i, j))
        })
        .collect()
}

/// The tracefs event directory of a tracepoint section's `category/name`, or of a raw tracepoint's
/// `name` (found in any category).
fn tracepoint_exists(events: &Path, point: &str, raw: bool) -> bool {
    if !raw {
        return events.join(point).is_dir();
    }
    std::fs::read_dir(events)
        .map(|dirs| dirs.flatten().any(|d| d.path().join(point).is_dir()))
        .unwrap_or(false)
}

/// `MAJOR.MINOR` at the start of a kernel release or version string (`6.1.0-56-arm64`, `"6.1"`).
fn major_minor(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Runs every check for `probes` and prints the report; an error when the kernel cannot run them.
/// `read` reads the BTF file of `btf` (from the embedded bundle when it is one); `min_kernel` is the
/// bundle manifest's `kernel_version`, when the probes are a bundle's.
pub fn check(
    probes: &[ProbeObject],
    btf: BtfSource,
    read: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    min_kernel: Option<&str>,
    kconfig: Option<&Path>,
) -> Result<(), Failure> {
    let mut r = Report {
        text: String::new(),
        failed: Vec::new(),
        blocked: vec![Vec::new(); probes.len()],
        program_blocked: probes
            .iter()
            .map(|p| vec![false; p.programs.len()])
            .collect(),
        probe_blocked: vec![false; probes.len()],
    };
    let all = || 0..probes.len();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    r.text.push_str(&format!(
        "ebpf-run --check: kernel {} ({}), {} probe(s)\n",
        release.trim(),
        std::env::consts::ARCH,
        probes.len()
    ));

    // 0. The kernel the bundle was built for: a hint only, every requirement is probed below.
    if let Some(min) = min_kernel {
        match (major_minor(&release), major_minor(min)) {
            (Some(running), Some(wanted)) if running >= wanted => r.line(
                "ok",
                "kernel",
                &format!(
                    "{}.{} meets the bundle's {min} or newer",
                    running.0, running.1
                ),
            ),
            (Some(running), Some(_)) => r.line(
                "warn",
                "kernel",
                &format!(
                    "{}.{} is older than the {min} the bundle was built for; the probes below \
                     decide whether it runs",
                    running.0, running.1
                ),
            ),
            _ => r.line(
                "warn",
                "kernel",
                &format!(
                    "cannot compare `{}` with the bundle's {min}",
                    release.trim()
                ),
            ),
        }
    }

    // 1. The bpf(2) system call and the privilege to use it.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let usable = match sys::probe_map_type(map_types::ARRAY, 4, 8, 1) {
        Ok(()) => {
            r.line(
                "ok",
                "bpf(2)",
                &format!("maps can be created (euid {euid})"),
            );
            true
        }
        Err(e) => {
            let why = match e.raw_os_error() {
                Some(libc::ENOSYS) => "no bpf(2): the kernel lacks CONFIG_BPF_SYSCALL".to_owned(),
                Some(libc::EPERM | libc::EACCES) => format!(
                    "not permitted (euid {euid}): run as root, or grant CAP_BPF and CAP_PERFMON \
                     (CAP_SYS_ADMIN before 5.8)"
                ),
                _ => e.to_string(),
            };
            r.fail("bpf(2)", &why, all());
            false
        }
    };

    // 2. BTF for CO-RE.
    let core: Vec<&str> = probes
        .iter()
        .filter(|p| p.core)
        .map(|p| p.name.as_str())
        .collect();
    let core_idx: Vec<usize> = all()
        .filter(|&i| probes.get(i).is_some_and(|p| p.core))
        .collect();
    let vet = |path: &Path| {
        read(path)
            .map_err(|e| e.to_string())
            .and_then(|d| btf::check(&d).map_err(|e| e.to_string()))
    };
    let btf_path = match &btf {
        BtfSource::File(p) => Some(p.as_path()),
        BtfSource::Kernel => Some(Path::new(KERNEL_BTF)),
        BtfSource::None => None,
    };
    match (btf_path.map(|p| (p, vet(p))), core.is_empty()) {
        (Some((p, Ok(n))), _) => r.line("ok", "BTF", &format!("{} ({n} types)", p.display())),
        (Some((p, Err(e))), false) => {
            r.fail("BTF", &format!("{}: {e}", p.display()), core_idx.clone())
        }
        (Some((p, Err(e))), true) => r.line("warn", "BTF", &format!("{}: {e}", p.display())),
        (None, true) => r.line("ok", "BTF", "none, and no probe needs it (no CO-RE)"),
        (None, false) => r.fail(
            "BTF",
            &format!(
                "none ({KERNEL_BTF} is missing, no btf/vmlinux.btf, no --btf), but CO-RE probes \
                 need it: {}",
                core.join(", ")
            ),
            core_idx.clone(),
        ),
    }

    // 3. Program types, and what their attach kinds need beyond the type.
    let mut kinds: Vec<(AttachKind, String)> = Vec::new();
    for p in probes {
        for prog in &p.programs {
            if let Some((kind, _)) = &prog.attach
                && !kinds.iter().any(|(k, _)| k == kind)
            {
                kinds.push((*kind, p.name.clone()));
            }
        }
    }
    let mut probed: Vec<u32> = Vec::new();
    let mut pmus: Vec<&str> = Vec::new();
    for (kind, probe) in &kinds {
        let name = kind.as_str();
        match prog_type(*kind) {
            Some((type_name, t)) if usable && !probed.contains(&t) => {
                probed.push(t);
                match sys::probe_prog_type(t, 0) {
                    Ok(()) => r.line(
                        "ok",
                        &format!("program type {type_name}"),
                        &format!("loads ({probe})"),
                    ),
                    Err(e) => {
                        let same_type: Vec<AttachKind> = kinds
                            .iter()
                            .map(|(k, _)| *k)
                            .filter(|k| prog_type(*k).is_some_and(|(_, pt)| pt == t))
                            .collect();
                        r.fail_programs(
                            &format!("program type {type_name}"),
                            &format!("{e} ({probe})"),
                            &with_kind(probes, &same_type),
                        )
                    }
                }
            }
            Some(_) => {}
            None if Path::new(KERNEL_BTF).exists() => r.line(
                "warn",
                name,
                "the kernel's own BTF exists; BPF trampolines are not probed (some kernels refuse \
                 them at load)",
            ),
            None => r.fail_programs(
                name,
                "attaches by the kernel's own BTF, and this kernel has none",
                &with_kind(probes, &[*kind]),
            ),
        }
        let pmu = match kind {
            AttachKind::Kprobe | AttachKind::Kretprobe => Some((
                "kprobe",
                "KPROBES",
                [AttachKind::Kprobe, AttachKind::Kretprobe],
            )),
            AttachKind::Uprobe | AttachKind::Uretprobe => Some((
                "uprobe",
                "UPROBES",
                [AttachKind::Uprobe, AttachKind::Uretprobe],
            )),
            _ => None,
        };
        if let Some((pmu, config, pair)) = pmu.filter(|(p, _, _)| !pmus.contains(p)) {
            pmus.push(pmu);
            let dir = format!("/sys/bus/event_source/devices/{pmu}");
            if Path::new(&dir).exists() {
                r.line("ok", &format!("{pmu}s"), &dir);
            } else {
                r.fail_programs(
                    &format!("{pmu}s"),
                    &format!("no {dir}: the kernel lacks CONFIG_{config}"),
                    &with_kind(probes, &pair),
                );
            }
        }
    }

    // 4. Map types.
    let page = sys::page_size();
    let mut seen: Vec<u32> = Vec::new();
    for p in probes {
        for m in &p.maps {
            let Some(t) = m.map_type.filter(|t| !seen.contains(t)) else {
                continue;
            };
            seen.push(t);
            let what = format!("map type {}", map_types::name(t));
            match map_shape(t, page) {
                Some(_) if !usable => {}
                Some((k, v, n)) => match sys::probe_map_type(t, k, v, n) {
                    Ok(()) => r.line("ok", &what, &format!("created ({})", p.name)),
                    Err(e) => {
                        let who = all().filter(|&i| {
                            probes
                                .get(i)
                                .is_some_and(|p| p.maps.iter().any(|m| m.map_type == Some(t)))
                        });
                        r.fail(&what, &format!("{e} ({})", p.name), who.collect::<Vec<_>>())
                    }
                },
                None => r.line("warn", &what, "not probed by this ebpf-run"),
            }
        }
    }

    // 5. JIT and tracefs.
    match std::fs::read_to_string(JIT_SETTING)
        .as_deref()
        .map(str::trim)
    {
        Ok("1") => r.line("ok", "JIT", "enabled"),
        Ok("2") => r.line("ok", "JIT", "enabled (debug output)"),
        Ok("0") => r.line(
            "warn",
            "JIT",
            "disabled: programs run in the interpreter (slower)",
        ),
        _ => r.line("warn", "JIT", &format!("{JIT_SETTING} is unreadable")),
    }
    let needs_tracefs = kinds.iter().any(|(k, _)| *k == AttachKind::Tracepoint);
    let tracefs = TRACEFS
        .iter()
        .find(|d| Path::new(d).join("events").exists());
    match tracefs {
        Some(dir) => r.line("ok", "tracefs", &format!("mounted at {dir}")),
        None if needs_tracefs => r.fail_programs(
            "tracefs",
            "not mounted, and tracepoints need it: mount -t tracefs tracefs /sys/kernel/tracing",
            &with_kind(probes, &[AttachKind::Tracepoint]),
        ),
        None => r.line("warn", "tracefs", "not mounted (no probe here needs it)"),
    }

    // 6. Each tracepoint a program attaches to: a kernel built without it (an arch without the
    // syscall, a kernel older than the event) cannot run that probe.
    if let Some(dir) = tracefs {
        let events = Path::new(dir).join("events");
        for (i, p) in probes.iter().enumerate() {
            for (j, prog) in p.programs.iter().enumerate() {
                let Some((
                    kind @ (AttachKind::Tracepoint | AttachKind::RawTracepoint),
                    Some(point),
                )) = &prog.attach
                else {
                    continue;
                };
                if !point.is_empty()
                    && !tracepoint_exists(&events, point, *kind == AttachKind::RawTracepoint)
                {
                    r.fail_programs(
                        &format!("tracepoint {point}"),
                        &format!("not in this kernel ({}, program {})", p.name, prog.function),
                        &[(i, j)],
                    );
                }
            }
        }
    }

    // 7. `.kconfig` externs: values for each (a strong CONFIG_* the kernel's config lacks blocks
    // the object, as it fails the run).
    match crate::kconfig::externs_of(probes)
        .and_then(|all| Ok((crate::kconfig::facts(&all, kconfig)?, all)))
    {
        Ok((None, _)) => {}
        Ok((Some(facts), all)) => {
            for (i, (p, externs)) in probes.iter().zip(&all).enumerate() {
                if externs.is_empty() {
                    continue;
                }
                let big_endian = p.btf.as_ref().is_some_and(|b| b.is_big_endian());
                let what = format!("kconfig {}", p.name);
                match facts.values(externs, big_endian) {
                    Ok(_) => {
                        let from = match &facts.config {
                            Some(_) => format!(", config {}", facts.config_source),
                            None if externs.iter().any(|e| e.name.starts_with("CONFIG_")) => {
                                ", no kernel config: __weak CONFIG_* are 0".to_owned()
                            }
                            None => String::new(),
                        };
                        r.line(
                            "ok",
                            &what,
                            &format!("{} .kconfig extern(s) have values{from}", externs.len()),
                        );
                    }
                    Err(errors) => r.fail(&what, &errors.join("; "), [i]),
                }
            }
        }
        Err(f) => r.fail("kconfig", &f.message, all()),
    }

    // 8. Per probe: which can run here (all of it, or the programs that have what they need, the
    // others skipped as a run skips them), and why not the others.
    let runnable: Vec<&str> = probes
        .iter()
        .enumerate()
        .filter(|&(i, _)| r.runs(i))
        .map(|(_, p)| p.name.as_str())
        .collect();
    let blocked_by = |i: usize| r.blocked.get(i).map_or(&[][..], Vec::as_slice);
    let partial = all().any(|i| r.runs(i) && !blocked_by(i).is_empty());
    if (probes.len() > 1 || partial) && !r.failed.is_empty() {
        r.text.push_str(&format!(
            "  can run: {}\n",
            if runnable.is_empty() {
                "none".to_owned()
            } else {
                runnable.join(", ")
            }
        ));
        for (i, p) in probes.iter().enumerate() {
            let needs = blocked_by(i).join(", ");
            if needs.is_empty() {
                continue;
            }
            if r.runs(i) {
                r.text.push_str(&format!(
                    "  can run in part: {}: its programs that need {needs} are skipped\n",
                    p.name
                ));
            } else {
                r.text
                    .push_str(&format!("  cannot run: {}: needs {needs}\n", p.name));
            }
        }
    }

    let ready = r.failed.is_empty();
    if ready {
        let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
        r.text.push_str(&format!(
            "verdict: ready: this kernel can run {}\n",
            names.join(", ")
        ));
    } else {
        r.text.push_str(&format!(
            "verdict: NOT READY: {} problem(s): {}\n",
            r.failed.len(),
            r.failed.join(", ")
        ));
    }
    let _ = io::stdout().lock().write_all(r.text.as_bytes());
    if ready {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::NotReady,
            "this kernel cannot run the selected probes (see the FAIL lines above)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::major_minor;

    #[test]
    fn kernel_versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("6.1.0-56-arm64\n"), Some((6, 1)));
        assert_eq!(major_minor("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(major_minor("5.15"), Some((5, 15)));
        assert_eq!(major_minor("4"), None);
        assert_eq!(major_minor("x.y"), None);
        assert!(major_minor("6.12").expect("v") > major_minor("6.1").expect("v"));
    }
}
