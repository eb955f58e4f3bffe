//! What the `ebpf-pack` binary carries so it needs no checkout: the probe headers (`ebpf_pack.h`, one
//! `vmlinux.h` per arch, from the checkout's `probes/include`), the toolbox (the ready tools' sources,
//! `probes/*.bpf.c`, picked by a project's `tools:`) and the `ebpf-run` source with its lock
//! file (from `loader/`, `manifest/`, `bpfobj/`). `build.rs` packs them; here they are unpacked on first
//! use into `$EBPF_PACK_CACHE/assets/<version>-<digest>/` and every file is checked against the table
//! packed with them, so a damaged or half-written copy is replaced, never used. Built-in targets are
//! carried by `target.rs` (`BUILTIN_TARGETS`).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::sha256_hex;

mod packed {
    include!(concat!(env!("OUT_DIR"), "/assets_index.rs"));
}

/// The packed archive (tar.gz, deterministic).
const ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/assets.tar.gz"));

/// Folder of the headers inside the assets: `ebpf_pack.h` and `<arch>/vmlinux.h`.
pub const INCLUDE_DIR: &str = "include";
/// Folder of the toolbox's sources inside the assets: `NAME.bpf.c`.
pub const TOOLS_DIR: &str = "tools";
/// Folder of the loader's cargo workspace inside the assets.
pub const LOADER_SOURCE_DIR: &str = "loader-src";

/// A problem with the cache folder the assets live in.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}\n  help: {help}")]
pub struct AssetError {
    /// The file or folder concerned.
    pub path: String,
    /// What went wrong.
    pub problem: String,
    /// How to fix it.
    pub help: String,
}

/// The unpacked, checked assets of this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// `$EBPF_PACK_CACHE/assets/<version>-<digest>`.
    pub root: PathBuf,
}

/// ebpf-pack's cache folder: `$EBPF_PACK_CACHE`, else `$HOME/.cache/ebpf-pack`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EBPF_PACK_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".cache/ebpf-pack")
}

/// The SHA-256 naming this binary's assets (over every packed file's path and digest).
pub fn digest() -> &'static str {
    packed::DIGEST
}

/// Every packed file (`include/ebpf_pack.h`, `loader-src/Cargo.lock`, ...) and its SHA-256.
pub fn files() -> &'static [(&'static str, &'static str)] {
    packed::FILES
}

impl Assets {
    /// The assets under the default cache folder, unpacked if missing or damaged.
    pub fn open() -> Result<Assets, AssetError> {
        Assets::open_in(&cache_dir())
    }

    /// The assets under `cache`, unpacked if missing, and replaced if any file differs from the
    /// packed table (a damaged cache is said once on stderr, then rebuilt).
    pub fn open_in(cache: &Path) -> Result<Assets, AssetError> {
        let parent = cache.join("assets");
        let root = parent.join(format!(
            "{}-{}",
            env!("CARGO_PKG_VERSION"),
            &packed::DIGEST[..12]
        ));
        if root.is_dir() {
            match check_tree(&root) {
                Ok(()) => return Ok(Assets { root }),
                Err(problem) => {
                    eprintln!(
                        "warning: {}: {problem}; unpacking the assets again",
                        root.display()
                    );
                    fs::remove_dir_all(&root).map_err(|e| AssetError {
                        path: root.display().to_string(),
                        problem: format!("cannot remove the damaged copy: {e}"),
                        help:
                            "remove the folder by hand, or set EBPF_PACK_CACHE to a writable folder"
                                .into(),
                    })?;
                }
            }
        }
        unpack_into(&parent, &root)?;
        Ok(Assets { root })
    }

    /// The header folder: `-I` this for `ebpf_pack.h`, and `<arch>/` below it for `vmlinux.h`.
    pub fn include_dir(&self) -> PathBuf {
        self.root.join(INCLUDE_DIR)
    }

    /// The toolbox: one `NAME.bpf.c` per ready tool.
    pub fn tools_dir(&self) -> PathBuf {
        self.root.join(TOOLS_DIR)
    }

    /// The loader's cargo workspace (`Cargo.toml`, `Cargo.lock`, `loader/`, `manifest/`, `bpfobj/`).
    pub fn loader_source(&self) -> PathBuf {
        self.root.join(LOADER_SOURCE_DIR)
    }
}

fn cache_error(path: &Path, problem: impl ToString) -> AssetError {
    AssetError {
        path: path.display().to_string(),
        problem: problem.to_string(),
        help: "set EBPF_PACK_CACHE to a writable folder with a few MB free".into(),
    }
}

