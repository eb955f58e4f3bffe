//! The single-file executable: a bundle's loader with the rest of the bundle appended to it.
//!
//! Layout of `dist/<stem>.run`, written by `ebpf-pack build --single` and read by `ebpf-run` itself:
//!
//! ```text
//! LOADER (the bundle's ebpf-run ELF, byte for byte)
//! PAYLOAD (an uncompressed POSIX ustar archive: <stem>/manifest.json, SHA256SUMS, bpf/…, btf/…)
//! TRAILER (24 bytes: LOADER length, PAYLOAD length, both little-endian u64, then the magic `EBPFPAK1`)
//! ```
//!
//! The kernel loads the ELF by its program headers and never looks at the appended bytes. The loader is
//! left out of the payload: it is the ELF in front of it, and its `SHA256SUMS` line checks those bytes.
//! `tail -c +$((LOADER+1)) FILE | head -c PAYLOAD | tar x` unpacks the payload with any tar.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{LOADER_FILE, SUMS_FILE};

/// Last 8 bytes of a single-file executable.
pub const MAGIC: &[u8; 8] = b"EBPFPAK1";
/// Length of the trailer.
pub const TRAILER_LEN: usize = 24;
/// File name suffix of single-file executables.
pub const SUFFIX: &str = ".run";

const BLOCK: usize = 512;

/// The bundle files inside a single-file executable, by bundle-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// The bundle's top folder name (`ebpf-pack-0.1.0-rpi4`).
    pub stem: String,
    /// Every payload file (not the loader), by path inside the top folder.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Builds a single-file executable from a loader and the bundle's other files (`files` must not
/// contain the loader). Every archive entry gets `mtime`, owner 0:0 and mode 0644 (folders 0755):
/// same inputs, same bytes.
pub fn assemble(
    loader: &[u8],
    stem: &str,
    files: &BTreeMap<String, Vec<u8>>,
    mtime: u64,
) -> Result<Vec<u8>, String> {
    if files.contains_key(LOADER_FILE) {
        return Err(format!("the payload must not contain {LOADER_FILE}"));
    }
    let mut payload = Vec::new();
    let mut folders: Vec<String> = vec![format!("{stem}/")];
    for path in files.keys() {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            at += i + 1;
            let folder = format!("{stem}/{}", &path[..at]);
            if !folders.contains(&folder) {
                folders.push(folder);
            }
        }
    }
    let mut entries: Vec<(String, Option<&[u8]>)> =
        folders.into_iter().map(|f| (f, None)).collect();
    entries.extend(
        files
            .iter()
            .map(|(p, d)| (format!("{stem}/{p}"), Some(d.as_slice()))),
    );
    entries.sort();
    for (name, data) in entries {
        payload.extend_from_slice(&header(&name, data.map(<[u8]>::len), mtime)?);
        if let Some(d) = data {
            payload.extend_from_slice(d);
            payload.resize(payload.len().next_multiple_of(BLOCK), 0);
        }
    }
    payload.resize(payload.len() + 2 * BLOCK, 0);
    let mut out = Vec::with_capacity(loader.len() + payload.len() + TRAILER_LEN);
    out.extend_from_slice(loader);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&(loader.len() as u64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

/// One ustar header: a regular file (`Some(size)`) or a folder (`None`, name ending in `/`).
fn header(name: &str, size: Option<usize>, mtime: u64) -> Result<[u8; BLOCK], String> {
    let mut h = [0u8; BLOCK];
    // Names longer than 100 bytes are split at a `/` into prefix (155 bytes) and name.
    let (prefix, rest) = if name.len() <= 100 {
        ("", name)
    } else {
        let cut = name
            .char_indices()
            .filter(|&(i, c)| c == '/' && i <= 155 && name.len() - i - 1 <= 100)
            .map(|(i, _)| i)
            .next()
            .ok_or_else(|| format!("path `{name}` is too long for a ustar archive"))?;
        (&name[..cut], &name[cut + 1..])
    };
    put(&mut h, 0, rest.as_bytes())?;
    let octal = |h: &mut [u8; BLOCK], at: usize, width: usize, value: u64| {
        put(h, at, format!("{value:0w$o}", w = width - 1).as_bytes())
    };
    octal(&mut h, 100, 8, if size.is_some() { 0o644 } else { 0o755 })?;
    octal(&mut h, 108, 8, 0)?;
    octal(&mut h, 116, 8, 0)?;
    octal(&mut h, 124, 12, size.unwrap_or(0) as u64)?;
    octal(&mut h, 136, 12, mtime)?;
    h[156] = if size.is_some() { b'0' } else { b'5' };
    put(&mut h, 257, b"ustar\0")?;
    put(&mut h, 263, b"00")?;
    put(&mut h, 345, prefix.as_bytes())?;
    put(&mut h, 148, b"        ")?;
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h, 148, 7, sum)?;
    h[155] = b' ';
    Ok(h)
}

