//! The bundle: a deterministic `tar.gz` with one top folder, `manifest.json` and `SHA256SUMS`; and the
//! re-check of a bundle someone hands you.

// Outside input (files other people send, programs people type) is parsed here: an index or
// `expect` it can reach is a panic, so each is an error outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::unreachable
    )
)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use ebpf_pack_manifest::{
    BtfMode, FileEntry, LOADER_FILE, MANIFEST_FILE, Manifest, SUMS_FILE, embedded,
};
use flate2::{Compression, GzBuilder};

use crate::arch::{Arch, KernelVersion};
use crate::verify::{ObjectRules, VerifyError, verify_loader, verify_object};

/// One file to put in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Path inside the top folder, `/`-separated.
    pub path: String,
    /// Content.
    pub data: Vec<u8>,
}

pub use ebpf_pack_manifest::embedded::sha256_hex;

/// The manifest's file list for `files`, sorted by path.
pub fn file_entries(files: &[BundleFile]) -> Vec<FileEntry> {
    let mut entries: Vec<FileEntry> = files
        .iter()
        .map(|f| FileEntry {
            path: f.path.clone(),
            size: f.data.len() as u64,
            sha256: sha256_hex(&f.data),
        })
        .collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

/// `sha256sum -c` input for the files plus the manifest.
pub fn sums_text(files: &[FileEntry], manifest_json: &[u8]) -> String {
    let mut lines: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    lines.push((MANIFEST_FILE.to_string(), sha256_hex(manifest_json)));
    lines.sort();
    lines
        .iter()
        .map(|(path, sum)| format!("{sum}  {path}\n"))
        .collect()
}

/// The manifest as the bytes written into bundles (pretty JSON, trailing newline).
pub fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes the bundle: top folder `stem/`, every file plus manifest and sums, sorted, owner 0:0, mode
/// 0755 for the loader and folders and 0644 otherwise, every mtime `mtime`, gzip header without name or
/// time. Same inputs, same bytes.
pub fn write_bundle<W: Write>(
    out: W,
    stem: &str,
    manifest: &Manifest,
    files: &[BundleFile],
    mtime: u64,
) -> io::Result<()> {
    let manifest_json = manifest_bytes(manifest);
    let sums = sums_text(&manifest.files, &manifest_json);
    let mut all: BTreeMap<String, &[u8]> = files
        .iter()
        .map(|f| (f.path.clone(), f.data.as_slice()))
        .collect();
    all.insert(MANIFEST_FILE.to_string(), &manifest_json);
    all.insert(SUMS_FILE.to_string(), sums.as_bytes());

    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut dirs: Vec<String> = vec![String::new()];
    for path in all.keys() {
        let mut prefix = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, d)| d.to_vec())
            .unwrap_or_default()
        {
            prefix = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}/{part}")
            };
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
            }
        }
    }
    // One sorted list of folders (`dir/`) and files: a folder sorts before its contents.
    // (name in the tar, the file's bundle path and content; None for a folder)
    type Entry<'a> = (String, Option<(&'a str, &'a [u8])>);
    let mut entries: Vec<Entry<'_>> = dirs
        .into_iter()
        .map(|d| {
            (
                if d.is_empty() {
                    format!("{stem}/")
                } else {
                    format!("{stem}/{d}/")
                },
                None,
            )
        })
        .collect();
    entries.extend(
        all.iter()
            .map(|(path, data)| (format!("{stem}/{path}"), Some((path.as_str(), *data)))),
    );
    entries.sort();
    for (name, file) in entries {
        let mut h = match file {
            None => header(tar::EntryType::Directory, 0o755, 0, mtime),
            Some((path, data)) => {
                let mode = if path == LOADER_FILE { 0o755 } else { 0o644 };
                header(tar::EntryType::Regular, mode, data.len() as u64, mtime)
            }
        };
        tar.append_data(&mut h, name, file.map_or(&[][..], |(_, data)| data))?;
    }
    tar.into_inner()?.finish()?.flush()
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A bundle read back and checked.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The top folder name.
    pub stem: String,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Every file (including manifest and sums), by bundle-relative path.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn bad(file: &str, problem: impl Into<String>, help: impl Into<String>) -> VerifyError {
    VerifyError {
        file: file.to_string(),
        problem: problem.into(),
        help: help.into(),
    }
}

/// Most bytes a bundle may unpack to (real ones: a few MB).
pub const MAX_UNPACKED_BYTES: u64 = 256 << 20;

