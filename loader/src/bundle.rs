//! Finding things on the board: the bundle directory, its probes, and the kernel BTF for CO-RE.

use std::path::{Path, PathBuf};

use crate::args::Target;
use crate::failure::{Exit, Failure};
use crate::probe::{probe_name, sort_short};

/// Directory of the probe objects inside a bundle.
pub const OBJECT_DIR: &str = "bpf";
/// Suffix of probe objects.
pub const OBJECT_SUFFIX: &str = ".bpf.o";
/// Bundle-relative path of the tailored kernel BTF.
pub const BUNDLED_BTF: &str = "btf/vmlinux.btf";
/// The running kernel's own BTF.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The bundle directory: `--bundle DIR`, else the directory holding this executable.
pub fn bundle_dir(arg: Option<&Path>) -> PathBuf {
    if let Some(dir) = arg {
        return dir.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Names of the bundle's probes (stems of `bpf/*.bpf.o`), sorted.
pub fn available_probes(bundle: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(bundle.join(OBJECT_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let stem = file.strip_suffix(OBJECT_SUFFIX)?;
            (!stem.is_empty()).then(|| stem.to_owned())
        })
        .collect();
    sort_short(&mut names, |a, b| a < b);
    names
}

/// Resolves the positional arguments to `(probe name, object path)` pairs, without duplicates.
///
/// No targets means every available probe. Pure: `available` is the bundle's probe list.
pub fn select(
    targets: &[Target],
    bundle: &Path,
    available: &[String],
) -> Result<Vec<(String, PathBuf)>, Failure> {
    let object = |name: &str| {
        bundle
            .join(OBJECT_DIR)
            .join(format!("{name}{OBJECT_SUFFIX}"))
    };
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    if targets.is_empty() {
        if available.is_empty() {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "no probes found in {}",
                    bundle.join(OBJECT_DIR).display()
                ),
            )
            .hint("run ebpf-run from an unpacked bundle, pass --bundle DIR, or name an object file (FILE.bpf.o)"));
        }
        return Ok(available.iter().map(|n| (n.clone(), object(n))).collect());
    }
    for t in targets {
        let (name, path) = match t {
            Target::File(p) => (probe_name(p), p.clone()),
            Target::Probe(n) if available.contains(n) => (n.clone(), object(n)),
            Target::Probe(n) => {
                let known = if available.is_empty() {
                    format!("none in {}", bundle.join(OBJECT_DIR).display())
                } else {
                    available.join(", ")
                };
                return Err(Failure::new(
                    Exit::Usage,
                    format!("unknown probe `{n}`; available: {known}"),
                ));
            }
        };
        if !out.iter().any(|(_, p)| *p == path) {
            out.push((name, path));
        }
    }
    Ok(out)
}

/// Where kernel type information for CO-RE comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfSource {
    /// The running kernel's `/sys/kernel/btf/vmlinux` (aya's default).
    Kernel,
    /// A BTF file: `--btf FILE` or the bundle's `btf/vmlinux.btf`.
    File(PathBuf),
    /// Nothing: only objects without CO-RE relocations can load.
    None,
}

/// Chooses the BTF: `--btf FILE`, else the bundle's `btf/vmlinux.btf`, else the kernel's, else none.
pub fn choose_btf(arg: Option<&Path>, bundle: &Path, exists: impl Fn(&Path) -> bool) -> BtfSource {
    if let Some(p) = arg {
        return BtfSource::File(p.to_path_buf());
    }
    let bundled = bundle.join(BUNDLED_BTF);
    if exists(&bundled) {
        BtfSource::File(bundled)
    } else if exists(Path::new(KERNEL_BTF)) {
        BtfSource::Kernel
    } else {
        BtfSource::None
    }
}

/// The refusal for CO-RE objects on a kernel without BTF, naming the three ways out.
pub fn missing_btf(probe: &str) -> Failure {
    Failure::new(
        Exit::BadInput,
        format!(
            "probe {probe} uses CO-RE relocations, but this kernel has no BTF ({KERNEL_BTF} is missing) \
             and no BTF file was given"
        ),
    )
    .hint(
        "enable CONFIG_DEBUG_INFO_BTF in the kernel, or build the bundle with `kernel.btf: <path to the \
         board's vmlinux>` so it ships btf/vmlinux.btf, or pass --btf FILE",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_selection_means_every_probe() {
        let got = select(&[], Path::new("/b"), &names(&["a", "b"])).expect("select");
        assert_eq!(
            got,
            vec![
                ("a".to_string(), PathBuf::from("/b/bpf/a.bpf.o")),
                ("b".to_string(), PathBuf::from("/b/bpf/b.bpf.o")),
            ]
        );
        let err = select(&[], Path::new("/b"), &[]).expect_err("empty bundle");
        assert_eq!(err.exit, Exit::BadInput);
    }

    #[test]
    fn unknown_probe_lists_the_available_ones() {
        let err = select(
            &[Target::Probe("nope".into())],
            Path::new("/b"),
            &names(&["execsnoop", "opensnoop"]),
        )
        .expect_err("unknown");
        assert_eq!(err.exit, Exit::Usage);
        assert!(
            err.message.contains("execsnoop, opensnoop"),
            "{}",
            err.message
        );
    }

    #[test]
    fn files_and_names_mix_without_duplicates() {
        let t = [
            Target::Probe("a".into()),
            Target::File("/x/y.bpf.o".into()),
            Target::Probe("a".into()),
        ];
        let got = select(&t, Path::new("/b"), &names(&["a"])).expect("select");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], ("y".to_string(), PathBuf::from("/x/y.bpf.o")));
    }

    #[test]
    fn btf_preference_order() {
        let none = |_: &Path| false;
        let all = |_: &Path| true;
        let only_kernel = |p: &Path| p == Path::new(KERNEL_BTF);
        let b = Path::new("/b");
        assert_eq!(
            choose_btf(Some(Path::new("/k.btf")), b, all),
            BtfSource::File("/k.btf".into())
        );
        assert_eq!(
            choose_btf(None, b, all),
            BtfSource::File("/b/btf/vmlinux.btf".into())
        );
        assert_eq!(choose_btf(None, b, only_kernel), BtfSource::Kernel);
        assert_eq!(choose_btf(None, b, none), BtfSource::None);
    }
}
