//! A deterministic initramfs: a cpio "newc" archive (the format the kernel unpacks into its rootfs), written
//! to any `Write` and gzip-compressed. Same entries in, same bytes out: sorted paths, inode numbers by
//! position, uid/gid 0, mtime 0, gzip header mtime 0.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// What one initramfs path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A folder.
    Dir,
    /// A regular file with its permission bits (e.g. 0o755) and content.
    File {
        /// Permission bits.
        mode: u32,
        /// Content.
        data: Vec<u8>,
    },
    /// A symbolic link to the given target.
    Symlink(String),
}

/// Why a path cannot go into an initramfs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitramfsError {
    /// Empty, absolute, with `.`/`..` or empty components, or not valid as a cpio name.
    #[error("initramfs path `{path}` is not a plain relative path")]
    BadPath {
        /// The path.
        path: String,
    },
    /// The path was added twice, or is a file where a folder is needed.
    #[error("initramfs path `{path}` is added twice or used both as a file and as a folder")]
    Conflict {
        /// The path.
        path: String,
    },
}

/// The contents of an initramfs, by relative path (`bin/busybox`); folders are created implicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initramfs {
    nodes: BTreeMap<String, Node>,
}

impl Initramfs {
    /// An empty initramfs.
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    /// Adds `node` at `path`, and every missing parent folder.
    pub fn add(&mut self, path: &str, node: Node) -> Result<(), InitramfsError> {
        let bad = || InitramfsError::BadPath {
            path: path.to_string(),
        };
        if path.is_empty()
            || path.starts_with('/')
            || path.contains('\0')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad());
        }
        let conflict = |p: &str| InitramfsError::Conflict {
            path: p.to_string(),
        };
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for c in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes.insert(parent.clone(), Node::Dir);
                }
                Some(Node::Dir) => {}
                Some(_) => return Err(conflict(&parent)),
            }
        }
        match (self.nodes.get(path), &node) {
            (None, _) => {}
            (Some(Node::Dir), Node::Dir) => return Ok(()),
            (Some(_), _) => return Err(conflict(path)),
        }
        self.nodes.insert(path.to_string(), node);
        Ok(())
    }

    /// Adds a regular file.
    pub fn add_file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<(), InitramfsError> {
        self.add(path, Node::File { mode, data })
    }

    /// Number of entries (folders included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Writes the uncompressed cpio "newc" archive, entries sorted by path, then the trailer.
    pub fn write_cpio<W: Write>(&self, mut out: W) -> io::Result<()> {
        for (i, (path, node)) in self.nodes.iter().enumerate() {
            let (mode, data): (u32, &[u8]) = match node {
                Node::Dir => (0o040_755, &[]),
                Node::File { mode, data } => (0o100_000 | (mode & 0o7777), data),
                Node::Symlink(target) => (0o120_777, target.as_bytes()),
            };
            let nlink = if matches!(node, Node::Dir) { 2 } else { 1 };
            write_entry(&mut out, (i + 1) as u32, mode, nlink, path, data)?;
        }
        write_entry(&mut out, 0, 0, 1, "TRAILER!!!", &[])
    }

    /// Writes the archive gzip-compressed (header mtime 0, so the bytes depend on the contents only).
    pub fn write_gz<W: Write>(&self, out: W) -> io::Result<()> {
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(out, flate2::Compression::default());
        self.write_cpio(&mut gz)?;
        gz.finish()?.flush()
    }
}

fn pad4<W: Write>(out: &mut W, len: usize) -> io::Result<()> {
    let pad = (4 - len % 4) % 4;
    out.write_all(&[0u8; 3][..pad])
}

fn write_entry<W: Write>(
    out: &mut W,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let size = u32::try_from(data.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: larger than the 4 GiB a cpio newc entry can hold"),
        )
    })?;
    let name_size = name.len() + 1;
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    // namesize, check
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{name_size:08x}{:08x}",
        0, 0, 0, 0, 0, 0, 0, 0
    );
    out.write_all(header.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    pad4(out, header.len() + name_size)?;
    out.write_all(data)?;
    pad4(out, data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Initramfs {
        let mut fs = Initramfs::new();
        fs.add_file("init", 0o755, b"#!/bin/sh\n".to_vec())
            .expect("init");
        fs.add_file("bin/busybox", 0o755, vec![1, 2, 3, 4, 5])
            .expect("busybox");
        fs.add("bin/sh", Node::Symlink("busybox".into()))
            .expect("sh");
        fs.add("proc", Node::Dir).expect("proc");
        fs
    }

    #[test]
    fn parents_are_implicit_and_entries_sorted() {
        let fs = sample();
        let names: Vec<&str> = fs.nodes.keys().map(String::as_str).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "init", "proc"]);
        assert_eq!(fs.len(), 5);
    }

    #[test]
    fn newc_layout_is_exact() {
        let mut fs = Initramfs::new();
        fs.add_file("a", 0o644, b"xyz".to_vec()).expect("a");
        let mut out = Vec::new();
        fs.write_cpio(&mut out).expect("write");
        // header (110) + "a\0" (2) -> padded to 112; data 3 -> padded to 4.
        let first = &out[..116];
        assert_eq!(&first[..6], b"070701");
        assert_eq!(&first[6..14], b"00000001"); // ino
        assert_eq!(&first[14..22], b"000081a4"); // regular file, 0644
        assert_eq!(&first[54..62], b"00000003"); // filesize
        assert_eq!(&first[94..102], b"00000002"); // namesize with NUL
        assert_eq!(&first[110..112], b"a\0");
        assert_eq!(&first[112..116], b"xyz\0");
        let trailer = std::str::from_utf8(&out[116..]).expect("ascii");
        assert!(trailer.starts_with("070701"), "{trailer}");
        assert!(trailer.contains("TRAILER!!!"), "{trailer}");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn symlinks_carry_their_target_as_data() {
        let mut fs = Initramfs::new();
        fs.add("sh", Node::Symlink("busybox".into())).expect("sh");
        let mut out = Vec::new();
        fs.write_cpio(&mut out).expect("write");
        assert_eq!(&out[14..22], b"0000a1ff");
        assert_eq!(&out[54..62], b"00000007");
        // header (110) + "sh\0" (3), padded to 116
        assert_eq!(&out[116..123], b"busybox");
    }

    #[test]
    fn output_is_deterministic_and_gunzips_to_the_cpio() {
        let (mut a, mut b, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        sample().write_gz(&mut a).expect("a");
        sample().write_gz(&mut b).expect("b");
        assert_eq!(a, b);
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "gzip mtime is 0");
        sample().write_cpio(&mut plain).expect("plain");
        let mut back = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a[..]), &mut back)
            .expect("gunzip");
        assert_eq!(back, plain);
    }

    #[test]
    fn unsafe_or_conflicting_paths_are_refused() {
        let mut fs = sample();
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\0b"] {
            assert_eq!(
                fs.add_file(bad, 0o644, Vec::new()),
                Err(InitramfsError::BadPath { path: bad.into() }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            fs.add_file("init", 0o644, Vec::new()),
            Err(InitramfsError::Conflict { .. })
        ));
        assert!(matches!(
            fs.add_file("init/x", 0o644, Vec::new()),
            Err(InitramfsError::Conflict { .. })
        ));
        fs.add("bin", Node::Dir)
            .expect("an existing folder may be named again");
    }
}