/// Unpacks a bundle in memory, refusing anything but one top folder of plain files and folders with
/// safe relative paths, no setuid/setgid/sticky bits, and at most [`MAX_UNPACKED_BYTES`] in all.
pub fn read_bundle(
    name: &str,
    bytes: &[u8],
) -> Result<(String, BTreeMap<String, Vec<u8>>), VerifyError> {
    let corrupt = |e: io::Error| {
        bad(
            name,
            format!("not a readable tar.gz ({e})"),
            "download or copy the bundle again; compare it with its .sha256",
        )
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut stem: Option<String> = None;
    let mut files = BTreeMap::new();
    let mut unpacked = 0u64;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_path = path.starts_with('/') || path.split('/').any(|c| c == ".." || c == ".");
        if unsafe_path {
            return Err(bad(
                name,
                format!("entry `{path}` has an absolute or `..` path"),
                "refuse this bundle: it could write outside its folder",
            ));
        }
        let kind = entry.header().entry_type();
        // setuid, setgid, sticky: `tar -x` as root on a board would restore them.
        if let Ok(mode) = entry.header().mode()
            && mode & 0o7000 != 0
        {
            return Err(bad(
                name,
                format!("entry `{path}` has mode {mode:o} (setuid, setgid or sticky bits)"),
                "bundles hold 0644 files and 0755 folders and executables; refuse this bundle",
            ));
        }
        let (top, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
        match &stem {
            None => stem = Some(top.to_string()),
            Some(s) if s != top => {
                return Err(bad(
                    name,
                    format!("entry `{path}` is outside the top folder `{s}/`"),
                    "a bundle has exactly one top folder",
                ));
            }
            _ => {}
        }
        match kind {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular => {
                let rest = rest.to_string();
                if rest.is_empty() {
                    return Err(bad(
                        name,
                        format!("entry `{path}` is a file at top level"),
                        "a bundle has exactly one top folder",
                    ));
                }
                // Bounded whatever the headers claim: a gzip bomb stops at the limit.
                let room = MAX_UNPACKED_BYTES - unpacked;
                let mut data = Vec::new();
                (&mut entry)
                    .take(room + 1)
                    .read_to_end(&mut data)
                    .map_err(corrupt)?;
                unpacked += data.len() as u64;
                if unpacked > MAX_UNPACKED_BYTES {
                    return Err(bad(
                        name,
                        format!(
                            "unpacks to more than {} MiB (at entry `{path}`)",
                            MAX_UNPACKED_BYTES >> 20
                        ),
                        "a bundle holds a loader and objects of a few MB; refuse this bundle",
                    ));
                }
                if files.insert(rest, data).is_some() {
                    return Err(bad(
                        name,
                        format!("entry `{path}` appears twice"),
                        "refuse this bundle",
                    ));
                }
            }
            other => {
                return Err(bad(
                    name,
                    format!("entry `{path}` is a {other:?}, not a plain file or folder"),
                    "bundles hold no links or devices; refuse this bundle",
                ));
            }
        }
    }
    let stem = stem.ok_or_else(|| bad(name, "bundle is empty", "rebuild it"))?;
    Ok((stem, files))
}

/// Re-checks a bundle: layout, manifest, checksums of every file (and that nothing is extra or missing),
/// the loader against the manifest's arch, every object against arch and kernel. With `expected_target`
/// the manifest must name that target.
pub fn verify_bundle(
    name: &str,
    bytes: &[u8],
    expected_target: Option<&str>,
) -> Result<VerifiedBundle, VerifyError> {
    let (stem, files) = read_bundle(name, bytes)?;
    verify_files(name, stem, files, expected_target)
}

/// Re-checks a single-file executable (see [`embedded`]): the trailer, the embedded archive, its
/// `SHA256SUMS` against the payload and the loader in front of it, then everything [`verify_bundle`]
/// checks, with the loader being the executable's ELF.
pub fn verify_single(
    name: &str,
    bytes: &[u8],
    expected_target: Option<&str>,
) -> Result<VerifiedBundle, VerifyError> {
    let damaged = |problem: String| {
        bad(
            name,
            problem,
            "copy the file again and compare it with its .sha256, or rebuild it with `ebpf-pack build --single`",
        )
    };
    let embedded::Parts { loader, payload } = embedded::split(bytes)
        .map_err(|e| damaged(format!("embedded bundle: {e}")))?
        .ok_or_else(|| {
            bad(
                name,
                "has no embedded bundle",
                "pass a bundle (.tar.gz) or a file made by `ebpf-pack build --single`",
            )
        })?;
    let mut unpacked =
        embedded::unpack(payload).map_err(|e| damaged(format!("embedded bundle: {e}")))?;
    embedded::check_sums(loader, &unpacked.files)
        .map_err(|e| damaged(format!("embedded bundle: {e}")))?;
    unpacked
        .files
        .insert(LOADER_FILE.to_string(), loader.to_vec());
    verify_files(name, unpacked.stem, unpacked.files, expected_target)
}

/// Re-checks a bundle or a single-file executable, whichever `bytes` is (gzip magic or trailer).
pub fn verify_any(
    name: &str,
    bytes: &[u8],
    expected_target: Option<&str>,
) -> Result<VerifiedBundle, VerifyError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return verify_bundle(name, bytes, expected_target);
    }
    match embedded::split(bytes) {
        Ok(None) => Err(bad(
            name,
            "is neither a bundle (.tar.gz) nor a single-file executable",
            "pass dist/<project>-<version>-<target>.tar.gz or .run from `ebpf-pack build`",
        )),
        _ => verify_single(name, bytes, expected_target),
    }
}