/// Writes `bytes` into the header at `at`; a value too long for its field is an error.
fn put(h: &mut [u8; BLOCK], at: usize, bytes: &[u8]) -> Result<(), String> {
    h.get_mut(at..at + bytes.len())
        .ok_or_else(|| {
            format!(
                "`{}` does not fit a ustar header",
                String::from_utf8_lossy(bytes)
            )
        })?
        .copy_from_slice(bytes);
    Ok(())
}

/// Where an ELF file's section header table ends (from its first 64 bytes): the end of a linked,
/// stripped executable, so bytes beyond it without a trailer are a truncated single-file executable.
pub fn elf_end(h: &[u8]) -> Option<u64> {
    if h.len() < 64 || !h.starts_with(b"\x7fELF") {
        return None;
    }
    let little = h.get(5) == Some(&1);
    let n = |at: usize, len: usize| {
        let b = h.get(at..at + len)?;
        Some(b.iter().enumerate().fold(0u64, |acc, (i, &x)| {
            let shift = if little { i } else { len - 1 - i } * 8;
            acc | u64::from(x) << shift
        }))
    };
    // (e_shoff, e_shentsize, e_shnum) for ELF32 and ELF64.
    let (off, size, num) = match h.get(4)? {
        1 => (n(32, 4)?, n(46, 2)?, n(48, 2)?),
        2 => (n(40, 8)?, n(58, 2)?, n(60, 2)?),
        _ => return None,
    };
    off.checked_add(size.checked_mul(num)?)
}

/// The two parts of a single-file executable before its trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The loader ELF.
    pub loader: &'a [u8],
    /// The ustar archive of the rest of the bundle.
    pub payload: &'a [u8],
}

/// The problem of a file with `extra` bytes after its ELF and no trailer.
pub fn truncated(extra: u64) -> String {
    format!(
        "{extra} bytes follow the executable but end in no bundle trailer: the file is truncated"
    )
}

/// Splits a single-file executable into (loader, payload). `Ok(None)`: `file` is a plain ELF or not an
/// ELF; `Err`: it has a trailer that does not describe the file, or bytes after its ELF and no trailer
/// (truncated or damaged).
pub fn split(file: &[u8]) -> Result<Option<Parts<'_>>, String> {
    let body_len = file.len().checked_sub(TRAILER_LEN);
    let trailer = body_len.and_then(|at| file.get(at..));
    let (Some(body_len), Some(trailer)) = (body_len, trailer.filter(|t| t.ends_with(MAGIC))) else {
        return match elf_end(file) {
            Some(end) if file.len() as u64 > end => Err(truncated(file.len() as u64 - end)),
            _ => Ok(None),
        };
    };
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(trailer.get(at..at + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(b)
    };
    let (loader_len, payload_len) = (word(0), word(8));
    let body = file.get(..body_len).unwrap_or_default();
    let loader_len = usize::try_from(loader_len).ok().filter(|&l| l <= body_len);
    let Some(loader_len) = loader_len.filter(|&l| (body_len - l) as u64 == payload_len) else {
        return Err(format!(
            "the trailer says {} + {payload_len} bytes, but {body_len} precede it \
             (the file is truncated or was altered)",
            word(0)
        ));
    };
    let (loader, payload) = body.split_at(loader_len);
    Ok(Some(Parts { loader, payload }))
}

