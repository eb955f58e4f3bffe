//! Finding things on the board: the bundle directory, its probes, and the kernel BTF for CO-RE.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ebpf_pack_manifest::embedded;

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

/// Where the bundle's files are: an unpacked bundle folder, or the bundle embedded in this executable.
#[derive(Debug)]
pub struct Bundle {
    /// The folder, or the executable for an embedded bundle; bundle paths are joined to it.
    pub root: PathBuf,
    /// The embedded bundle's files (verified), by bundle-relative path; `None` for a folder.
    embedded: Option<BTreeMap<String, Vec<u8>>>,
}

impl Bundle {
    /// An unpacked bundle in `dir`.
    pub fn dir(dir: PathBuf) -> Bundle {
        Bundle {
            root: dir,
            embedded: None,
        }
    }

    /// `--bundle DIR`; else the bundle embedded in this executable, checked against its `SHA256SUMS`
    /// (a single-file executable from `ebpf-pack build --single`); else the executable's folder.
    pub fn open(arg: Option<&Path>) -> Result<Bundle, Failure> {
        if let Some(dir) = arg {
            return Ok(Bundle::dir(dir.to_path_buf()));
        }
        let Ok(exe) = std::env::current_exe() else {
            return Ok(Bundle::dir(PathBuf::from(".")));
        };
        match read_embedded(&exe) {
            Ok(Some(files)) => Ok(Bundle {
                root: exe,
                embedded: Some(files),
            }),
            Ok(None) => Ok(Bundle::dir(
                exe.parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            )),
            Err(problem) => Err(Failure::new(
                Exit::BadInput,
                format!("{}: embedded bundle: {problem}", exe.display()),
            )
            .hint(
                "the file was damaged in transfer: copy it again and compare it with its .sha256, \
                 or rebuild it with `ebpf-pack build --single`",
            )),
        }
    }

    /// Whether the bundle is embedded in the executable.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Where the probe objects are, for messages.
    pub fn objects_dir(&self) -> PathBuf {
        self.root.join(OBJECT_DIR)
    }

    /// Names of the bundle's probes (stems of `bpf/*.bpf.o`), sorted.
    pub fn available_probes(&self) -> Vec<String> {
        let stem = |file: &str| {
            let stem = file.strip_suffix(OBJECT_SUFFIX)?;
            (!stem.is_empty() && !stem.contains('/')).then(|| stem.to_owned())
        };
        let mut names: Vec<String> = match &self.embedded {
            Some(files) => files
                .keys()
                .filter_map(|p| p.strip_prefix(OBJECT_DIR)?.strip_prefix('/'))
                .filter_map(stem)
                .collect(),
            None => match std::fs::read_dir(self.objects_dir()) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| stem(e.file_name().to_str()?))
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        sort_short(&mut names, |a, b| a < b);
        names
    }

    /// The embedded file at `path` (a path under [`Bundle::root`]), if this is an embedded bundle.
    fn embedded_file(&self, path: &Path) -> Option<&Vec<u8>> {
        let rel = path.strip_prefix(&self.root).ok()?.to_str()?;
        self.embedded.as_ref()?.get(rel)
    }

    /// Whether `path` exists: in the embedded bundle when it lies under it, else on disk.
    pub fn exists(&self, path: &Path) -> bool {
        self.embedded_file(path).is_some()
            || (!self.is_embedded() || !path.starts_with(&self.root)) && path.exists()
    }

    /// Reads `path`: from the embedded bundle when it lies under it, else from disk.
    pub fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.embedded_file(path) {
            Some(data) => Ok(data.clone()),
            None if self.is_embedded() && path.starts_with(&self.root) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not in the embedded bundle",
            )),
            None => std::fs::read(path),
        }
    }
}

/// The bundle appended to the executable `exe`, its checksums verified; `Ok(None)` when it has none.
/// Only the trailer and ELF header are read from a plain loader; bytes after its ELF without a trailer
/// are a truncated single-file executable.
fn read_embedded(exe: &Path) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let mut file = std::fs::File::open(exe).map_err(|e| format!("cannot read: {e}"))?;
    let mut trailer = [0u8; embedded::TRAILER_LEN];
    let has_trailer = file
        .seek(SeekFrom::End(-(embedded::TRAILER_LEN as i64)))
        .and_then(|_| file.read_exact(&mut trailer))
        .is_ok()
        && trailer.ends_with(embedded::MAGIC);
    if !has_trailer {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut header = [0u8; 64];
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_exact(&mut header));
        return match read.ok().and_then(|()| embedded::elf_end(&header)) {
            Some(end) if len > end => Err(embedded::truncated(len - end)),
            _ => Ok(None),
        };
    }
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut data))
        .map_err(|e| format!("cannot read: {e}"))?;
    let Some(embedded::Parts { loader, payload }) = embedded::split(&data)? else {
        return Ok(None);
    };
    let unpacked = embedded::unpack(payload)?;
    embedded::check_sums(loader, &unpacked.files)?;
    Ok(Some(unpacked.files))
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