/// The single-file executable of a verified bundle: its loader with every other file appended.
pub fn single_file(bundle: &VerifiedBundle, mtime: u64) -> Result<Vec<u8>, VerifyError> {
    let mut files = bundle.files.clone();
    let loader = files
        .remove(LOADER_FILE)
        .ok_or_else(|| bad(&bundle.stem, "bundle has no ebpf-run loader", "rebuild it"))?;
    embedded::assemble(&loader, &bundle.stem, &files, mtime)
        .map_err(|e| bad(&bundle.stem, e, "use shorter probe names"))
}

/// The checks shared by [`verify_bundle`] and [`verify_single`], on the unpacked files.
fn verify_files(
    name: &str,
    stem: String,
    files: BTreeMap<String, Vec<u8>>,
    expected_target: Option<&str>,
) -> Result<VerifiedBundle, VerifyError> {
    let at = |p: &str| format!("{name}: {stem}/{p}");
    let manifest_json = files.get(MANIFEST_FILE).ok_or_else(|| {
        bad(
            name,
            "bundle has no manifest.json",
            "rebuild it with `ebpf-pack build`",
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(manifest_json).map_err(|e| {
        bad(
            &at(MANIFEST_FILE),
            format!("cannot be read: {e}"),
            "rebuild the bundle with a matching ebpf-pack",
        )
    })?;
    if manifest.schema != ebpf_pack_manifest::SCHEMA {
        return Err(bad(
            &at(MANIFEST_FILE),
            format!("schema {} is not supported", manifest.schema),
            format!("this ebpf-pack reads schema {}", ebpf_pack_manifest::SCHEMA),
        ));
    }
    if let Some(want) = expected_target
        && manifest.target.name != want
    {
        return Err(bad(
            name,
            format!(
                "bundle is for target `{}`, not `{want}`",
                manifest.target.name
            ),
            format!("use the bundle built with `--target {want}`"),
        ));
    }
    // Checksums: SHA256SUMS against the content, the manifest's list against the content.
    let sums = files.get(SUMS_FILE).ok_or_else(|| {
        bad(
            name,
            "bundle has no SHA256SUMS",
            "rebuild it with `ebpf-pack build`",
        )
    })?;
    let expected_sums = sums_text(&manifest.files, manifest_json);
    if sums.as_slice() != expected_sums.as_bytes() {
        return Err(bad(
            &at(SUMS_FILE),
            "does not match manifest.json",
            "the bundle was altered; rebuild it",
        ));
    }
    for entry in &manifest.files {
        let data = files.get(&entry.path).ok_or_else(|| {
            bad(
                &at(&entry.path),
                "listed in manifest.json but missing",
                "the bundle is incomplete; rebuild it",
            )
        })?;
        let sum = sha256_hex(data);
        if data.len() as u64 != entry.size || sum != entry.sha256 {
            return Err(bad(
                &at(&entry.path),
                format!(
                    "checksum mismatch: manifest says {} bytes sha256 {}, file has {} bytes sha256 {sum}",
                    entry.size,
                    entry.sha256,
                    data.len()
                ),
                "the file was altered or damaged; rebuild or re-download the bundle",
            ));
        }
    }
    for path in files.keys() {
        if path != MANIFEST_FILE
            && path != SUMS_FILE
            && !manifest.files.iter().any(|f| &f.path == path)
        {
            return Err(bad(
                &at(path),
                "is not listed in manifest.json",
                "refuse this bundle: something was added to it",
            ));
        }
    }
    // Content: loader and objects against the manifest's target facts.
    let arch = Arch::from_name(&manifest.target.arch).ok_or_else(|| {
        bad(
            &at(MANIFEST_FILE),
            format!("unknown arch `{}`", manifest.target.arch),
            "rebuild with a matching ebpf-pack",
        )
    })?;
    if arch.facts().endian != manifest.target.endian || arch.facts().bits != manifest.target.bits {
        return Err(bad(
            &at(MANIFEST_FILE),
            "target endianness or bitness contradicts its arch",
            "the manifest was edited; rebuild",
        ));
    }
    let kernel = KernelVersion::parse(&manifest.target.kernel_version).ok_or_else(|| {
        bad(
            &at(MANIFEST_FILE),
            format!("bad kernel version `{}`", manifest.target.kernel_version),
            "rebuild",
        )
    })?;
    let loader = files
        .get(LOADER_FILE)
        .ok_or_else(|| bad(name, "bundle has no ebpf-run loader", "rebuild it"))?;
    verify_loader(&at(LOADER_FILE), loader, arch)?;
    for probe in &manifest.probes {
        let data = files
            .get(&probe.object)
            .ok_or_else(|| bad(&at(&probe.object), "object of probe missing", "rebuild"))?;
        let facts = verify_object(&at(&probe.object), data, ObjectRules { arch, kernel })?;
        if facts.core && manifest.target.btf == BtfMode::None {
            return Err(bad(
                &at(&probe.object),
                "uses CO-RE but the target has no BTF (kernel.btf: none)",
                "give kernel.btf a path to the board's vmlinux",
            ));
        }
        let listed = facts.into_probe(&probe.name, &probe.object);
        if &listed != probe {
            return Err(bad(
                &at(MANIFEST_FILE),
                format!(
                    "entry of probe `{}` does not describe its object",
                    probe.name
                ),
                "the manifest was edited; rebuild",
            ));
        }
    }
    match (&manifest.btf, manifest.target.btf) {
        (Some(path), BtfMode::Bundled) => {
            let data = files
                .get(path)
                .ok_or_else(|| bad(&at(path), "tailored BTF missing", "rebuild"))?;
            check_btf_header(&at(path), data, manifest.target.endian)?;
        }
        (None, BtfMode::Kernel | BtfMode::None) => {}
        _ => {
            return Err(bad(
                &at(MANIFEST_FILE),
                "`btf` and `target.btf` disagree",
                "the manifest was edited; rebuild",
            ));
        }
    }
    Ok(VerifiedBundle {
        stem,
        manifest,
        files,
    })
}

/// Checks a raw BTF blob's header: magic in the board's byte order, version 1, sizes within the file.
pub fn check_btf_header(
    file: &str,
    data: &[u8],
    endian: ebpf_pack_manifest::Endian,
) -> Result<(), VerifyError> {
    type ReadU32 = fn([u8; 4]) -> u32;
    let (magic, rd): ([u8; 2], ReadU32) = match endian {
        ebpf_pack_manifest::Endian::Little => ([0x9f, 0xeb], u32::from_le_bytes),
        ebpf_pack_manifest::Endian::Big => ([0xeb, 0x9f], u32::from_be_bytes),
    };
    let word = |off: usize| {
        data.get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map(rd)
    };
    if data.len() < 24 || !data.starts_with(&magic) || data.get(2) != Some(&1) {
        return Err(bad(
            file,
            "not a raw BTF file in the board's byte order",
            "regenerate it with `bpftool gen min_core_btf`",
        ));
    }
    let (hdr, type_off, type_len, str_off, str_len) =
        (word(4), word(8), word(12), word(16), word(20));
    let end = |o: Option<u32>, l: Option<u32>| o.zip(l).map(|(o, l)| u64::from(o) + u64::from(l));
    let body = data.len() as u64 - u64::from(hdr.unwrap_or(0));
    if hdr.is_none()
        || end(type_off, type_len).is_none_or(|e| e > body)
        || end(str_off, str_len).is_none_or(|e| e > body)
    {
        return Err(bad(
            file,
            "BTF sections run past the end of the file",
            "the file is truncated; rebuild the bundle",
        ));
    }
    Ok(())
}