/// Reads the payload archive: one top folder of plain files and folders with safe relative paths.
pub fn unpack(payload: &[u8]) -> Result<Embedded, String> {
    let mut stem: Option<String> = None;
    let mut files = BTreeMap::new();
    let mut at = 0;
    loop {
        let h: &[u8; BLOCK] = payload
            .get(at..)
            .and_then(|rest| rest.first_chunk())
            .ok_or("the archive ends without its end marker")?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let field = |from: usize, len: usize| {
            let f = h.get(from..from + len).unwrap_or_default();
            f.split(|&b| b == 0).next().unwrap_or_default()
        };
        let stored: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
            .sum();
        if octal_field(field(148, 8)) != Some(stored) {
            return Err(format!("damaged archive header at byte {at}"));
        }
        let (prefix, name) = (field(345, 155), field(0, 100));
        let mut path = String::from_utf8_lossy(prefix).into_owned();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(name));
        let size = octal_field(field(124, 12))
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| format!("entry `{path}` has a bad size"))?;
        let trimmed = path.trim_end_matches('/');
        if trimmed.starts_with('/')
            || trimmed
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "entry `{path}` has an absolute, empty or `..` path"
            ));
        }
        let (top, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        match &stem {
            None => stem = Some(top.to_owned()),
            Some(s) if s != top => {
                return Err(format!("entry `{path}` is outside the top folder `{s}/`"));
            }
            Some(_) => {}
        }
        let data_at = at + BLOCK;
        match h[156] {
            b'5' => {}
            b'0' | 0 if !rest.is_empty() => {
                let data = data_at
                    .checked_add(size)
                    .and_then(|end| payload.get(data_at..end))
                    .ok_or_else(|| format!("entry `{path}` runs past the end of the archive"))?;
                if files.insert(rest.to_owned(), data.to_vec()).is_some() {
                    return Err(format!("entry `{path}` appears twice"));
                }
            }
            kind => {
                return Err(format!(
                    "entry `{path}` is not a plain file or folder (type `{}`) or lies outside the top folder",
                    char::from(kind)
                ));
            }
        }
        at = size
            .checked_next_multiple_of(BLOCK)
            .and_then(|padded| data_at.checked_add(padded))
            .ok_or_else(|| format!("entry `{path}` runs past the end of the archive"))?;
    }
    let stem = stem.ok_or("the archive is empty")?;
    Ok(Embedded { stem, files })
}