/// Unpacks the archive into a fresh folder beside `root`, checks it, and renames it into place, so
/// `root` is either absent or complete. A concurrent unpack that wins the rename is fine.
fn unpack_into(parent: &Path, root: &Path) -> Result<(), AssetError> {
    fs::create_dir_all(parent).map_err(|e| cache_error(parent, e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = parent.join(format!(".unpack-{}-{nanos}", std::process::id()));
    let result = unpack_archive(ARCHIVE, &temp, |name| Some(PathBuf::from(name))).and_then(|_| {
        check_tree(&temp).map_err(|problem| cache_error(&temp, problem))?;
        match fs::rename(&temp, root) {
            Ok(()) => Ok(()),
            Err(_) if root.is_dir() && check_tree(root).is_ok() => Ok(()),
            Err(e) => Err(cache_error(root, e)),
        }
    });
    let _ = fs::remove_dir_all(&temp);
    result
}

/// Writes the files of `archive` that `place` maps to a path (relative to `dest`) below `dest`, and
/// returns the paths written, in archive order.
fn unpack_archive(
    archive: &[u8],
    dest: &Path,
    place: impl Fn(&str) -> Option<PathBuf>,
) -> Result<Vec<PathBuf>, AssetError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| cache_error(dest, e))?;
    let mut written = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| cache_error(dest, e))?;
        let name = entry
            .path()
            .map_err(|e| cache_error(dest, e))?
            .to_string_lossy()
            .into_owned();
        let Some(rel) = place(&name) else {
            continue;
        };
        let out = dest.join(rel);
        if let Some(dir) = out.parent() {
            fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| cache_error(&out, e))?;
        fs::write(&out, bytes).map_err(|e| cache_error(&out, e))?;
        written.push(out);
    }
    Ok(written)
}

/// Checks that every packed file is under `root` with its packed SHA-256.
fn check_tree(root: &Path) -> Result<(), String> {
    for (path, sha) in packed::FILES {
        let file = root.join(path);
        let data = fs::read(&file).map_err(|e| format!("{path}: {e}"))?;
        if sha256_hex(&data) != *sha {
            return Err(format!("{path} differs from the copy packed in ebpf-pack"));
        }
    }
    Ok(())
}

/// Writes the probe headers into `dir` (created if needed): `ebpf_pack.h` and, for each arch given
/// (every arch when `arches` is empty), `<arch>/vmlinux.h`. Returns the files written, sorted.
pub fn write_headers(dir: &Path, arches: &[&str]) -> Result<Vec<PathBuf>, AssetError> {
    let mut written = unpack_archive(ARCHIVE, dir, |name| {
        let inner = name.strip_prefix("include/")?;
        let wanted = match inner.split_once('/') {
            Some((arch, _)) => arches.is_empty() || arches.contains(&arch),
            None => true,
        };
        wanted.then(|| PathBuf::from(inner))
    })?;
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packed_shared_header_recompiles_probes_when_it_changes() {
        let mut top: Vec<&str> = files()
            .iter()
            .filter_map(|(p, _)| p.strip_prefix("include/"))
            .filter(|rel| !rel.contains('/'))
            .collect();
        top.sort();
        let mut shared = crate::plan::SHARED_HEADERS.to_vec();
        shared.sort();
        assert_eq!(
            top, shared,
            "plan::SHARED_HEADERS must list probes/include/*.h"
        );
    }

    #[test]
    fn packed_table_covers_headers_and_loader_source() {
        let names: Vec<&str> = files().iter().map(|(p, _)| *p).collect();
        for wanted in [
            "include/ebpf_pack.h",
            "include/arm/vmlinux.h",
            "include/s390x/vmlinux.h",
            "loader-src/Cargo.toml",
            "loader-src/Cargo.lock",
            "loader-src/loader/Cargo.toml",
            "loader-src/loader/src/main.rs",
            "loader-src/manifest/src/lib.rs",
            "loader-src/bpfobj/src/lib.rs",
        ] {
            assert!(names.contains(&wanted), "{wanted} not packed: {names:?}");
        }
    }

    #[test]
    fn unpacked_headers_match_the_checkout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let assets = Assets::open_in(dir.path()).expect("unpack");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes/include");
        for rel in ["ebpf_pack.h", "arm64/vmlinux.h"] {
            assert_eq!(
                fs::read(assets.include_dir().join(rel)).expect("unpacked"),
                fs::read(repo.join(rel)).expect("checkout"),
                "{rel}"
            );
        }
    }

    #[test]
    fn a_damaged_or_half_written_copy_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let assets = Assets::open_in(dir.path()).expect("unpack");
        let header = assets.include_dir().join("ebpf_pack.h");
        let good = fs::read(&header).expect("read");
        fs::write(&header, b"/* damaged */").expect("damage");
        let again = Assets::open_in(dir.path()).expect("reopen");
        assert_eq!(
            fs::read(again.include_dir().join("ebpf_pack.h")).expect("read"),
            good
        );
        // Half-written: a file missing altogether.
        fs::remove_file(again.loader_source().join("Cargo.lock")).expect("remove");
        let third = Assets::open_in(dir.path()).expect("reopen");
        assert!(third.loader_source().join("Cargo.lock").is_file());
        // Leftovers of an interrupted unpack are never the assets folder itself.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("assets"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn headers_for_one_arch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_headers(dir.path(), &["arm"]).expect("write");
        let rel: Vec<String> = written
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(rel, ["arm/vmlinux.h", "ebpf_pack.h", "ebpf_pack_tcp.h"]);
    }
}