/// Parses a NUL/space-terminated octal number.
fn octal_field(f: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(f).ok()?.trim_matches([' ', '\0']);
    u64::from_str_radix(digits, 8).ok()
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        for nibble in [b >> 4, b & 15] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

/// Checks every line of the payload's `SHA256SUMS` (the loader's line against `loader`), and that every
/// payload file is listed. The error names the file.
pub fn check_sums(loader: &[u8], files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let sums = files
        .get(SUMS_FILE)
        .ok_or(format!("there is no {SUMS_FILE}"))?;
    let sums = std::str::from_utf8(sums).map_err(|_| format!("{SUMS_FILE} is not text"))?;
    let mut listed: Vec<&str> = Vec::new();
    for line in sums.lines() {
        let (sum, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("{SUMS_FILE}: bad line `{line}`"))?;
        if listed.contains(&path) {
            return Err(format!("{SUMS_FILE} lists {path} twice"));
        }
        listed.push(path);
        let data = match path {
            LOADER_FILE => loader,
            _ => files
                .get(path)
                .ok_or_else(|| format!("{path} is listed in {SUMS_FILE} but missing"))?,
        };
        if sha256_hex(data) != sum {
            return Err(format!(
                "{path}: checksum mismatch (the file was altered or damaged)"
            ));
        }
    }
    if let Some(extra) = files
        .keys()
        .find(|p| *p != SUMS_FILE && !listed.contains(&p.as_str()))
    {
        return Err(format!("{extra} is not listed in {SUMS_FILE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
        let loader = b"\x7fELF loader bytes".to_vec();
        let mut files = BTreeMap::new();
        files.insert("manifest.json".to_owned(), b"{}\n".to_vec());
        files.insert("bpf/a.bpf.o".to_owned(), vec![7u8; 1000]);
        let sums = format!(
            "{}  bpf/a.bpf.o\n{}  {LOADER_FILE}\n{}  manifest.json\n",
            sha256_hex(&files["bpf/a.bpf.o"]),
            sha256_hex(&loader),
            sha256_hex(b"{}\n")
        );
        files.insert(SUMS_FILE.to_owned(), sums.into_bytes());
        (loader, files)
    }

    #[test]
    fn assemble_split_unpack_round_trip() {
        let (loader, files) = sample();
        let single = assemble(&loader, "p-1-t", &files, 42).expect("assemble");
        assert_eq!(
            single,
            assemble(&loader, "p-1-t", &files, 42).expect("again")
        );
        let Parts { loader: l, payload } = split(&single).expect("split").expect("has trailer");
        assert_eq!(l, loader.as_slice());
        assert_eq!(payload.len() % BLOCK, 0);
        let got = unpack(payload).expect("unpack");
        assert_eq!(got.stem, "p-1-t");
        assert_eq!(got.files, files);
        check_sums(l, &got.files).expect("sums");
    }

    #[test]
    fn payload_is_a_tar_that_tar_can_read() {
        let (loader, files) = sample();
        let single = assemble(&loader, "p-1-t", &files, 0).expect("assemble");
        let payload = split(&single).expect("split").expect("trailer").payload;
        let Ok(out) = std::process::Command::new("tar")
            .arg("-tvf")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(payload)?;
                c.wait_with_output()
            })
        else {
            panic!("tar must be installed to check the payload format");
        };
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{listing}");
        for want in [
            "p-1-t/bpf/a.bpf.o",
            "p-1-t/manifest.json",
            "p-1-t/SHA256SUMS",
            "1000",
        ] {
            assert!(listing.contains(want), "{want} missing from:\n{listing}");
        }
    }

    #[test]
    fn a_plain_loader_has_no_payload() {
        assert_eq!(split(b"\x7fELF").expect("short"), None);
        assert_eq!(split(&[0u8; 100]).expect("plain"), None);
    }

    #[test]
    fn damage_is_reported() {
        let (loader, files) = sample();
        let single = assemble(&loader, "p-1-t", &files, 0).expect("assemble");
        // Truncated: the trailer no longer matches the length.
        let mut cut = single[..100].to_vec();
        cut.extend_from_slice(&single[single.len() - TRAILER_LEN..]);
        assert!(split(&cut).expect_err("truncated").contains("truncated"));
        // A flipped byte in an object: the checksum names it.
        let mut flipped = single.clone();
        let Parts {
            loader: l,
            payload: p,
        } = split(&single).expect("split").expect("trailer");
        let at = l.len()
            + p.windows(4)
                .position(|w| w == [7, 7, 7, 7])
                .expect("object data");
        flipped[at] ^= 1;
        let Parts {
            loader: l,
            payload: p,
        } = split(&flipped).expect("split").expect("trailer");
        let e = check_sums(l, &unpack(p).expect("unpack").files).expect_err("flipped");
        assert!(e.contains("bpf/a.bpf.o"), "{e}");
        // A flipped byte in the loader.
        let mut bad_loader = single.clone();
        bad_loader[1] ^= 1;
        let Parts {
            loader: l,
            payload: p,
        } = split(&bad_loader).expect("split").expect("trailer");
        let e = check_sums(l, &unpack(p).expect("unpack").files).expect_err("loader");
        assert!(e.contains(LOADER_FILE), "{e}");
        // A flipped byte in a header.
        let mut bad_header = single.clone();
        bad_header[loader.len() + 3] ^= 1;
        let p = split(&bad_header).expect("split").expect("trailer").payload;
        assert!(unpack(p).expect_err("header").contains("damaged"));
        // An extra, unlisted file.
        let mut extra = files.clone();
        extra.insert("bpf/b.bpf.o".into(), vec![1]);
        let e = check_sums(&loader, &extra).expect_err("extra");
        assert!(e.contains("bpf/b.bpf.o is not listed"), "{e}");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let mut files = BTreeMap::new();
        files.insert("../x".to_owned(), vec![1]);
        let single = assemble(b"L", "s", &files, 0).expect("assemble");
        let p = split(&single).expect("split").expect("trailer").payload;
        assert!(unpack(p).expect_err("dotdot").contains(".."));
    }

    #[test]
    fn long_paths_use_the_prefix_field() {
        let mut files = BTreeMap::new();
        let long = format!("{}/{}.bpf.o", "d".repeat(90), "n".repeat(60));
        files.insert(long.clone(), vec![1, 2, 3]);
        let single = assemble(b"L", "stem", &files, 0).expect("assemble");
        let p = split(&single).expect("split").expect("trailer").payload;
        assert_eq!(unpack(p).expect("unpack").files[&long], vec![1, 2, 3]);
    }
}
